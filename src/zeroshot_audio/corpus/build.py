"""Scene builder of the ``debian-sfx`` corpus: 10 s multi-label scenes mixed from labelled sources.

Pipeline (see ``docs/corpus.md``, section "Building the scenes"):

1. sources: :func:`~zeroshot_audio.corpus.sources.collect_sources` plus, with ``soundfonts=True``, the
   SoundFont instrument notes of :func:`~zeroshot_audio.corpus.soundfont.soundfont_sources`;
2. :func:`~zeroshot_audio.corpus.prepare.prepare_audio`: each source is decoded to 16 kHz mono, trimmed to its
   active part, capped at :attr:`PrepSettings.max_seconds` (a seeded excerpt of the active region for longer
   files) and peak-normalised. Results are cached under ``<corpus cache>/prepared/`` keyed by the file's
   sha256 and the settings. Classes with fewer than ``min_files`` usable files or fewer than 2 families are
   dropped (:func:`~zeroshot_audio.corpus.splits.select_classes`);
3. :func:`~zeroshot_audio.corpus.splits.assign_splits`: families (not files) go to train/val/test, about
   70/10/20 per class;
4. :func:`~zeroshot_audio.corpus.scenes.render_scene`: scene ``i`` is a pure function of
   ``(seed, i, prepared sources)``: 1-4 events of distinct classes of the scene's split at random onsets and
   gains over a quiet coloured-noise bed;
5. output in the generic dataset format plus ``provenance.csv``, ``scene_sources.csv``, ``LICENSES.md`` and
   ``build.json``,
   written into a temporary directory that replaces ``out`` only when complete.

This module keeps the orchestration (:func:`build_corpus`, :func:`build_from_sources`), the licences file and
the :class:`BuildSummary`; steps 2-4 live in :mod:`~zeroshot_audio.corpus.prepare`,
:mod:`~zeroshot_audio.corpus.splits` and :mod:`~zeroshot_audio.corpus.scenes`, whose names are re-exported here.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .._errors import ParameterError
from .._io import atomic_dir, csv_text
from ..data.folds import SPLITS
from .prepare import SAMPLE_RATE, Prepared, PrepSettings, active_segments, prepare_audio, prepare_sources
from .scenes import SCENE_SECONDS, MixSettings, SceneResult, _make_pools, _render_all, render_scene
from .sources import Source
from .splits import (
    EVENT_COUNT_PROBS,
    SPLIT_FRACTIONS,
    _hash_seed,
    assign_splits,
    estimate_strict_train,
    scene_splits,
    select_classes,
)

__all__ = [
    "SAMPLE_RATE",
    "SCENE_SECONDS",
    "DEFAULT_N_SCENES",
    "EVENT_COUNT_PROBS",
    "SPLIT_FRACTIONS",
    "PrepSettings",
    "MixSettings",
    "Prepared",
    "BuildSummary",
    "active_segments",
    "prepare_audio",
    "prepare_sources",
    "select_classes",
    "assign_splits",
    "scene_splits",
    "render_scene",
    "estimate_strict_train",
    "build_from_sources",
    "build_corpus",
]

log = logging.getLogger(__name__)

#: Default number of scenes: with ~80 classes, 5 folds holding out 40 % of the classes leave about
#: 0.7 * 0.37 * 10 000 ~ 2 600 training scenes per fold (see :func:`estimate_strict_train`).
DEFAULT_N_SCENES = 10_000


@dataclass
class BuildSummary:
    """What :func:`build_corpus` built; ``str()`` gives a readable report."""

    out: Path
    seed: int
    n_scenes: int
    scenes: dict[str, int]
    classes: list[str]
    classes_by_split: dict[str, int]
    families: int
    families_by_split: dict[str, int]
    sources: int
    sources_by_split: dict[str, int]
    events: int
    dropped_classes: dict[str, str]
    skipped_sources: list[tuple[str, str, str]]
    classes_missing_from: dict[str, list[str]]
    strict_train_estimate: float
    strict_train_measured: list[int]
    packages: dict[str, str]
    timings: dict[str, float]
    settings: dict[str, object] = field(default_factory=dict)
    name: str = "debian-sfx"

    def __str__(self) -> str:
        t = self.timings
        lines = [
            f"{self.name} corpus -> {self.out}",
            f"scenes: {self.n_scenes} ({', '.join(f'{k} {v}' for k, v in self.scenes.items())}), "
            f"{self.events} event segments",
            f"classes: {len(self.classes)} ({', '.join(f'{k} {v}' for k, v in self.classes_by_split.items())}); "
            f"families: {self.families} ({', '.join(f'{k} {v}' for k, v in self.families_by_split.items())}); "
            f"sources: {self.sources}",
            f"strict zero-shot training scenes (5 folds, 40 % of classes held out): estimate "
            f"{self.strict_train_estimate:.0f}, measured per fold {self.strict_train_measured}",
            f"dropped classes: {len(self.dropped_classes)}; skipped sources: {len(self.skipped_sources)}",
            "timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()),
        ]
        for split, names in self.classes_missing_from.items():
            if names:
                lines.append(f"classes with no {split} family: {', '.join(names)}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------- output


def _strict_measured(results: Sequence[SceneResult], classes: Sequence[str], seed: int,
                     folds: int = 5, held_out: float = 0.4) -> list[int]:
    """Training scenes left per fold when ``held_out`` of the classes (seeded draw per fold) are held out."""
    out = []
    h = int(round(held_out * len(classes)))
    for f in range(folds):
        rng = np.random.default_rng(_hash_seed(seed, "strict-fold", f))
        held = {classes[i] for i in rng.choice(len(classes), size=h, replace=False)} if h else set()
        out.append(sum(1 for r in results if r.split == "train" and not (set(r.labels) & held)))
    return out


def _licences_md(prepared: Sequence[Prepared], counts: Sequence[int], manifest: Mapping[str, Mapping],
                 family_split: Mapping[str, str], name: str = "debian-sfx",
                 intro: tuple[str, str] | None = None) -> str:
    """``LICENSES.md``: the licences involved and a table per package; ``intro`` (the sentence before the list
    of licences, the paragraph after it) replaces the text about scenes."""
    per_pkg: dict[str, dict[str, int]] = {}
    used_files: dict[str, int] = {}
    for p, c in zip(prepared, counts):
        if c == 0:
            continue
        per_pkg.setdefault(p.source.package, {})
        per_pkg[p.source.package][p.source.licence] = per_pkg[p.source.package].get(p.source.licence, 0) + 1
        used_files[p.source.package] = used_files.get(p.source.package, 0) + 1
    all_lic = sorted({lic for d in per_pkg.values() for lic in d})
    head, tail = intro if intro is not None else (
        "Every scene is a derived work that mixes up to four recordings or rendered notes, each under its own "
        "licence, over generated noise. The licences involved are:",
        "A scene is distributed under the terms of all the licences of the sources it uses: `scene_sources.csv` "
        "lists the sources of each scene (package, path inside the package, licence) and `provenance.csv` "
        "every source (package, version, path inside the package, licence, split, number of scenes using "
        "it). Copyleft (GPL, CC-BY-SA) sources make the scenes that contain them subject to those terms; "
        "CC-BY sources need attribution (the authors are named in each package's `copyright` file, "
        "`/usr/share/doc/<package>/copyright`). The generated noise bed and the mixing carry no licence "
        "restrictions.",
    )
    lines = [
        f"# Licences of the {name} corpus",
        "",
        head,
        "",
        *[f"- {lic}" for lic in all_lic],
        "",
        tail,
        "",
        "| package | version | sha256 of the package file | licences in its copyright file "
        "| licences of the files used (files) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for pkg in sorted(per_pkg):
        m = manifest.get(pkg, {})
        lic = "; ".join(str(x) for x in m.get("licences", []) or []) or "-"
        used = "; ".join(f"{k} ({v})" for k, v in sorted(per_pkg[pkg].items()))
        lines.append(f"| {pkg} | {m.get('version', '')} | `{m.get('sha256', '')}` | {lic} | {used} |")
    lines += [
        "",
        "SoundFont packages (instrument notes rendered with tinysoundfont): fluid-soundfont-gm (FluidR3_GM, "
        "MIT, Frank Wen), musescore-general-soundfont-small (MuseScore_General Lite, MIT; derived from Fluid "
        "R3 Mono; Splendid Grand piano public domain; some samples CC0), timgm6mb-soundfont (TimGM6mb, "
        "GPL-2, Tim Brechbill), where used.",
        "",
    ]
    return "\n".join(lines)


def build_from_sources(
    out: str | os.PathLike,
    sources: Sequence[Source],
    *,
    manifest: Mapping[str, Mapping] | None = None,
    n_scenes: int = DEFAULT_N_SCENES,
    seed: int = 0,
    min_files: int = 3,
    min_families: int = 2,
    workers: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
    cache: str | os.PathLike | None = None,
    prep: PrepSettings = PrepSettings(),  # noqa: B008 - frozen dataclass
    mix: MixSettings = MixSettings(),  # noqa: B008 - frozen dataclass
    extra_info: Mapping[str, object] | None = None,
    timings: dict[str, float] | None = None,
    test_only: bool = False,
    name: str = "debian-sfx",
    split_counts: Callable[[int], dict[str, int]] | None = None,
) -> BuildSummary:
    """Build the corpus from given ``sources`` (the part of :func:`build_corpus` after collecting).

    ``test_only`` puts every family and every scene in the test split (a dataset for evaluation only).
    ``split_counts(n_families)`` gives a class's families per split (default: about 70/10/20, see
    :func:`~zeroshot_audio.corpus.splits.assign_splits`).
    Classes with fewer than ``min_files`` usable files or ``min_families`` families are dropped. ``name`` is
    the corpus name written in ``build.json``, ``LICENSES.md`` and the summary.
    """
    if n_scenes < 1:
        raise ParameterError(f"build: n_scenes must be >= 1, got {n_scenes}")
    if workers < 1:
        raise ParameterError(f"build: workers must be >= 1, got {workers}")
    out = Path(out)
    timings = dict(timings or {})
    t0 = time.perf_counter()
    prepared, skipped = prepare_sources(sources, settings=prep, cache=cache, workers=workers, progress=progress)
    kept, dropped = select_classes(prepared, min_files=min_files, min_families=min_families)
    if not kept:
        raise ParameterError("build: no class has enough files and families")
    class_fams: dict[str, list[str]] = {}
    for p in kept:
        class_fams.setdefault(p.source.label, []).append(p.source.family)
    family_split = assign_splits(class_fams, seed, counts=split_counts)
    if test_only:
        family_split = {f: "test" for f in family_split}
    pools = _make_pools(kept, family_split)
    timings["prepare"] = time.perf_counter() - t0

    from ..data.audioset import audioset_descriptions

    desc = audioset_descriptions()
    classes = [c for c in desc if c in class_fams] + sorted(c for c in class_fams if c not in desc)
    splits = ["test"] * n_scenes if test_only else scene_splits(n_scenes, seed)
    for s in SPLITS:
        if s in splits and not pools.by_split[s]:
            raise ParameterError(f"build: no class has a family in split {s!r}")

    t1 = time.perf_counter()
    with atomic_dir(out) as tmp:
        results = _render_all(tmp, splits, seed, kept, pools, mix, workers, progress)
        timings["scenes"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        from ..data.dataset import write_dataset

        write_dataset(
            tmp,
            filenames=[r.filename for r in results],
            labels=[r.labels for r in results],
            splits=[r.split for r in results],
            families=[Path(r.filename).stem for r in results],
            classes=classes,
            descriptions={c: desc.get(c, "") for c in classes},
            events=[e for r in results for e in r.events],
        )
        counts = [0] * len(kept)
        for r in results:
            for i in set(r.sources):
                counts[i] += 1
        rows: list[list[object]] = [["label", "family", "package", "version", "original_path", "licence", "split",
                                     "scenes", "seconds", "sha256"]]
        order = sorted(range(len(kept)), key=lambda i: (kept[i].source.label, kept[i].source.family,
                                                         kept[i].source.package, kept[i].source.original_path))
        for i in order:
            s = kept[i].source
            rows.append([s.label, s.family, s.package, s.package_version, s.original_path, s.licence,
                         family_split[s.family], counts[i], f"{kept[i].seconds:.3f}", kept[i].sha256])
        (tmp / "provenance.csv").write_text(csv_text(rows), encoding="utf-8")
        scene_rows: list[list[object]] = [["filename", "label", "package", "original_path", "licence"]]
        for r in results:
            for i in r.sources:
                s = kept[i].source
                scene_rows.append([r.filename, s.label, s.package, s.original_path, s.licence])
        (tmp / "scene_sources.csv").write_text(csv_text(scene_rows), encoding="utf-8")
        manifest = dict(manifest or {})
        for p in kept:  # packages the manifest does not know (injected sources)
            manifest.setdefault(p.source.package, {"version": p.source.package_version, "licences": []})
        (tmp / "LICENSES.md").write_text(_licences_md(kept, counts, manifest, family_split, name), encoding="utf-8")

        n_cls = {s: len(pools.by_split[s]) for s in SPLITS}
        fam_by_split = {s: sum(len(f) for _, f in pools.by_split[s]) for s in SPLITS}
        src_by_split = {s: sum(len(x) for _, f in pools.by_split[s] for x in f) for s in SPLITS}
        missing = {s: [c for c in classes if c not in {lab for lab, _ in pools.by_split[s]}] for s in ("train", "test")}
        scenes = {s: splits.count(s) for s in SPLITS}
        estimate = estimate_strict_train(n_scenes, n_cls["train"])
        measured = _strict_measured(results, classes, seed)
        timings["write"] = time.perf_counter() - t2
        used_packages = sorted({p.source.package for p in kept})
        summary = BuildSummary(
            out=out, seed=seed, n_scenes=n_scenes, scenes=scenes, classes=classes, classes_by_split=n_cls,
            families=len({p.source.family for p in kept}), families_by_split=fam_by_split, sources=len(kept),
            sources_by_split=src_by_split, events=sum(len(r.events) for r in results), dropped_classes=dropped,
            skipped_sources=skipped, classes_missing_from=missing, strict_train_estimate=estimate,
            strict_train_measured=measured,
            packages={k: str(manifest[k].get("version", "")) for k in used_packages}, timings=timings,
            settings={"prep": asdict(prep), "mix": asdict(mix), "min_files": min_files,
                      "min_families": min_families},
            name=name,
        )
        info = {
            "corpus": name,
            "seed": seed,
            "n_scenes": n_scenes,
            "settings": summary.settings,
            "counts": {
                "scenes": scenes,
                "classes": len(classes),
                "classes_by_split": n_cls,
                "families": summary.families,
                "families_by_split": fam_by_split,
                "sources": len(kept),
                "sources_by_split": src_by_split,
                "sources_used": sum(1 for c in counts if c),
                "event_segments": summary.events,
                "events_per_scene": {str(k): sum(1 for r in results if len(r.labels) == k) for k in range(1, 5)},
            },
            "strict_zero_shot": {"folds": 5, "held_out_fraction": 0.4, "train_scenes_estimate": round(estimate, 1),
                                 "train_scenes_measured": measured},
            "classes": classes,
            "classes_missing_from": missing,
            "dropped_classes": dropped,
            "skipped_sources": [list(x) for x in skipped],
            "packages": {k: {"version": manifest[k].get("version", ""), "sha256": manifest[k].get("sha256", ""),
                             "licences": list(manifest[k].get("licences", []) or [])} for k in used_packages},
            **dict(extra_info or {}),
            # timings are the only field that differs between identical builds
            "timings_seconds": {k: round(v, 2) for k, v in timings.items() if k != "total"},
        }
        (tmp / "build.json").write_text(json.dumps(info, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    timings["total"] = time.perf_counter() - t0
    return summary


def build_corpus(
    out: str | os.PathLike,
    *,
    n_scenes: int = DEFAULT_N_SCENES,
    seed: int = 0,
    min_files: int = 3,
    workers: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
    cache: str | os.PathLike | None = None,
    soundfonts: bool = True,
    sfx: bool = True,
) -> BuildSummary:
    """Build the ``debian-sfx`` scene corpus into ``out`` (replaced only when the new build is complete).

    Parameters
    ----------
    out : path
        Output directory: ``audio/<split>/scene_NNNNN.flac``, ``clips.csv``, ``events.tsv``, ``classes.csv``,
        ``provenance.csv``, ``LICENSES.md``, ``build.json``.
    n_scenes : int
        Number of 10 s scenes (70/10/20 % train/val/test).
    seed : int
        Seeds the family splits and every scene; the same seed and sources give identical output.
    min_files : int
        Classes with fewer usable files (or fewer than 2 families) are dropped.
    workers : int
        Processes for preparing sources and rendering scenes; the output does not depend on it.
    progress : callable(stage, done, total), optional
        Called as work advances (stages ``soundfont``, ``prepare``, ``scenes``).
    cache : path, optional
        The corpus cache root (downloads, unpacked packages, renders, prepared clips).
    soundfonts : bool
        Add the SoundFont instrument notes (needs the ``tinysoundfont`` package).
    sfx : bool
        Use the recorded sound effects of the Debian packages (False with ``soundfonts=True``: a corpus of
        instrument notes only, all in the test split: the second dataset of the cross-dataset experiment).
    """
    from .sources import collect_sources

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    if not sfx and not soundfonts:
        raise ParameterError("build: nothing to build from (sfx and soundfonts both off)")
    sources: list[Source] = []
    manifest: dict[str, Mapping] = {}
    extra: dict[str, object] = {}
    if sfx:
        src = collect_sources(cache=cache)
        sources += list(src)
        manifest.update(src.manifest)
        extra["undecodable_sources"] = [list(x) for x in src.undecodable]
    timings["collect"] = time.perf_counter() - t0
    if soundfonts:
        t = time.perf_counter()
        from .soundfont import RENDER_SETTINGS, soundfont_sources

        sf_src = soundfont_sources(cache=cache, progress=progress)
        sources += list(sf_src)
        manifest.update(sf_src.manifest)
        try:
            from importlib.metadata import version

            tsf = version("tinysoundfont")
        except Exception:  # noqa: BLE001
            tsf = "unknown"
        extra["soundfont_render"] = {**RENDER_SETTINGS, "tinysoundfont": tsf}
        timings["soundfonts"] = time.perf_counter() - t
    summary = build_from_sources(
        out, sources, manifest=manifest, n_scenes=n_scenes, seed=seed, min_files=min_files, workers=workers,
        progress=progress, cache=cache, extra_info=extra, timings=timings, test_only=not sfx,
    )
    summary.timings["total"] = time.perf_counter() - t0
    return summary

"""The ``debian-eval`` set: a second real evaluation set from Debian packages the training corpus never uses.

Pipeline (``zsa corpus build debian-eval``, see ``docs/corpus.md``):

1. :func:`~zeroshot_audio.corpus.sources.collect_sources` with the packages of
   :data:`~zeroshot_audio.corpus.packages.EVAL_PACKAGES` and the rules table ``debian_eval_rules.csv``
   (byte-identical copies dropped; reserved packages refused);
2. ``DIR/recordings``: every labelled recording as it is (16 kHz mono FLAC, at most
   :data:`MAX_RECORDING_SECONDS`, level unchanged), one label per clip, all in the test split, with the active
   parts (:func:`~zeroshot_audio.corpus.prepare.active_segments`) as strong labels: what a user tags;
3. ``DIR/scenes``: 10 s scenes of 1-4 events mixed from the same recordings over a quiet noise bed by the
   training corpus's builder (:func:`~zeroshot_audio.corpus.build.build_from_sources`), with train/val/test
   splits for the paper's protocol: the recordings' families (classes with >= 2 families) are partitioned
   first (:func:`~zeroshot_audio.corpus.splits.split_counts_with_val`: 2 families -> train + test, >= 3 ->
   at least one each in train, val and test), and a scene of a split mixes only that split's recordings, so no
   recording is heard in two splits; ``DIR/scenes-clean``: the same scenes (events, gains, levels) without
   the noise bed;
4. ``DIR/phrasings.csv`` (the phrasings of the labels present plus a ``name`` row per label),
   ``DIR/provenance.csv``, ``DIR/LICENSES.md`` and ``DIR/build.json``.

``DIR`` is replaced only when the whole build is complete.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._errors import ParameterError
from .._io import atomic_dir, csv_text, sha256_file
from .packages import EVAL_PACKAGES
from .prepare import SAMPLE_RATE, PrepSettings, active_segments
from .rules import EVAL_PHRASINGS_FILE, EVAL_RULES_FILE
from .sources import Source

__all__ = [
    "MAX_RECORDING_SECONDS",
    "DEFAULT_EVAL_SCENES",
    "CLEAN_SCENES",
    "EvalSummary",
    "write_recordings",
    "build_eval_from_sources",
    "build_eval",
]

#: Recordings longer than this are cut (their first ``MAX_RECORDING_SECONDS``).
MAX_RECORDING_SECONDS = 30.0
#: Default number of 10 s scenes of the set (70/10/20 % train/val/test).
DEFAULT_EVAL_SCENES = 3000
#: The scenes without their noise bed (``DIR/scenes-clean``).
CLEAN_SCENES = "scenes-clean"
NAME = "debian-eval"


@dataclass
class EvalSummary:
    """What :func:`build_eval` built; ``str()`` gives a readable report ending in a one-line summary."""

    out: Path
    recordings: int
    recording_classes: int
    recording_seconds: float
    recording_events: int
    packages: dict[str, str]
    skipped: list[tuple[str, str, str]]
    duplicates: int
    scenes: object  # the scenes' BuildSummary
    phrasings: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    clean_scenes: object = None  # the BuildSummary of the scenes without noise bed

    def line(self) -> str:
        sc = self.scenes
        return (f"{NAME}: {self.recordings} recordings of {self.recording_classes} labels from "
                f"{len(self.packages)} packages ({self.recording_seconds / 60:.1f} min, {self.recording_events} "
                f"event segments); {sc.n_scenes} scenes of {len(sc.classes)} classes ({sc.events} event segments); "
                f"phrasings " + ", ".join(f"{k} {v}" for k, v in self.phrasings.items())
                + f"; {self.timings.get('total', 0.0):.0f} s")

    def __str__(self) -> str:
        sc = self.scenes
        lines = [f"{NAME} -> {self.out}",
                 f"recordings: {self.recordings} of {self.recording_classes} labels, "
                 f"{self.recording_seconds:.0f} s, {self.recording_events} event segments; "
                 f"skipped (no active audio): {len(self.skipped)}; byte-identical copies dropped: {self.duplicates}",
                 f"scenes: {sc.n_scenes} ({', '.join(f'{k} {v}' for k, v in sc.scenes.items())}), {sc.events} "
                 f"event segments, {len(sc.classes)} classes with >= 2 families ({len(sc.dropped_classes)} labels "
                 f"with fewer only in the recordings), {sc.families} families "
                 f"({', '.join(f'{k} {v}' for k, v in sc.families_by_split.items())}), {sc.sources} sources"
                 + (f"; the same without noise bed in {CLEAN_SCENES}/" if self.clean_scenes is not None else ""),
                 "timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in self.timings.items()),
                 self.line()]
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------- recordings


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60] or "x"


def _recording_job(args: tuple[str, str, PrepSettings]) -> tuple[float, list[tuple[int, int]], str]:
    """Decode one source to 16 kHz mono (first MAX_RECORDING_SECONDS), write it as FLAC at ``dest`` if it has
    active audio; return ``(seconds, active sample ranges, reason)`` (reason empty when written)."""
    import soundfile as sf

    from ..audio import load_audio

    path, dest, settings = args
    try:
        wav = load_audio(path, sample_rate=SAMPLE_RATE, max_seconds=MAX_RECORDING_SECONDS)
    except Exception as e:  # noqa: BLE001 - any decoder failure skips the source
        return 0.0, [], f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    segs, peak = active_segments(wav, settings)
    if not segs:
        return 0.0, [], f"no active audio (loudest frame {peak:.1f} dBFS)"
    y = np.clip(np.round(np.asarray(wav, dtype=np.float64) * 32767.0), -32767, 32767).astype(np.int16)
    sf.write(dest, y, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
    return wav.shape[0] / SAMPLE_RATE, segs, ""


def write_recordings(
    out: str | os.PathLike,
    sources: Sequence[Source],
    *,
    settings: PrepSettings = PrepSettings(),  # noqa: B008 - frozen dataclass
    workers: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[list[tuple[Source, str, float]], list[tuple[str, str, str]], int]:
    """Write ``sources`` as a dataset of recordings into ``out`` (an existing, empty directory).

    Each source becomes ``audio/test/NNNN_<package>_<stem>.flac`` (16 kHz mono, 16 bit, its first
    :data:`MAX_RECORDING_SECONDS`, level unchanged) with its one label, split ``test`` and its family; its
    active parts (``settings``: :func:`~zeroshot_audio.corpus.prepare.active_segments`) are its events.
    Sources with no active audio are left out.

    Returns
    -------
    written : list of (source, filename, seconds)
    skipped : list of (package, original_path, reason)
    events : int
        Number of event segments written.
    """
    from ..data.audioset import audioset_descriptions
    from ..data.dataset import write_dataset

    out = Path(out)
    (out / "audio" / "test").mkdir(parents=True, exist_ok=True)
    names = [f"audio/test/{i:04d}_{_slug(s.package)}_{_slug(Path(s.original_path).stem)}.flac"
             for i, s in enumerate(sources)]
    jobs = [(str(s.path), str(out / n), settings) for s, n in zip(sources, names)]
    if workers > 1 and len(jobs) > 1:
        from .prepare import _pool

        results = []
        with _pool(workers) as pool:
            for i, r in enumerate(pool.imap(_recording_job, jobs, chunksize=4)):
                results.append(r)
                if progress is not None:
                    progress("recordings", i + 1, len(jobs))
    else:
        results = []
        for i, j in enumerate(jobs):
            results.append(_recording_job(j))
            if progress is not None:
                progress("recordings", i + 1, len(jobs))
    written: list[tuple[Source, str, float]] = []
    skipped: list[tuple[str, str, str]] = []
    events: list[tuple[str, float, float, str]] = []
    for s, name, (seconds, segs, reason) in zip(sources, names, results):
        if reason:
            skipped.append((s.package, s.original_path, reason))
            continue
        written.append((s, name, seconds))
        events += [(name, round(a / SAMPLE_RATE, 3), round(b / SAMPLE_RATE, 3), s.label) for a, b in segs]
    if not written:
        raise ParameterError(f"{NAME}: no source has active audio")
    desc = audioset_descriptions()
    present = {s.label for s, _, _ in written}
    classes = [c for c in desc if c in present] + sorted(c for c in present if c not in desc)
    write_dataset(
        out,
        filenames=[n for _, n, _ in written],
        labels=[[s.label] for s, _, _ in written],
        splits=["test"] * len(written),
        families=[s.family for s, _, _ in written],
        classes=classes,
        descriptions={c: desc.get(c, "") for c in classes},
        events=events,
    )
    return written, skipped, len(events)


# ------------------------------------------------------------------------------------------- the set


def _phrasings_rows(path: str | os.PathLike, classes: Sequence[str]) -> list[list[str]]:
    """``label,phrasing,kind`` rows of the labels in ``classes`` (their order): a ``name`` row, then the table's."""
    from ..evaluation.phrasings import KINDS, read_phrasings

    table = read_phrasings(path)
    rows = [["label", "phrasing", "kind"]]
    for c in classes:
        kinds = table.get(c, {})
        if "name" not in kinds:
            rows.append([c, c, "name"])
        for k in KINDS:
            rows += [[c, p, k] for p in kinds.get(k, [])]
    return rows


_RECORDINGS_INTRO = (
    "The recordings (`recordings/`) are the packages' files decoded, resampled to 16 kHz mono and cut to at most "
    "30 s; each keeps its own licence. The scenes (`scenes/`) mix up to four of them over generated noise. The "
    "licences involved are:",
    "A recording or scene is distributed under the terms of the licences of the files it uses: `provenance.csv` "
    "lists every file (package, version, path inside the package, licence, recording, number of scenes using "
    "it), `scenes/scene_sources.csv` the files of each scene. Copyleft (GPL, CC-BY-SA) files make what contains "
    "them subject to those terms; CC-BY files need attribution (the authors are named in each package's "
    "`copyright` file, `/usr/share/doc/<package>/copyright`). The generated noise bed and the mixing carry no "
    "licence restrictions.",
)


def build_eval_from_sources(
    out: str | os.PathLike,
    sources: Sequence[Source],
    *,
    manifest: Mapping[str, Mapping] | None = None,
    phrasings: str | os.PathLike = EVAL_PHRASINGS_FILE,
    n_scenes: int = DEFAULT_EVAL_SCENES,
    seed: int = 0,
    workers: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
    cache: str | os.PathLike | None = None,
    duplicates: int = 0,
    extra_info: Mapping[str, object] | None = None,
    timings: dict[str, float] | None = None,
    clean_scenes: bool = True,
) -> EvalSummary:
    """Build the set from given ``sources`` (the part of :func:`build_eval` after collecting) into ``out``.

    ``phrasings`` is the ``label,phrasing,kind`` table copied (restricted to the labels present) into
    ``out/phrasings.csv``; ``duplicates`` is the number of byte-identical copies the collector dropped (reported);
    ``clean_scenes`` also writes the scenes without their noise bed (``out/scenes-clean``).
    """
    from .build import _licences_md, build_from_sources
    from .scenes import MixSettings
    from .splits import split_counts_with_val

    if n_scenes < 1:
        raise ParameterError(f"{NAME}: --scenes must be >= 1, got {n_scenes}")
    out = Path(out)
    timings = dict(timings or {})
    t0 = time.perf_counter()
    manifest = dict(manifest or {})
    for s in sources:  # packages the manifest does not know (injected sources)
        manifest.setdefault(s.package, {"version": s.package_version, "licences": []})
    with atomic_dir(out) as tmp:
        written, skipped, n_events = write_recordings(tmp / "recordings", sources, workers=workers, progress=progress)
        timings["recordings"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        kept = [s for s, _, _ in written]
        scene_args = dict(manifest=manifest, n_scenes=n_scenes, seed=seed, min_files=2, min_families=2,
                          workers=workers, progress=progress, cache=cache, name=NAME,
                          split_counts=split_counts_with_val)
        scenes = build_from_sources(tmp / "scenes", kept, **scene_args)
        timings["scenes"] = time.perf_counter() - t1
        clean = None
        if clean_scenes:
            t1 = time.perf_counter()
            clean = build_from_sources(tmp / CLEAN_SCENES, kept, mix=MixSettings(noise_bed=False), **scene_args)
            timings["scenes_clean"] = time.perf_counter() - t1
        from ..data.dataset import read_dataset

        classes = list(read_dataset(tmp / "recordings").classes)
        rows = _phrasings_rows(phrasings, classes)
        (tmp / "phrasings.csv").write_text(csv_text(rows), encoding="utf-8")
        kinds: dict[str, int] = {}
        for _, _, k in rows[1:]:
            kinds[k] = kinds.get(k, 0) + 1

        # provenance: every recording, with the number of scenes that use it
        import csv

        with open(tmp / "scenes" / "provenance.csv", newline="", encoding="utf-8") as f:
            used = {(r["package"], r["original_path"]): int(r["scenes"]) for r in csv.DictReader(f)}
        with open(tmp / "scenes" / "provenance.csv", newline="", encoding="utf-8") as f:
            scene_split = {(r["package"], r["original_path"]): r["split"] for r in csv.DictReader(f)}
        prov: list[list[object]] = [["label", "family", "package", "version", "original_path", "licence", "split",
                                     "scenes", "seconds", "sha256", "recording", "scene_split"]]
        for s, name, seconds in sorted(written, key=lambda w: (w[0].label, w[0].family, w[0].package,
                                                               w[0].original_path)):
            prov.append([s.label, s.family, s.package, s.package_version, s.original_path, s.licence, "test",
                         used.get((s.package, s.original_path), 0), f"{seconds:.3f}", sha256_file(s.path), name,
                         scene_split.get((s.package, s.original_path), "")])
        (tmp / "provenance.csv").write_text(csv_text(prov), encoding="utf-8")

        class _Item:  # what _licences_md reads of a prepared source
            def __init__(self, source: Source):
                self.source = source

        (tmp / "LICENSES.md").write_text(
            _licences_md([_Item(s) for s in kept], [1] * len(kept), manifest, {}, NAME, intro=_RECORDINGS_INTRO),
            encoding="utf-8",
        )
        used_packages = sorted({s.package for s in kept})
        summary = EvalSummary(
            out=out, recordings=len(written), recording_classes=len(classes),
            recording_seconds=sum(w[2] for w in written), recording_events=n_events,
            packages={k: str(manifest[k].get("version", "")) for k in used_packages}, skipped=skipped,
            duplicates=duplicates, scenes=scenes, clean_scenes=clean, phrasings=kinds, timings=timings,
        )
        per_class: dict[str, int] = {}
        for s in kept:
            per_class[s.label] = per_class.get(s.label, 0) + 1
        info = {
            "corpus": NAME,
            "seed": seed,
            "n_scenes": n_scenes,
            "max_recording_seconds": MAX_RECORDING_SECONDS,
            "counts": {
                "recordings": len(written),
                "recording_classes": len(classes),
                "recording_seconds": round(summary.recording_seconds, 1),
                "recording_event_segments": n_events,
                "recordings_per_class": per_class,
                "scene_classes": len(scenes.classes),
                "scene_event_segments": scenes.events,
                "scenes_by_split": scenes.scenes,
                "scene_families_by_split": scenes.families_by_split,
                "phrasings": kinds,
                "duplicates_dropped": duplicates,
            },
            "skipped_sources": [list(x) for x in skipped],
            "packages": {k: {"version": manifest[k].get("version", ""), "sha256": manifest[k].get("sha256", ""),
                             "licences": list(manifest[k].get("licences", []) or [])} for k in used_packages},
            **dict(extra_info or {}),
            "timings_seconds": {k: round(v, 2) for k, v in timings.items() if k != "total"},
        }
        (tmp / "build.json").write_text(json.dumps(info, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    summary.timings["total"] = time.perf_counter() - t0 + timings.get("collect", 0.0)
    scenes.out = out / "scenes"
    if clean is not None:
        clean.out = out / CLEAN_SCENES
    return summary


def build_eval(
    out: str | os.PathLike,
    *,
    n_scenes: int = DEFAULT_EVAL_SCENES,
    seed: int = 0,
    workers: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
    cache: str | os.PathLike | None = None,
    rules: str | os.PathLike = EVAL_RULES_FILE,
    packages: Sequence[str] | None = None,
    phrasings: str | os.PathLike = EVAL_PHRASINGS_FILE,
) -> EvalSummary:
    """Build the ``debian-eval`` set into ``out``: fetch (``apt-get download``, cached) and unpack the packages
    (default :data:`~zeroshot_audio.corpus.packages.EVAL_PACKAGES`), label their files with ``rules``, then
    :func:`build_eval_from_sources`.

    Parameters
    ----------
    out : path
        Output directory: ``recordings/``, ``scenes/`` and ``scenes-clean/`` (datasets), ``phrasings.csv``,
        ``provenance.csv``, ``LICENSES.md``, ``build.json``; replaced only when complete.
    n_scenes : int
        Number of 10 s scenes (70/10/20 % train/val/test), written twice: ``scenes/`` over a quiet noise bed and
        ``scenes-clean/`` without it.
    seed : int
        Seeds the scenes; the same seed and sources give identical output.
    workers : int
        Processes for decoding and rendering; the output does not depend on it.
    progress : callable(stage, done, total), optional
        Called as work advances (stages ``recordings``, ``prepare``, ``scenes``).
    cache : path, optional
        The corpus cache root (downloads, unpacked packages, prepared clips).
    """
    from .sources import collect_sources

    t0 = time.perf_counter()
    src = collect_sources(cache=cache, rules=rules, packages=list(EVAL_PACKAGES if packages is None else packages),
                          wheels={})
    timings = {"collect": time.perf_counter() - t0}
    extra = {"undecodable_sources": [list(x) for x in src.undecodable],
             "unmatched_files": len(src.unmatched), "skipped_by_rules": len(src.skipped)}
    return build_eval_from_sources(out, list(src), manifest=src.manifest, phrasings=phrasings, n_scenes=n_scenes,
                                   seed=seed, workers=workers, progress=progress, cache=cache,
                                   duplicates=len(src.duplicates), extra_info=extra, timings=timings)

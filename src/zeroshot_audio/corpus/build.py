"""Scene builder of the ``debian-sfx`` corpus: 10 s multi-label scenes mixed from labelled sources.

Pipeline (see ``docs/corpus.md``, section "Building the scenes"):

1. sources: :func:`~zeroshot_audio.corpus.sources.collect_sources` plus, with ``soundfonts=True``, the
   SoundFont instrument notes of :func:`~zeroshot_audio.corpus.soundfont.soundfont_sources`;
2. :func:`prepare_audio`: each source is decoded to 16 kHz mono, trimmed to its active part, capped at
   :attr:`PrepSettings.max_seconds` (a seeded excerpt of the active region for longer files) and
   peak-normalised. Results are cached under ``<corpus cache>/prepared/`` keyed by the file's sha256 and
   the settings. Classes with fewer than ``min_files`` usable files or fewer than 2 families are dropped;
3. :func:`assign_splits`: families (not files) go to train/val/test, about 70/10/20 per class;
4. :func:`render_scene`: scene ``i`` is a pure function of ``(seed, i, prepared sources)``: 1-4 events of
   distinct classes of the scene's split at random onsets and gains over a quiet coloured-noise bed;
5. output in the generic dataset format plus ``provenance.csv``, ``scene_sources.csv``, ``LICENSES.md`` and
   ``build.json``,
   written into a temporary directory that replaces ``out`` only when complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .._errors import ParameterError
from .._io import atomic_dir, csv_text, sha256_file
from ..data.folds import SPLITS
from .sources import Source, corpus_cache

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

SAMPLE_RATE = 16000
SCENE_SECONDS = 10.0
#: P(1 event), P(2), P(3), P(4) per scene.
EVENT_COUNT_PROBS: tuple[float, ...] = (0.30, 0.35, 0.25, 0.10)
SPLIT_FRACTIONS: dict[str, float] = {"train": 0.7, "val": 0.1, "test": 0.2}
#: Default number of scenes: with ~80 classes, 5 folds holding out 40 % of the classes leave about
#: 0.7 * 0.37 * 10 000 ~ 2 600 training scenes per fold (see :func:`estimate_strict_train`).
DEFAULT_N_SCENES = 10_000


@dataclass(frozen=True)
class PrepSettings:
    """How a source becomes an event clip (part of the prepared-cache key)."""

    sample_rate: int = SAMPLE_RATE
    frame_seconds: float = 0.010  # RMS frames (non-overlapping)
    threshold_db: float = 40.0  # active: frame RMS within this many dB of the file's loudest frame
    floor_dbfs: float = -80.0  # frames below this level are never active
    margin_seconds: float = 0.010  # kept before the first and after the last active frame
    merge_gap_seconds: float = 0.25  # active runs closer than this are one event segment
    max_seconds: float = 4.0  # longer active parts are cut to a seeded excerpt
    fade_seconds: float = 0.010  # raised-cosine fade at both ends of every clip
    min_active_seconds: float = 0.1  # sources with a shorter active extent are skipped
    version: int = 1

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class MixSettings:
    """How a scene is mixed."""

    sample_rate: int = SAMPLE_RATE
    seconds: float = SCENE_SECONDS
    event_count_probs: tuple[float, ...] = EVENT_COUNT_PROBS
    gain_db: tuple[float, float] = (-20.0, 0.0)  # per event, relative
    target_rms_dbfs: float = -20.0  # RMS of the event mix over its active samples...
    peak_dbfs: float = -1.0  # ...unless that would put the peak above this
    noise_dbfs: tuple[float, float] = (-55.0, -40.0)  # RMS of the noise bed
    noise_slope: tuple[float, float] = (1.0, 2.0)  # spectrum ~ 1/f**slope: 1 pink ... 2 brown
    noise_low_hz: float = 20.0  # the 1/f shaping is flat below this


@dataclass
class Prepared:
    """A prepared source: ``audio`` (float32, 16 kHz, peak 1) and its active ``segments`` (sample ranges)."""

    source: Source
    sha256: str
    audio: np.ndarray
    segments: tuple[tuple[int, int], ...]

    @property
    def seconds(self) -> float:
        return self.audio.shape[0] / SAMPLE_RATE


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

    def __str__(self) -> str:
        t = self.timings
        lines = [
            f"debian-sfx corpus -> {self.out}",
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


# ------------------------------------------------------------------------------------------- preparation


def active_segments(wav: np.ndarray, settings: PrepSettings = PrepSettings(), *,
                    ref_db: float | None = None) -> tuple[list[tuple[int, int]], float]:
    """Active sample ranges of ``wav`` and the level (dB) of its loudest frame.

    A frame is active when its RMS is within ``threshold_db`` of ``ref_db`` (default: the loudest frame of
    ``wav``) and above ``floor_dbfs``; runs of active frames closer than ``merge_gap_seconds`` are merged.
    Ranges are ``[start, end)`` in samples, frame-aligned and clipped to the signal.
    """
    frame = max(1, int(round(settings.frame_seconds * settings.sample_rate)))
    n = wav.shape[0]
    nf = -(-n // frame)
    if nf == 0:
        return [], -math.inf
    padded = np.zeros(nf * frame, dtype=np.float64)
    padded[:n] = wav
    rms = np.sqrt(np.mean(padded.reshape(nf, frame) ** 2, axis=1))
    db = 20.0 * np.log10(np.maximum(rms, 1e-12))
    peak = float(db.max())
    ref = peak if ref_db is None else ref_db
    active = (db >= ref - settings.threshold_db) & (db >= settings.floor_dbfs)
    idx = np.flatnonzero(active)
    if idx.size == 0:
        return [], peak
    gap = max(1, int(round(settings.merge_gap_seconds / settings.frame_seconds)))
    breaks = np.flatnonzero(np.diff(idx) > gap)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    return [(int(s) * frame, min(n, int(e) * frame)) for s, e in zip(starts, ends)], peak


def _excerpt_seed(sha256: str) -> int:
    return int(sha256[:16], 16)


def prepare_audio(wav: np.ndarray, settings: PrepSettings = PrepSettings(), *,
                  seed: int = 0) -> tuple[np.ndarray, tuple[tuple[int, int], ...]] | str:
    """Trim ``wav`` (16 kHz mono) to its active part, cap it, fade and peak-normalise it.

    Returns ``(clip, segments)`` (float32, peak 1; ``segments`` are the active ranges inside ``clip``) or,
    when nothing usable is left, a reason string. A part longer than ``max_seconds`` is cut to an excerpt
    whose start is drawn (from ``seed``) inside the active region.
    """
    wav = np.asarray(wav, dtype=np.float32)
    sr = settings.sample_rate
    segs, peak_db = active_segments(wav, settings)
    if not segs:
        return f"no active audio (loudest frame {peak_db:.1f} dBFS)"
    first, last = segs[0][0], segs[-1][1]
    if (last - first) < settings.min_active_seconds * sr:
        return f"active part {(last - first) / sr:.3f} s < {settings.min_active_seconds} s"
    margin = int(round(settings.margin_seconds * sr))
    cap = int(round(settings.max_seconds * sr))
    start, end = max(0, first - margin), min(wav.shape[0], last + margin)
    if end - start > cap:
        rng = np.random.default_rng(seed)
        hi = max(first, last - cap)
        start = int(rng.integers(first, hi + 1))
        end = start + cap
    clip = wav[start:end].astype(np.float64)
    fade = int(round(settings.fade_seconds * sr))
    if fade > 0 and clip.shape[0] > 2 * fade:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)
        clip[:fade] *= ramp
        clip[-fade:] *= ramp[::-1]
    peak = float(np.max(np.abs(clip)))
    if peak <= 0:
        return "digitally silent"
    clip = (clip / peak).astype(np.float32)
    # active ranges inside the clip, judged against the whole file's loudest frame
    inner = []
    for s, e in segs:
        s, e = max(s, start) - start, min(e, end) - start
        if e > s:
            inner.append((s, e))
    merged: list[tuple[int, int]] = []
    gap = int(round(settings.merge_gap_seconds * sr))
    for s, e in inner:
        if merged and s - merged[-1][1] <= gap:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    if not merged or merged[-1][1] - merged[0][0] < settings.min_active_seconds * sr:
        return "active part too short after cutting"
    return clip, tuple(merged)


def _prepare_one(args: tuple[str, str, PrepSettings, str]) -> tuple[str, np.ndarray | None, tuple, str]:
    """Prepare one file (cached); return ``(sha256, clip or None, segments, reason)``."""
    path, sha, settings, cache_dir = args
    cfile = Path(cache_dir) / sha[:2] / f"{sha}.npz"
    if cfile.is_file():
        try:
            with np.load(cfile, allow_pickle=False) as z:
                reason = str(z["reason"])
                if reason:
                    return sha, None, (), reason
                return sha, z["audio"].astype(np.float32), tuple(map(tuple, z["segments"].tolist())), ""
        except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed
            pass
    from ..audio import load_audio

    try:
        wav = load_audio(path, sample_rate=settings.sample_rate)
        res = prepare_audio(wav, settings, seed=_excerpt_seed(sha))
    except Exception as e:  # noqa: BLE001 - any decoder failure skips the source
        res = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    cfile.parent.mkdir(parents=True, exist_ok=True)
    tmp = cfile.with_name(f".{cfile.stem}.{os.getpid()}.tmp.npz")
    if isinstance(res, str):
        np.savez(tmp, reason=np.array(res), audio=np.zeros(0, np.float32), segments=np.zeros((0, 2), np.int64))
        os.replace(tmp, cfile)
        return sha, None, (), res
    clip, segs = res
    np.savez(tmp, reason=np.array(""), audio=clip, segments=np.array(segs, dtype=np.int64).reshape(-1, 2))
    os.replace(tmp, cfile)
    return sha, clip, segs, ""


def _pool(workers: int):
    import multiprocessing as mp

    methods = mp.get_all_start_methods()
    ctx = mp.get_context("fork" if "fork" in methods else None)
    return ctx.Pool(processes=workers)


def prepare_sources(sources: Sequence[Source], *, settings: PrepSettings = PrepSettings(),
                    cache: str | os.PathLike | None = None, workers: int = 1,
                    progress: Callable[[str, int, int], None] | None = None,
                    ) -> tuple[list[Prepared], list[tuple[str, str, str]]]:
    """Prepare every source once (cached by file sha256 + settings); return ``(prepared, skipped)``.

    ``skipped`` holds ``(package, original_path, reason)`` of sources with no usable audio. Order follows
    ``sources``.
    """
    cache_dir = corpus_cache(cache) / "prepared" / settings.key()
    shas = [sha256_file(Path(s.path)) for s in sources]
    jobs = [(str(s.path), h, settings, str(cache_dir)) for s, h in zip(sources, shas)]
    results: dict[str, tuple] = {}
    todo = list(dict.fromkeys(j[1] for j in jobs))
    by_sha = {j[1]: j for j in jobs}
    if workers > 1 and len(todo) > 1:
        with _pool(workers) as pool:
            for i, r in enumerate(pool.imap_unordered(_prepare_one, [by_sha[h] for h in todo], chunksize=8)):
                results[r[0]] = r
                if progress is not None:
                    progress("prepare", i + 1, len(todo))
    else:
        for i, h in enumerate(todo):
            results[h] = _prepare_one(by_sha[h])
            if progress is not None:
                progress("prepare", i + 1, len(todo))
    prepared, skipped = [], []
    for s, h in zip(sources, shas):
        _, clip, segs, reason = results[h]
        if clip is None:
            skipped.append((s.package, s.original_path, reason))
        else:
            prepared.append(Prepared(s, h, clip, segs))
    return prepared, skipped


# ------------------------------------------------------------------------------------------- classes, splits


def select_classes(prepared: Sequence[Prepared], *, min_files: int = 3,
                   min_families: int = 2) -> tuple[list[Prepared], dict[str, str]]:
    """Keep sources of classes with >= ``min_files`` files and >= ``min_families`` families.

    Returns the kept sources and ``{dropped class: reason}``.
    """
    files: dict[str, int] = {}
    fams: dict[str, set[str]] = {}
    for p in prepared:
        files[p.source.label] = files.get(p.source.label, 0) + 1
        fams.setdefault(p.source.label, set()).add(p.source.family)
    dropped = {}
    for label in sorted(files):
        if files[label] < min_files:
            dropped[label] = f"{files[label]} file(s) < {min_files}"
        elif len(fams[label]) < min_families:
            dropped[label] = f"{len(fams[label])} family < {min_families}"
    return [p for p in prepared if p.source.label not in dropped], dropped


def _split_counts(n: int) -> dict[str, int]:
    """Families per split for a class with ``n`` families: 2 -> train+test; >= 3 -> >= 1 train and test."""
    if n <= 1:
        return {"train": n, "val": 0, "test": 0}
    if n == 2:
        return {"train": 1, "val": 0, "test": 1}
    test = max(1, int(math.floor(SPLIT_FRACTIONS["test"] * n + 0.5)))
    val = int(math.floor(SPLIT_FRACTIONS["val"] * n + 0.5))
    if n - test - val < 1:
        val = max(0, n - test - 1)
    return {"train": n - test - val, "val": val, "test": test}


def _hash_seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "little")


def assign_splits(class_families: Mapping[str, Sequence[str]], seed: int = 0) -> dict[str, str]:
    """Assign FAMILIES to train/val/test; return ``{family: split}``.

    Per class, about 70/10/20 % of its families (:func:`_split_counts`), seeded. A family is one unit
    across classes: a family shared by two classes (a snare whose rimshots are another class) gets one
    split, decided by the class with the fewest families, and the other class's quotas count it.
    """
    order = sorted(class_families, key=lambda c: (len(set(class_families[c])), c))
    out: dict[str, str] = {}
    for label in order:
        fams = sorted(set(class_families[label]))
        want = _split_counts(len(fams))
        for f in fams:
            if f in out and want[out[f]] > 0:
                want[out[f]] -= 1
        free = [f for f in fams if f not in out]
        rng = np.random.default_rng(_hash_seed(seed, "split", label))
        free = [free[i] for i in rng.permutation(len(free))]
        slots = [s for s in ("test", "train", "val") for _ in range(want[s])]
        for i, f in enumerate(free):
            out[f] = slots[i] if i < len(slots) else "train"
    return out


def scene_splits(n_scenes: int, seed: int = 0) -> list[str]:
    """The split of each scene: exactly ``round(0.7 n)`` train, ``round(0.1 n)`` val, the rest test,
    in a seeded order."""
    n_train = int(round(SPLIT_FRACTIONS["train"] * n_scenes))
    n_val = int(round(SPLIT_FRACTIONS["val"] * n_scenes))
    n_val = min(n_val, n_scenes - n_train)
    labels = ["train"] * n_train + ["val"] * n_val + ["test"] * (n_scenes - n_train - n_val)
    perm = np.random.default_rng(_hash_seed(seed, "scene-splits", n_scenes)).permutation(n_scenes)
    return [labels[i] for i in perm]


def estimate_strict_train(n_scenes: int, n_classes: int, *, held_out: float = 0.4,
                          probs: Sequence[float] = EVENT_COUNT_PROBS) -> float:
    """Expected training scenes left when every scene holding one of ``round(held_out * n_classes)`` held-out
    classes is dropped: ``0.7 n * sum_k p_k C(C-H, k) / C(C, k)`` (classes drawn uniformly without
    replacement)."""
    c = n_classes
    h = int(round(held_out * c))
    if c <= 0:
        return 0.0
    keep = 0.0
    for k, p in enumerate(probs, start=1):
        k = min(k, c)
        keep += p * (math.comb(c - h, k) / math.comb(c, k) if c - h >= k else 0.0)
    return SPLIT_FRACTIONS["train"] * n_scenes * keep


# ------------------------------------------------------------------------------------------- scenes


def _coloured_noise(rng: np.random.Generator, n: int, slope: float, sr: int, low_hz: float) -> np.ndarray:
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    w = np.maximum(f, low_hz) ** (-slope / 2.0)
    w[0] = 0.0
    y = np.fft.irfft(spec * w, n=n)
    return y / max(float(np.sqrt(np.mean(y**2))), 1e-12)


@dataclass(frozen=True)
class _Pools:
    """Per split: sorted classes -> sorted families -> prepared-source indices."""

    by_split: dict[str, list[tuple[str, list[list[int]]]]]


def _make_pools(prepared: Sequence[Prepared], family_split: Mapping[str, str]) -> _Pools:
    tree: dict[str, dict[str, dict[str, list[int]]]] = {s: {} for s in SPLITS}
    for i, p in enumerate(prepared):
        split = family_split[p.source.family]
        tree[split].setdefault(p.source.label, {}).setdefault(p.source.family, []).append(i)
    by_split = {
        s: [(label, [tree[s][label][f] for f in sorted(tree[s][label])]) for label in sorted(tree[s])]
        for s in SPLITS
    }
    return _Pools(by_split)


@dataclass
class SceneResult:
    index: int
    filename: str
    split: str
    labels: list[str]
    events: list[tuple[str, float, float, str]]
    sources: list[int]


def render_scene(index: int, split: str, seed: int, prepared: Sequence[Prepared], pools: _Pools,
                 mix: MixSettings = MixSettings()) -> tuple[np.ndarray, SceneResult]:
    """Mix scene ``index`` of ``split``: int16 samples and its labels/events. Pure in its arguments."""
    rng = np.random.default_rng([seed, index, 0x5CE7E])
    sr = mix.sample_rate
    n = int(round(mix.seconds * sr))
    pool = pools.by_split[split]
    if not pool:
        raise ParameterError(f"render_scene: split {split!r} has no classes")
    probs = np.asarray(mix.event_count_probs, dtype=np.float64)
    k = int(rng.choice(probs.shape[0], p=probs / probs.sum())) + 1
    k = min(k, len(pool))
    picks = rng.choice(len(pool), size=k, replace=False)
    bus = np.zeros(n, dtype=np.float64)
    active = np.zeros(n, dtype=bool)
    filename = f"audio/{split}/scene_{index:05d}.flac"
    events: list[tuple[str, float, float, str]] = []
    used: list[int] = []
    for c in picks:
        label, families = pool[int(c)]
        fam = families[int(rng.integers(len(families)))]
        src = fam[int(rng.integers(len(fam)))]
        p = prepared[src]
        clip = p.audio[:n]
        length = clip.shape[0]
        onset = int(rng.integers(0, n - length + 1))
        gain = 10.0 ** (rng.uniform(*mix.gain_db) / 20.0)
        bus[onset:onset + length] += gain * clip
        for s, e in p.segments:
            s, e = min(s, length), min(e, length)
            if e > s:
                active[onset + s:onset + e] = True
                events.append((filename, round((onset + s) / sr, 3), round((onset + e) / sr, 3), label))
        used.append(src)
    peak = float(np.max(np.abs(bus)))
    rms = float(np.sqrt(np.mean(bus[active] ** 2))) if active.any() else 0.0
    scale = 0.0
    if peak > 0 and rms > 0:
        scale = min(10 ** (mix.target_rms_dbfs / 20) / rms, 10 ** (mix.peak_dbfs / 20) / peak)
    slope = rng.uniform(*mix.noise_slope)
    level = 10 ** (rng.uniform(*mix.noise_dbfs) / 20)
    noise = _coloured_noise(rng, n, slope, sr, mix.noise_low_hz) * level
    y = bus * scale + noise
    y = np.clip(np.round(y * 32767.0), -32767, 32767).astype(np.int16)
    events.sort(key=lambda e: (e[1], e[2], e[3]))
    labels = sorted({pool[int(c)][0] for c in picks})
    return y, SceneResult(index, filename, split, labels, events, used)


# worker state (set before forking, or by the initializer)
_STATE: dict[str, object] = {}


def _scene_job(index: int) -> SceneResult:
    import soundfile as sf

    st = _STATE
    split = st["splits"][index]  # type: ignore[index]
    y, res = render_scene(index, split, st["seed"], st["prepared"], st["pools"], st["mix"])  # type: ignore[arg-type]
    path = Path(st["root"]) / res.filename  # type: ignore[arg-type]
    sf.write(str(path), y, st["mix"].sample_rate, subtype="PCM_16", format="FLAC")  # type: ignore[union-attr]
    return res


def _init_worker(state: dict) -> None:
    _STATE.clear()
    _STATE.update(state)


def _render_all(root: Path, splits: list[str], seed: int, prepared: Sequence[Prepared], pools: _Pools,
                mix: MixSettings, workers: int, progress) -> list[SceneResult]:
    for s in SPLITS:
        (root / "audio" / s).mkdir(parents=True, exist_ok=True)
    state = {"splits": splits, "seed": seed, "prepared": prepared, "pools": pools, "mix": mix, "root": str(root)}
    n = len(splits)
    results: list[SceneResult] = []
    step = max(1, n // 100)
    if workers > 1 and n > 1:
        import multiprocessing as mp

        if "fork" in mp.get_all_start_methods():
            _init_worker(state)  # inherited by the forked workers without pickling
            pool = mp.get_context("fork").Pool(workers)
        else:  # pragma: no cover - spawn platforms
            pool = mp.get_context().Pool(workers, initializer=_init_worker, initargs=(state,))
        try:
            with pool:
                for i, r in enumerate(pool.imap(_scene_job, range(n), chunksize=16)):
                    results.append(r)
                    if progress is not None and ((i + 1) % step == 0 or i + 1 == n):
                        progress("scenes", i + 1, n)
        finally:
            _STATE.clear()
    else:
        _init_worker(state)
        try:
            for i in range(n):
                results.append(_scene_job(i))
                if progress is not None and ((i + 1) % step == 0 or i + 1 == n):
                    progress("scenes", i + 1, n)
        finally:
            _STATE.clear()
    return results


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
                 family_split: Mapping[str, str]) -> str:
    per_pkg: dict[str, dict[str, int]] = {}
    used_files: dict[str, int] = {}
    for p, c in zip(prepared, counts):
        if c == 0:
            continue
        per_pkg.setdefault(p.source.package, {})
        per_pkg[p.source.package][p.source.licence] = per_pkg[p.source.package].get(p.source.licence, 0) + 1
        used_files[p.source.package] = used_files.get(p.source.package, 0) + 1
    all_lic = sorted({lic for d in per_pkg.values() for lic in d})
    lines = [
        "# Licences of the debian-sfx corpus",
        "",
        "Every scene is a derived work that mixes up to four recordings or rendered notes, each under its own "
        "licence, over generated noise. The licences involved are:",
        "",
        *[f"- {lic}" for lic in all_lic],
        "",
        "A scene is distributed under the terms of all the licences of the sources it uses: `scene_sources.csv` "
        "lists the sources of each scene (package, path inside the package, licence) and `provenance.csv` "
        "every source (package, version, path inside the package, licence, split, number of scenes using "
        "it). Copyleft (GPL, CC-BY-SA) sources make the scenes that contain them subject to those terms; "
        "CC-BY sources need attribution (the authors are named in each package's `copyright` file, "
        "`/usr/share/doc/<package>/copyright`). The generated noise bed and the mixing carry no licence "
        "restrictions.",
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
    workers: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
    cache: str | os.PathLike | None = None,
    prep: PrepSettings = PrepSettings(),
    mix: MixSettings = MixSettings(),
    extra_info: Mapping[str, object] | None = None,
    timings: dict[str, float] | None = None,
    test_only: bool = False,
) -> BuildSummary:
    """Build the corpus from given ``sources`` (the part of :func:`build_corpus` after collecting).

    ``test_only`` puts every family and every scene in the test split (a dataset for evaluation only).
    """
    if n_scenes < 1:
        raise ParameterError(f"build: n_scenes must be >= 1, got {n_scenes}")
    if workers < 1:
        raise ParameterError(f"build: workers must be >= 1, got {workers}")
    out = Path(out)
    timings = dict(timings or {})
    t0 = time.perf_counter()
    prepared, skipped = prepare_sources(sources, settings=prep, cache=cache, workers=workers, progress=progress)
    kept, dropped = select_classes(prepared, min_files=min_files)
    if not kept:
        raise ParameterError("build: no class has enough files and families")
    class_fams: dict[str, list[str]] = {}
    for p in kept:
        class_fams.setdefault(p.source.label, []).append(p.source.family)
    family_split = assign_splits(class_fams, seed)
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
        (tmp / "LICENSES.md").write_text(_licences_md(kept, counts, manifest, family_split), encoding="utf-8")

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
            settings={"prep": asdict(prep), "mix": asdict(mix), "min_files": min_files, "min_families": 2},
        )
        info = {
            "corpus": "debian-sfx",
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

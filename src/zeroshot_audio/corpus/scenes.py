"""Scenes of the ``debian-sfx`` corpus: mix one 10 s scene (:func:`render_scene`) and write them all.

Scene ``i`` is a pure function of ``(seed, i, prepared sources)``: 1-4 events of distinct classes of the
scene's split at random onsets and gains over a quiet coloured-noise bed. ``_render_all`` writes every scene
as 16-bit FLAC, in a worker pool when asked; the output does not depend on the number of workers. Used by
:mod:`zeroshot_audio.corpus.build`, which re-exports these names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._errors import ParameterError
from ..data.folds import SPLITS
from .prepare import SAMPLE_RATE, Prepared
from .splits import EVENT_COUNT_PROBS

__all__ = [
    "SCENE_SECONDS",
    "MixSettings",
    "SceneResult",
    "render_scene",
]

SCENE_SECONDS = 10.0


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
    noise_bed: bool = True  # False: the same scenes (events, gains, levels) without the noise bed


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
    y = bus * scale + noise if mix.noise_bed else bus * scale
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

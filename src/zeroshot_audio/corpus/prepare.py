"""Preparation of the ``debian-sfx`` sources: each source becomes one event clip.

:func:`prepare_audio` decodes nothing: it trims a 16 kHz mono waveform to its active part
(:func:`active_segments`), caps it at :attr:`PrepSettings.max_seconds` (a seeded excerpt of the active region
for longer files), fades and peak-normalises it. :func:`prepare_sources` decodes every source once, with a
worker pool, and caches the result under ``<corpus cache>/prepared/`` keyed by the file's sha256 and the
settings. Used by :mod:`zeroshot_audio.corpus.build`, which re-exports these names.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .._io import sha256_file
from .packages import corpus_cache
from .sources import Source

__all__ = [
    "SAMPLE_RATE",
    "PrepSettings",
    "Prepared",
    "active_segments",
    "prepare_audio",
    "prepare_sources",
]

SAMPLE_RATE = 16000


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

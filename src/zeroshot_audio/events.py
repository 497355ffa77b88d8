"""When a label is heard: per-segment detection scores and events (numpy only).

Per-segment scores come from a trained model (``segment_scores [T, C]`` and ``attention [T, C]``, see
:func:`zeroshot_audio.train.fit.predict_segments`). Two kinds are offered:

- ``"segment"``: the segment compatibility ``s_t(y)`` (any pooling; the mean-pooling model gives the
  baseline of the method's comparison);
- ``"attention"``: ``alpha_t(y) / max_t alpha_t(y) * sigmoid(F(y))``: where the attention of the class sits,
  scaled by how present the class is in the clip (attention models only).

Segment ``t`` is assigned the frame ``[t * hop, (t + 1) * hop)`` (the last one ends at the clip's end).
Detection against strong labels is scored in :mod:`zeroshot_audio.evaluation.detection`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._errors import ParameterError
from ._math import sigmoid

__all__ = ["DETECTION_KINDS", "frame_timestamps", "detection_scores", "active_runs", "run_maxima", "scores_to_events"]

DETECTION_KINDS = ("segment", "attention")


def frame_timestamps(n_segments: int, hop: float, duration: float) -> np.ndarray:
    """``[T + 1]`` frame boundaries: ``0, hop, ..., (T - 1) * hop`` and the clip's end."""
    if n_segments < 1 or hop <= 0:
        raise ParameterError(f"need n_segments >= 1 and hop > 0, got {n_segments} and {hop}")
    starts = np.arange(n_segments) * float(hop)
    end = max(float(duration), starts[-1] + 1e-3)
    return np.r_[starts, end]


def detection_scores(
    kind: str, segment_scores: np.ndarray, attention: np.ndarray, clip_scores: np.ndarray
) -> np.ndarray:
    """Per-segment detection scores ``[T, C]`` of one clip (see the module docstring for the kinds)."""
    if kind == "segment":
        return np.asarray(segment_scores, dtype=np.float64)
    if kind == "attention":
        att = np.asarray(attention, dtype=np.float64)
        peak = np.maximum(att.max(axis=0, keepdims=True), 1e-12)
        presence = sigmoid(clip_scores)
        return att / peak * presence[None, :]
    raise ParameterError(f"unknown detection score kind {kind!r} (expected one of: {', '.join(DETECTION_KINDS)})")


def active_runs(active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of True in each column of ``active [T, C]``, as ``(column, start, stop)`` arrays.

    A run covers rows ``start .. stop - 1``; runs are ordered by column, then by start. Vectorised: the
    cost is linear in ``T * C``, whatever the number of runs.
    """
    active = np.asarray(active, dtype=bool)
    edges = np.diff(np.pad(active.T.astype(np.int8), ((0, 0), (1, 1))), axis=1)  # [C, T + 1]
    col, start = np.nonzero(edges == 1)  # row-major: by column, then time; starts and stops alternate
    _, stop = np.nonzero(edges == -1)
    return col, start, stop


def run_maxima(scores: np.ndarray, col: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """The maximum of ``scores [T, C]`` over each run of :func:`active_runs` (vectorised)."""
    if col.size == 0:
        return np.zeros(0, dtype=np.asarray(scores).dtype)
    t = scores.shape[0]
    flat = np.append(np.ascontiguousarray(np.asarray(scores).T).ravel(), 0)  # the sentinel makes every stop valid
    bounds = np.empty(2 * col.size, dtype=np.int64)
    bounds[0::2] = col * t + start
    bounds[1::2] = col * t + stop
    return np.maximum.reduceat(flat, bounds)[0::2]


def scores_to_events(
    scores: np.ndarray, timestamps: np.ndarray, classes: Sequence[str], *, threshold: float
) -> list[tuple[float, float, str, float]]:
    """Runs of frames scoring at least ``threshold`` as ``(onset, offset, label, peak score)``, by onset."""
    scores = np.asarray(scores)
    col, start, stop = active_runs(scores >= threshold)
    peaks = run_maxima(scores, col, start, stop)
    stamps = np.asarray(timestamps, dtype=np.float64)
    events = [(a, b, classes[c], p) for c, a, b, p in
              zip(col.tolist(), stamps[start].tolist(), stamps[stop].tolist(), peaks.astype(np.float64).tolist())]
    return sorted(events, key=lambda e: (e[0], e[2]))

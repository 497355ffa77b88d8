"""When a label is heard: per-segment detection scores, events, and their evaluation against strong labels.

Per-segment scores come from a trained model (``segment_scores [T, C]`` and ``attention [T, C]``, see
:func:`zeroshot_audio.train.fit.predict_segments`). Two kinds are offered:

- ``"segment"``: the segment compatibility ``s_t(y)`` (any pooling; the mean-pooling model gives the
  baseline of the method's comparison);
- ``"attention"``: ``alpha_t(y) / max_t alpha_t(y) * sigmoid(F(y))``: where the attention of the class sits,
  scaled by how present the class is in the clip (attention models only).

Segment ``t`` is assigned the frame ``[t * hop, (t + 1) * hop)`` (the last one ends at the clip's end).
Detection is scored with ``sed_scores_eval`` (segment-based, 1 s segments): the best macro F1 over
thresholds (the threshold is chosen per class on the scored clips, an upper bound for a fixed threshold),
the threshold-free average precision and the area under the ROC curve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._errors import ParameterError, missing_dependency
from .metrics import _nan_to_none

__all__ = ["DETECTION_KINDS", "frame_timestamps", "detection_scores", "active_runs", "run_maxima", "scores_to_events",
           "evaluate_detection"]

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
        presence = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(clip_scores, dtype=np.float64)))  # sigmoid, no overflow
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


def evaluate_detection(
    scores: Mapping[str, np.ndarray],
    timestamps: Mapping[str, np.ndarray],
    classes: Sequence[str],
    ground_truth: Mapping[str, Sequence[tuple[float, float, str]]],
    durations: Mapping[str, float],
    *,
    segment_length: float = 1.0,
) -> dict[str, Any]:
    """Segment-based detection metrics of per-segment scores against strong labels.

    Parameters
    ----------
    scores : mapping clip -> np.ndarray [T, C]
    timestamps : mapping clip -> np.ndarray [T + 1]
    classes : sequence of str
        The ``C`` class names; ground-truth events of other classes are ignored.
    ground_truth : mapping clip -> list of (onset, offset, label)
    durations : mapping clip -> seconds
    segment_length : float
        Evaluation segment length in seconds.

    Returns
    -------
    dict
        ``segment_f1_best``, ``segment_ap``, ``segment_auroc`` (macro over classes with events), the same per
        class, and ``n_clips`` / ``n_classes_with_events``.
    """
    try:
        from sed_scores_eval import segment_based
        from sed_scores_eval.base_modules.scores import create_score_dataframe
    except ImportError:
        raise missing_dependency("sed-scores-eval", "event detection scoring") from None
    keep = set(classes)
    gt = {k: [(float(a), float(b), lab) for a, b, lab in ground_truth.get(k, []) if lab in keep] for k in scores}
    with_events = sorted({lab for evs in gt.values() for _, _, lab in evs})
    if not with_events:
        return {"segment_f1_best": None, "segment_ap": None, "segment_auroc": None, "per_class": {},
                "n_clips": len(scores), "n_classes_with_events": 0}
    cols = [classes.index(c) for c in with_events]  # classes without any event have no defined score
    frames = {k: create_score_dataframe(np.asarray(v)[:, cols], np.asarray(timestamps[k]), with_events)
              for k, v in scores.items()}
    dur = {k: float(durations[k]) for k in scores}
    from sed_scores_eval.segment_based.intermediate_statistics import intermediate_statistics_deltas

    deltas = intermediate_statistics_deltas(frames, gt, dur, segment_length=segment_length)  # once, for all three
    f1, _, _, _, _ = segment_based.best_fscore(frames, gt, dur, deltas=deltas, segment_length=segment_length)
    ap, _ = segment_based.average_precision(frames, gt, dur, deltas=deltas, segment_length=segment_length)
    auroc, _ = segment_based.auroc(frames, gt, dur, deltas=deltas, segment_length=segment_length)
    per_class = {c: {"f1_best": _nan_to_none(f1[c]), "ap": _nan_to_none(ap[c]), "auroc": _nan_to_none(auroc[c])}
                 for c in with_events}
    return {
        "segment_f1_best": _nan_to_none(f1["macro_average"]),
        "segment_ap": _nan_to_none(np.mean([ap[c] for c in with_events])),
        "segment_auroc": _nan_to_none(auroc["mean"] if "mean" in auroc else np.mean([auroc[c] for c in with_events])),
        "per_class": per_class,
        "n_clips": len(scores),
        "n_classes_with_events": len(with_events),
    }

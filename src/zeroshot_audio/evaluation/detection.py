"""Event detection scored against strong labels with ``sed_scores_eval`` (the [eval] extra).

Per-segment detection scores come from :func:`zeroshot_audio.events.detection_scores`, with frame boundaries
from :func:`zeroshot_audio.events.frame_timestamps`. Detection is scored segment-based (1 s segments): the
best macro F1 over thresholds (the threshold is chosen per class on the scored clips, an upper bound for a
fixed threshold), the threshold-free average precision and the area under the ROC curve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._errors import missing_dependency
from .metrics import _nan_to_none

__all__ = ["evaluate_detection"]


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

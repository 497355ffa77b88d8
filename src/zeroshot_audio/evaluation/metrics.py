"""Clip-level metrics: average precision per class, macro mAP, and top-k F1.

Arrays: ``y_true [N, C]`` (bool, clip ``n`` has class ``c``) and ``scores [N, C]`` (higher = more likely).
Classes without a positive clip have no defined AP: they are left out of the mean and counted, never
scored 0 (which would silently drag a fold's mean down).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._errors import ParameterError

__all__ = ["average_precision", "mean_average_precision", "f1_at_k", "top_k_accuracy", "evaluate_scores"]


def _check_pair(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if y_true.ndim != 2 or scores.shape != y_true.shape:
        raise ParameterError(
            f"y_true and scores must be 2-D arrays of one shape [N, C], got {y_true.shape} and {scores.shape}"
        )
    if not np.isfinite(scores).all():
        raise ParameterError("scores contain NaN or infinite values")
    return y_true, scores


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Average precision of one class, tied scores handled as one threshold (as scikit-learn does).

    Parameters
    ----------
    y_true : np.ndarray [N]
        Whether each clip holds the class.
    scores : np.ndarray [N]
        The class score of each clip.

    Returns
    -------
    float
        ``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds; NaN when there is no positive.
    """
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order]
    # last index of each run of equal scores: a threshold admits the whole run at once
    last = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[last]
    precision = tps / (last + 1)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def mean_average_precision(y_true: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray]:
    """Macro mAP over the classes that have at least one positive clip.

    Returns
    -------
    map : float
        Mean of the defined per-class APs (NaN when no class has a positive).
    per_class : np.ndarray [C]
        AP of every class, NaN for classes without positives.
    """
    y_true, scores = _check_pair(y_true, scores)
    per_class = np.array([average_precision(y_true[:, c], scores[:, c]) for c in range(y_true.shape[1])])
    defined = ~np.isnan(per_class)
    value = float(per_class[defined].mean()) if defined.any() else float("nan")
    return value, per_class


def f1_at_k(y_true: np.ndarray, scores: np.ndarray, k: int) -> float:
    """F1 of predicting the ``k`` best-scored classes of every clip, counts pooled over clips.

    Precision is true positives over all ``N * min(k, C)`` predictions, recall true positives over all
    positive labels; ties are broken by class order.
    """
    y_true, scores = _check_pair(y_true, scores)
    if k < 1:
        raise ParameterError(f"k must be >= 1, got {k}")
    n, c = y_true.shape
    k = min(k, c)
    if n == 0 or c == 0:
        return float("nan")
    top = np.argsort(-scores, axis=1, kind="mergesort")[:, :k]
    tp = int(np.take_along_axis(y_true, top, axis=1).sum())
    n_pos = int(y_true.sum())
    if tp == 0:
        return 0.0
    precision = tp / (n * k)
    recall = tp / n_pos
    return float(2 * precision * recall / (precision + recall))


def top_k_accuracy(y_true: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of the clips with at least one label for which one of their labels is among the ``k`` best-scored
    classes (ties broken by class order); NaN when no clip has a label.

    For single-label clips it answers "is the right label among the first ``k``".
    """
    y_true, scores = _check_pair(y_true, scores)
    if k < 1:
        raise ParameterError(f"k must be >= 1, got {k}")
    has = y_true.any(axis=1)
    if not has.any():
        return float("nan")
    k = min(k, y_true.shape[1])
    top = np.argsort(-scores[has], axis=1, kind="mergesort")[:, :k]
    return float(np.take_along_axis(y_true[has], top, axis=1).any(axis=1).mean())


def evaluate_scores(
    y_true: np.ndarray, scores: np.ndarray, classes: Sequence[str], *, ks: Sequence[int] = (1, 3)
) -> dict[str, Any]:
    """All clip-level metrics of one score matrix, in the JSON layout of ``zsa evaluate``.

    Returns
    -------
    dict
        ``map``, ``f1@k`` for each ``k``, ``per_class`` ({label: AP or None}), ``n_clips``,
        ``n_classes`` and ``n_classes_without_positives``.
    """
    y_true, scores = _check_pair(y_true, scores)
    if len(classes) != y_true.shape[1]:
        raise ParameterError(f"{len(classes)} class names given for {y_true.shape[1]} score columns")
    value, per_class = mean_average_precision(y_true, scores)
    out: dict[str, Any] = {"map": _nan_to_none(value)}
    for k in ks:
        out[f"f1@{k}"] = _nan_to_none(f1_at_k(y_true, scores, k))
    out["per_class"] = {label: _nan_to_none(ap) for label, ap in zip(classes, per_class)}
    out["n_clips"] = int(y_true.shape[0])
    out["n_classes"] = int(y_true.shape[1])
    out["n_classes_without_positives"] = int(np.isnan(per_class).sum())
    return out


def _nan_to_none(x: float) -> float | None:
    return None if x is None or np.isnan(x) else float(x)

"""Is ``probability >= 0.5`` a sound "present" decision on classes a calibration never saw?

:func:`calibration_report` cross-validates a Platt calibration over class folds: for each fold, ``sigmoid(scale
* F + bias)`` is fitted on the scores of the other folds' classes and applied to this fold's classes, so every
probability is one of a class the calibration did not see. It reports the expected calibration error, F1 at
probability 0.5 next to F1 at the best threshold (micro-averaged over clip-class pairs), and the reliability
diagram's bins. :func:`decision_report` measures already calibrated probabilities the same way (e.g. on
another dataset).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import ParameterError
from .._math import sigmoid

__all__ = ["calibration_report", "decision_report", "reliability_bins", "f1_threshold", "fit_decision_calibration"]


def reliability_bins(prob: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per equal-width probability bin: ``lo``, ``hi``, ``n`` pairs, mean ``probability``, observed ``frequency``."""
    prob, y = np.asarray(prob, np.float64).ravel(), np.asarray(y, bool).ravel()
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(prob, edges) - 1, 0, bins - 1)
    out = []
    for i in range(bins):
        sel = idx == i
        out.append({"lo": float(edges[i]), "hi": float(edges[i + 1]), "n": int(sel.sum()),
                    "probability": float(prob[sel].mean()) if sel.any() else float("nan"),
                    "frequency": float(y[sel].mean()) if sel.any() else float("nan")})
    return out


def _f1(pred: np.ndarray, y: np.ndarray) -> float:
    tp = float((pred & y).sum())
    denom = float(pred.sum() + y.sum())
    return 2 * tp / denom if denom else 0.0


def decision_report(prob: np.ndarray, y: np.ndarray, *, bins: int = 10) -> dict[str, Any]:
    """How well calibrated probabilities ``prob`` decide labels ``y`` (any shape, flattened pairs).

    Returns ``ece``, ``f1_at_0.5``, ``f1_best`` with its ``best_threshold``, ``precision_at_0.5``,
    ``recall_at_0.5``, ``n_pairs``, ``n_positive`` and the reliability ``bins``.
    """
    prob, y = np.asarray(prob, np.float64).ravel(), np.asarray(y, bool).ravel()
    if prob.shape != y.shape or prob.size == 0:
        raise ParameterError(f"probabilities and labels must be non-empty and of one size, got {prob.size}, {y.size}")
    rel = reliability_bins(prob, y, bins)
    ece = sum(abs(b["probability"] - b["frequency"]) * b["n"] for b in rel if b["n"]) / prob.size
    order = np.argsort(-prob, kind="stable")
    tp = np.cumsum(y[order])
    k = np.arange(1, prob.size + 1)
    f1 = 2 * tp / (k + y.sum()) if y.any() else np.zeros(prob.size)
    best = int(np.argmax(f1))
    pred = prob >= 0.5
    return {"ece": float(ece), "f1_at_0.5": _f1(pred, y), "f1_best": float(f1[best]),
            "best_threshold": float(prob[order][best]),
            "precision_at_0.5": float((pred & y).sum() / pred.sum()) if pred.any() else None,
            "recall_at_0.5": float((pred & y).sum() / y.sum()) if y.any() else None,
            "n_pairs": int(prob.size), "n_positive": int(y.sum()), "bins": rel}


def f1_threshold(prob: np.ndarray, y: np.ndarray) -> float:
    """The probability threshold at which deciding ``prob >= t`` gives the best F1 against ``y``."""
    return decision_report(prob, y)["best_threshold"]


def fit_decision_calibration(scores: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """``(scale, bias, shift)``: Platt's fit of ``scores`` to ``y``, then its bias moved by ``shift`` so that
    probability 0.5 falls where F1 is best on these scores (``shift = -logit(t*)``, ``t*`` the best-F1
    threshold of the Platt probabilities).

    Platt's probabilities hold for the prior of the data they were fitted on (a few percent of the clip-class
    pairs are positive in a corpus of scenes); shifting the log-odds is the same calibration for a prior under
    which ``>= 0.5`` is the best "present" decision, the question a user asks of their own label set.
    """
    from ..train.calibration import fit_platt

    scale, bias = fit_platt(scores, y)
    t = float(np.clip(f1_threshold(sigmoid(scale * np.asarray(scores, np.float64) + bias), y), 1e-4, 1 - 1e-4))
    shift = -float(np.log(t / (1 - t)))
    return scale, bias, shift


def calibration_report(scores: np.ndarray, y: np.ndarray, fold_of: np.ndarray, *, bins: int = 10) -> dict[str, Any]:
    """Cross-validated Platt calibration of ``scores [N, C]`` against ``y [N, C]``, classes in folds
    ``fold_of [C]`` (see the module docstring); also ``ece_raw``, the error of the plain ``sigmoid(F)``, and
    ``decision``: the same figures for the probabilities shifted so that 0.5 is the best-F1 decision
    (:func:`fit_decision_calibration`, the shift fitted on the other folds' classes too)."""
    scores, y = np.asarray(scores, np.float64), np.asarray(y, bool)
    fold_of = np.asarray(fold_of)
    if scores.shape != y.shape or scores.ndim != 2 or fold_of.shape != (scores.shape[1],):
        raise ParameterError(f"scores and y must be [N, C] and fold_of [C], got {scores.shape}, {y.shape}, "
                             f"{fold_of.shape}")
    prob = np.empty_like(scores)
    shifted = np.empty_like(scores)
    fits = []
    for k in np.unique(fold_of):
        held = fold_of == k
        scale, bias, shift = fit_decision_calibration(scores[:, ~held], y[:, ~held])
        prob[:, held] = sigmoid(scale * scores[:, held] + bias)
        shifted[:, held] = sigmoid(scale * scores[:, held] + bias + shift)
        fits.append({"fold": int(k), "scale": scale, "bias": bias, "shift": shift})
    out = decision_report(prob, y, bins=bins)
    out["ece_raw"] = decision_report(sigmoid(scores), y, bins=bins)["ece"]
    out["decision"] = decision_report(shifted, y, bins=bins)
    out["folds"] = fits
    return out

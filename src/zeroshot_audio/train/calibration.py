"""Calibrated probabilities: ``p = sigmoid(scale * F + bias)`` fitted on classes a model never trained on.

A zero-shot model is asked about labels it never saw, so its probabilities are calibrated on such labels:
the scores ``F`` of held-out classes are fitted to their labels by a one-feature logistic regression
(Platt scaling, :func:`fit_platt`), and the calibration is judged by the expected calibration error
(:func:`ece`) of the raw sigmoid and of the calibrated probability on clips not used for the fit.

Every model directory records its calibration the same way, under ``info.calibration`` of ``config.json``:
a fitted one as :meth:`Calibration.to_dict` (``fitted: true``, ``scale``, ``bias``, ``fitted_on``, ...),
one that could not be fitted as :func:`no_calibration` (``fitted: false`` and the ``reason``); a tagger
then uses the plain sigmoid of the score. Nothing here needs torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import ParameterError
from .._math import sigmoid

__all__ = [
    "Calibration", "fit_platt", "ece", "sigmoid", "no_calibration", "choose_heldout_classes", "calibration_problem",
    "DEFAULT_FRACTION", "MIN_CLASSES", "MIN_POSITIVES",
]

#: Share of the training classes held out of training for early stopping and calibration by default.
DEFAULT_FRACTION = 0.2
#: Fewest classes for which ``zsa train`` holds some out for calibration (at least 4 are then trained on).
MIN_CLASSES = 5
#: Fewest positive and fewest negative (clip, held-out class) pairs the fit needs.
MIN_POSITIVES = 10


def fit_platt(scores: np.ndarray, y: np.ndarray, iters: int = 100, ridge: float = 1e-3) -> tuple[float, float]:
    """Logistic regression of y on one score: ``(scale, bias)`` with ``p = sigmoid(scale * F + bias)``.

    Fitted on standardised scores by damped Newton steps (a step that raises the loss is halved), with a
    small ridge penalty, then mapped back to the raw score scale.

    Parameters
    ----------
    scores : np.ndarray [...]
        Scores ``F`` (any shape; flattened).
    y : np.ndarray [...]
        Their 0/1 labels, the same shape.
    """
    x = np.asarray(scores).astype(np.float64).ravel()
    t = np.asarray(y).astype(np.float64).ravel()
    if x.shape != t.shape or x.size == 0:
        raise ParameterError(f"fit_platt: scores and labels must be non-empty and of one size, got {x.size} and "
                             f"{t.size}")
    mu, sd = x.mean(), x.std() + 1e-12
    z = (x - mu) / sd

    def loss(w):
        u = w[0] * z + w[1]
        return np.mean(np.logaddexp(0, u) - t * u) + ridge * w[0] ** 2

    w = np.zeros(2)
    for _ in range(iters):
        p = sigmoid(w[0] * z + w[1])
        g = np.array([np.mean((p - t) * z) + 2 * ridge * w[0], np.mean(p - t)])
        q = p * (1 - p)
        h = np.array([[np.mean(q * z * z) + 2 * ridge, np.mean(q * z)], [np.mean(q * z), np.mean(q) + 1e-9]])
        step, f0 = np.linalg.solve(h, g), loss(w)
        while loss(w - step) > f0 and np.abs(step).max() > 1e-12:
            step = step / 2
        w = w - step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0] / sd), float(w[1] - w[0] * mu / sd)


def ece(prob: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins."""
    prob, y = np.asarray(prob).ravel(), np.asarray(y).ravel().astype(float)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(prob, edges) - 1, 0, bins - 1)
    return float(sum(abs(prob[idx == i].mean() - y[idx == i].mean()) * (idx == i).mean()
                     for i in range(bins) if (idx == i).any()))


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration and what it was fitted and judged on.

    Attributes
    ----------
    scale, bias : float
        ``p = sigmoid(scale * F + bias)``.
    fitted_on : str
        The scores it was fitted on, in words.
    classes : list of str
        The held-out classes (never trained on) whose scores it was fitted on.
    n_scores, n_positives : int
        (clip, class) pairs of the fit, and how many of them are positive.
    ece_raw_sigmoid, ece_calibrated : float or None
        Expected calibration error of ``sigmoid(F)`` and of the calibrated probability on ``ece_measured_on``.
    ece_measured_on : str
    """

    scale: float
    bias: float
    fitted_on: str
    classes: list[str] = field(default_factory=list)
    n_scores: int = 0
    n_positives: int = 0
    ece_raw_sigmoid: float | None = None
    ece_calibrated: float | None = None
    ece_measured_on: str = ""

    def __post_init__(self) -> None:
        for name in ("scale", "bias"):
            if not math.isfinite(getattr(self, name)):
                raise ParameterError(f"calibration {name} must be finite, got {getattr(self, name)}")

    def problem(self) -> str | None:
        """Why this fit is no calibration to keep, or None: a scale <= 0 would rank labels against their scores
        (the model's scores of the held-out classes do not rise with their labels: it does not transfer)."""
        if self.scale <= 0:
            return (f"the scores of the held-out classes do not rise with their labels (fitted scale "
                    f"{self.scale:.3g} <= 0): the model does not transfer to classes it did not train on")
        return None

    def probability(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probability of clip scores (float64, the shape of ``scores``)."""
        return sigmoid(self.scale * np.asarray(scores, dtype=np.float64) + self.bias)

    @classmethod
    def fit(cls, scores: np.ndarray, targets: np.ndarray, *, fitted_on: str, classes: Sequence[str] = (),
            eval_scores: np.ndarray | None = None, eval_targets: np.ndarray | None = None,
            eval_on: str = "") -> Calibration:
        """Fit on ``scores [N, C]`` against ``targets [N, C]``; the ECEs are measured on ``eval_scores`` /
        ``eval_targets`` when given (and holding a positive), else on the fitted scores themselves."""
        scale, bias = fit_platt(scores, targets)
        t = np.asarray(targets, dtype=bool)
        if eval_scores is None or eval_targets is None or not np.asarray(eval_targets).any():
            eval_scores, eval_targets, eval_on = scores, t, f"{fitted_on} (the fitted scores themselves)"
        es = np.asarray(eval_scores, dtype=np.float64)
        return cls(scale=scale, bias=bias, fitted_on=fitted_on, classes=list(classes), n_scores=int(t.size),
                   n_positives=int(t.sum()), ece_raw_sigmoid=ece(sigmoid(es), eval_targets),
                   ece_calibrated=ece(sigmoid(scale * es + bias), eval_targets), ece_measured_on=eval_on)

    def to_dict(self) -> dict[str, Any]:
        """The record of ``info.calibration`` in a model's ``config.json``."""
        return {"fitted": True, "scale": self.scale, "bias": self.bias, "fitted_on": self.fitted_on,
                "classes": list(self.classes), "n_scores": self.n_scores, "n_positives": self.n_positives,
                "ece_raw_sigmoid": self.ece_raw_sigmoid, "ece_calibrated": self.ece_calibrated,
                "ece_measured_on": self.ece_measured_on}


def no_calibration(reason: str) -> dict[str, Any]:
    """The record of ``info.calibration`` for a model without calibration: probabilities are ``sigmoid(F)``."""
    return {"fitted": False, "reason": reason}


def choose_heldout_classes(classes: Sequence[str], spec: float | Sequence[str], *, seed: int = 0) -> list[str]:
    """The classes held out of training for early stopping and calibration, in the order of ``classes``.

    Parameters
    ----------
    classes : sequence of str
        The classes the model is meant for.
    spec : float or sequence of str
        A fraction in (0, 1): that share of ``classes`` (rounded, at least one), chosen by a seeded
        permutation; or the held-out classes by name (each one of ``classes``).
    seed : int
    """
    classes = list(classes)
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        if not 0 < spec < 1:
            raise ParameterError(f"the share of calibration classes must be in (0, 1), got {spec}")
        k = max(1, int(round(spec * len(classes))))
        chosen = set(np.random.default_rng(seed).permutation(len(classes))[:k].tolist())
        return [c for i, c in enumerate(classes) if i in chosen]
    names = list(spec)
    known = set(classes)
    unknown = [c for c in names if c not in known]
    if unknown:
        raise ParameterError(f"{len(unknown)} calibration class(es) are not classes of the model, e.g. {unknown[0]!r}")
    wanted = set(names)
    return [c for c in classes if c in wanted]


def calibration_problem(n_classes: int, heldout: Sequence[str], val_targets: np.ndarray) -> str | None:
    """Why calibration cannot be fitted, or None when it can.

    Parameters
    ----------
    n_classes : int
        Classes of the model (trained and held out together).
    heldout : sequence of str
        The held-out classes.
    val_targets : np.ndarray [N, H]
        Labels of the clips the fit would use, over the held-out classes.
    """
    if n_classes < MIN_CLASSES:
        return (f"too few classes: calibration holds some classes out of training and needs at least {MIN_CLASSES} "
                f"classes, this model has {n_classes}")
    if n_classes - len(heldout) < MIN_CLASSES - 1:
        return (f"too many calibration classes: {len(heldout)} of {n_classes} held out leaves "
                f"{n_classes - len(heldout)} to train on (need at least {MIN_CLASSES - 1})")
    t = np.asarray(val_targets, dtype=bool)
    if t.shape[0] == 0:
        return "no val clips: the calibration is fitted on the val clips of the held-out classes"
    pos, neg = int(t.sum()), int(t.size - t.sum())
    if pos < MIN_POSITIVES or neg < MIN_POSITIVES:
        return (f"too few val clips with the held-out classes: {pos} positive and {neg} negative (clip, class) "
                f"pairs, need at least {MIN_POSITIVES} of each")
    return None

"""Per-phrasing evaluation: the same classes scored with several wordings of their labels.

A phrasings table (``label,phrasing,kind`` CSV, ``kind`` one of :data:`KINDS`) gives, per class, its AudioSet
name (``name``), free descriptions a user might type (``free``) and a one- or two-word tag (``short``).
:func:`evaluate_phrasings` scores every kind separately: kind ``k`` has as many variants as the class with the
most ``k`` phrasings; variant ``j`` words every class by its ``j``-th phrasing of that kind (cycling through a
class's phrasings when it has fewer, the class name when it has none), the whole label set is scored with that
wording and the metrics of the variants are averaged. Metrics per variant: mAP over the classes with at least
:data:`MIN_POSITIVES` positive clips, and top-1 / top-3 accuracy (a clip with a true label is a hit when one of
its labels is among the ``k`` best-scored classes: for single-label recordings, "which of my labels is it").
A kind with several phrasings per class is also scored as one ensemble (kind ``"<kind>+ensemble"``): every class
worded by all its phrasings at once, ``"a|b|c"``, which the tagger embeds as the average of the wordings.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import DataError, ParameterError
from ..text.classes import WORDING_SEPARATOR
from .metrics import average_precision, top_k_accuracy

__all__ = ["KINDS", "ENSEMBLE_SUFFIX", "MIN_POSITIVES", "scoring_metrics", "read_phrasings", "phrasing_variants",
           "evaluate_phrasings"]

#: Phrasing kinds, in report order: the AudioSet name, free descriptions, short tags.
KINDS: tuple[str, ...] = ("name", "free", "short")
#: Classes with fewer positive clips have no mAP entry (an AP from one clip is 1 or a rank reciprocal: noise).
MIN_POSITIVES = 2
#: Kind suffix of the ensemble of a kind's phrasings in :func:`evaluate_phrasings`'s result.
ENSEMBLE_SUFFIX = "+ensemble"
_COLUMNS = ("label", "phrasing", "kind")


def read_phrasings(path: str | os.PathLike) -> dict[str, dict[str, list[str]]]:
    """Read a phrasings table: label -> kind -> phrasings, in file order.

    The header must be ``label,phrasing,kind``; ``kind`` one of :data:`KINDS`; label and phrasing not empty.
    Lines starting with ``#`` and blank lines are comments. Errors are one line: ``FILE:LINE: what``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DataError(f"cannot read phrasings file {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    numbered = [(i + 1, line) for i, line in enumerate(text.splitlines())
                if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise DataError(f"{path}: empty phrasings file (expected the header {','.join(_COLUMNS)})")
    rows = list(csv.reader(io.StringIO("\n".join(line for _, line in numbered))))
    header = tuple(c.strip() for c in rows[0])
    if header != _COLUMNS:
        raise DataError(f"{path}:{numbered[0][0]}: header must be {','.join(_COLUMNS)}, got {','.join(header)}")
    out: dict[str, dict[str, list[str]]] = {}
    for (lineno, _), row in zip(numbered[1:], rows[1:]):
        if len(row) != len(_COLUMNS):
            raise DataError(f"{path}:{lineno}: expected {len(_COLUMNS)} columns, got {len(row)} (quote commas)")
        label, phrasing, kind = (c.strip() for c in row)
        if not label or not phrasing:
            raise DataError(f"{path}:{lineno}: label and phrasing must not be empty")
        if kind not in KINDS:
            raise DataError(f"{path}:{lineno}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        out.setdefault(label, {}).setdefault(kind, []).append(phrasing)
    return out


def phrasing_variants(classes: Sequence[str], table: Mapping[str, Mapping[str, Sequence[str]]],
                      kind: str) -> tuple[list[list[str]], int]:
    """The wordings of ``classes`` for ``kind``: a list of variants (one text per class) and the number of
    classes that have no phrasing of that kind (worded by their name).

    Kind ``name`` without table rows is the class names themselves (one variant).
    """
    per_class = [list(table.get(c, {}).get(kind, [])) for c in classes]
    missing = sum(1 for p in per_class if not p)
    n = max((len(p) for p in per_class), default=0)
    if n == 0:
        return [list(classes)], missing
    return [[p[j % len(p)] if p else c for c, p in zip(classes, per_class)] for j in range(n)], missing


def scoring_metrics(y_true: np.ndarray, scores: np.ndarray, ks: Sequence[int] = (1, 3)) -> dict[str, Any]:
    """``{"map", "top1", "top3"}`` of scores ``[N, C]``: mAP over the classes with at least
    :data:`MIN_POSITIVES` positive clips (None without any), top-k accuracy for each ``k`` of ``ks``."""
    counted = y_true.sum(axis=0) >= MIN_POSITIVES
    aps = [average_precision(y_true[:, c], scores[:, c]) for c in np.flatnonzero(counted)]
    out: dict[str, Any] = {"map": float(np.mean(aps)) if aps else None}
    for k in ks:
        out[f"top{k}"] = _none_if_nan(top_k_accuracy(y_true, scores, k))
    return out


def _none_if_nan(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def evaluate_phrasings(
    y_true: np.ndarray,
    score_texts: Callable[[list[str]], np.ndarray],
    classes: Sequence[str],
    table: Mapping[str, Mapping[str, Sequence[str]]],
    *,
    kinds: Sequence[str] | None = None,
    ks: Sequence[int] = (1, 3),
    ensemble: bool = True,
) -> dict[str, dict[str, Any]]:
    """Metrics per phrasing kind.

    Parameters
    ----------
    y_true : np.ndarray [N, C]
        Whether clip ``n`` holds class ``c``.
    score_texts : callable(list of C texts) -> np.ndarray [N, C]
        Scores of every clip for the classes worded by the given texts (column ``c`` is class ``c``).
    classes : sequence of str
        The class names, ``C`` of them.
    table : mapping
        label -> kind -> phrasings (:func:`read_phrasings`).
    kinds : sequence of str, optional
        Kinds to evaluate (default: ``name`` and every kind the table has for ``classes``, in :data:`KINDS` order).
    ks : sequence of int
        The ``k`` of the top-k accuracies.
    ensemble : bool
        Also score, for each kind with several phrasings per class, every class worded by all of them at once
        (``"a|b|c"``: one label whose embedding is their average), under the kind ``"<kind>+ensemble"``.

    Returns
    -------
    dict
        kind -> ``{"map", "top1", "top3", "variants", "per_variant", "n_clips", "n_classes", "n_classes_map",
        "n_classes_by_name"}``; the metrics are the means over the variants (``per_variant`` lists each one's
        metrics and texts), ``n_classes_map`` counts the classes in the mAP (>= :data:`MIN_POSITIVES` positive
        clips) and ``n_classes_by_name`` those worded by their name for want of a phrasing of the kind.
    """
    y_true = np.asarray(y_true).astype(bool)
    if y_true.ndim != 2 or y_true.shape[1] != len(classes):
        raise ParameterError(f"y_true must be [N, {len(classes)}], got shape {y_true.shape}")
    if kinds is None:
        have = {k for c in classes for k in table.get(c, {})}
        kinds = [k for k in KINDS if k == "name" or k in have]
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        if kind not in KINDS:
            raise ParameterError(f"phrasing kind must be one of {', '.join(KINDS)}, got {kind!r}")
        variants, missing = phrasing_variants(classes, table, kind)
        per_variant = []
        for texts in variants:
            scores = np.asarray(score_texts(texts), dtype=np.float64)
            if scores.shape != y_true.shape:
                raise ParameterError(f"scores for {kind!r} phrasings have shape {scores.shape}, "
                                     f"expected {y_true.shape}")
            per_variant.append({**scoring_metrics(y_true, scores, ks), "texts": list(texts)})
        summary: dict[str, Any] = {}
        for key in ["map", *[f"top{k}" for k in ks]]:
            vals = [v[key] for v in per_variant if v[key] is not None]
            summary[key] = float(np.mean(vals)) if vals else None
        summary.update({
            "variants": len(variants),
            "n_clips": int(y_true.shape[0]),
            "n_clips_with_labels": int(y_true.any(axis=1).sum()),
            "n_classes": len(classes),
            "n_classes_map": int((y_true.sum(axis=0) >= MIN_POSITIVES).sum()),
            "n_classes_by_name": missing if kind != "name" else 0,
            "per_variant": per_variant,
        })
        out[kind] = summary
        if ensemble and len(variants) > 1:
            # every class worded by all its phrasings of the kind at once (one label, its wordings averaged)
            texts = [WORDING_SEPARATOR.join(dict.fromkeys(v[c] for v in variants)) for c in range(len(classes))]
            scores = np.asarray(score_texts(texts), dtype=np.float64)
            metrics = scoring_metrics(y_true, scores, ks)
            out[f"{kind}{ENSEMBLE_SUFFIX}"] = {**metrics, "variants": 1, "n_clips": summary["n_clips"],
                                               "n_classes_map": summary["n_classes_map"],
                                               "per_variant": [{**metrics, "texts": texts}]}
    return out

"""Class folds and clip splits of the evaluation protocol.

Classes are dealt into ``K`` seeded, class-disjoint folds. In fold ``k`` the classes of fold ``k`` are
**unseen**, those of fold ``k + 1 (mod K)`` are the **validation** classes (model selection), and the rest
are **seen** (training). Clips are split into train / val / test by the dataset's ``split`` column, or by a
seeded split that keeps every family (variant group) on one side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._errors import ParameterError

__all__ = ["FoldRoles", "class_folds", "fold_roles", "split_clips", "SPLITS"]

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class FoldRoles:
    """The role of every class in one fold (each a list in the dataset's class order)."""

    fold: int
    seen: list[str]
    val: list[str]
    unseen: list[str]


def class_folds(classes: Sequence[str], *, n_folds: int = 5, seed: int = 0) -> list[list[str]]:
    """Deal ``classes`` into ``n_folds`` seeded folds whose sizes differ by at most one."""
    if n_folds < 3:
        raise ParameterError(f"folds must be >= 3 (unseen, validation and seen classes), got {n_folds}")
    if len(classes) < n_folds:
        raise ParameterError(f"{len(classes)} classes cannot fill {n_folds} folds (need at least one each)")
    order = np.random.default_rng(seed).permutation(len(classes))
    rank = {c: i for i, c in enumerate(classes)}
    folds = [sorted((classes[i] for i in order[f::n_folds]), key=rank.__getitem__) for f in range(n_folds)]
    return folds


def fold_roles(folds: Sequence[Sequence[str]], k: int, classes: Sequence[str]) -> FoldRoles:
    """Roles in fold ``k``: unseen = fold k, validation = fold k+1 (mod K), seen = the rest."""
    n = len(folds)
    if not 0 <= k < n:
        raise ParameterError(f"fold must be in 0..{n - 1}, got {k}")
    unseen, val = set(folds[k]), set(folds[(k + 1) % n])
    return FoldRoles(
        fold=k,
        seen=[c for c in classes if c not in unseen and c not in val],
        val=[c for c in classes if c in val],
        unseen=[c for c in classes if c in unseen],
    )


def split_clips(
    splits: Sequence[str | None],
    families: Sequence[str],
    *,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
) -> np.ndarray:
    """Train / val / test assignment of every clip.

    Clips with a split value keep it; the others are split by family: families are shuffled (seeded) and
    dealt to train, val and test until each holds its fraction of those clips.

    Returns
    -------
    np.ndarray [N] of str
    """
    if len(splits) != len(families):
        raise ParameterError(f"{len(splits)} split values for {len(families)} families")
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ParameterError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    out = np.array([s if s is not None else "" for s in splits], dtype=object)
    todo = np.flatnonzero(out == "")
    if todo.size:
        fams = np.array([families[i] for i in todo], dtype=object)
        uniq, inverse, sizes = np.unique(fams, return_inverse=True, return_counts=True)
        order = np.random.default_rng(seed).permutation(len(uniq))
        bounds = np.cumsum(fractions)[:2] * todo.size
        assigned = np.empty(len(uniq), dtype=object)
        filled = 0
        for f in order:
            assigned[f] = SPLITS[int(np.searchsorted(bounds, filled, side="right"))]
            filled += sizes[f]
        out[todo] = assigned[inverse]
    return out.astype(str)

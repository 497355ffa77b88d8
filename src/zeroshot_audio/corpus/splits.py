"""Classes and splits of the ``debian-sfx`` corpus: which classes are kept (:func:`select_classes`), which
families go to train/val/test (:func:`assign_splits`), the split of each scene (:func:`scene_splits`), and how
many training scenes strict zero-shot folds leave (:func:`estimate_strict_train`).

Families, not files, are the unit of a split, so takes of one sound never sit on both sides. Used by
:mod:`zeroshot_audio.corpus.build`, which re-exports these names.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .prepare import Prepared

__all__ = [
    "EVENT_COUNT_PROBS",
    "SPLIT_FRACTIONS",
    "select_classes",
    "assign_splits",
    "split_counts_with_val",
    "scene_splits",
    "estimate_strict_train",
]

#: P(1 event), P(2), P(3), P(4) per scene.
EVENT_COUNT_PROBS: tuple[float, ...] = (0.30, 0.35, 0.25, 0.10)
SPLIT_FRACTIONS: dict[str, float] = {"train": 0.7, "val": 0.1, "test": 0.2}


# ------------------------------------------------------------------------------------------- classes, splits


def select_classes(prepared: Sequence[Prepared], *, min_files: int = 3,
                   min_families: int = 2) -> tuple[list[Prepared], dict[str, str]]:
    """Keep sources of classes with >= ``min_files`` files and >= ``min_families`` families.

    Returns the kept sources and ``{dropped class: reason}``.
    """
    files: dict[str, int] = {}
    fams: dict[str, set[str]] = {}
    for p in prepared:
        files[p.source.label] = files.get(p.source.label, 0) + 1
        fams.setdefault(p.source.label, set()).add(p.source.family)
    dropped = {}
    for label in sorted(files):
        if files[label] < min_files:
            dropped[label] = f"{files[label]} file(s) < {min_files}"
        elif len(fams[label]) < min_families:
            dropped[label] = f"{len(fams[label])} family < {min_families}"
    return [p for p in prepared if p.source.label not in dropped], dropped


def _split_counts(n: int) -> dict[str, int]:
    """Families per split for a class with ``n`` families: 2 -> train+test; >= 3 -> >= 1 train and test."""
    if n <= 1:
        return {"train": n, "val": 0, "test": 0}
    if n == 2:
        return {"train": 1, "val": 0, "test": 1}
    test = max(1, int(math.floor(SPLIT_FRACTIONS["test"] * n + 0.5)))
    val = int(math.floor(SPLIT_FRACTIONS["val"] * n + 0.5))
    if n - test - val < 1:
        val = max(0, n - test - 1)
    return {"train": n - test - val, "val": val, "test": test}


def split_counts_with_val(n: int) -> dict[str, int]:
    """Families per split for a class with ``n`` families, every split served as early as possible: 1 -> train;
    2 -> train+test; >= 3 -> about 70/10/20 with at least one family in each of train, val and test.

    For a small set (``debian-eval``), where :func:`_split_counts` would leave the validation scenes with the
    few classes of >= 5 families only.
    """
    if n <= 2:
        return _split_counts(n)
    test = max(1, int(math.floor(SPLIT_FRACTIONS["test"] * n + 0.5)))
    val = max(1, int(math.floor(SPLIT_FRACTIONS["val"] * n + 0.5)))
    return {"train": n - test - val, "val": val, "test": test}


def _hash_seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "little")


def assign_splits(class_families: Mapping[str, Sequence[str]], seed: int = 0,
                  counts: Callable[[int], dict[str, int]] | None = None) -> dict[str, str]:
    """Assign FAMILIES to train/val/test; return ``{family: split}``.

    Per class, about 70/10/20 % of its families (``counts(n_families)``, default :func:`_split_counts`), seeded.
    A family is one unit across classes: a family shared by two classes (a snare whose rimshots are another
    class) gets one split, decided by the class with the fewest families, and the other class's quotas count it.
    """
    order = sorted(class_families, key=lambda c: (len(set(class_families[c])), c))
    out: dict[str, str] = {}
    for label in order:
        fams = sorted(set(class_families[label]))
        want = (counts or _split_counts)(len(fams))
        for f in fams:
            if f in out and want[out[f]] > 0:
                want[out[f]] -= 1
        free = [f for f in fams if f not in out]
        rng = np.random.default_rng(_hash_seed(seed, "split", label))
        free = [free[i] for i in rng.permutation(len(free))]
        slots = [s for s in ("test", "train", "val") for _ in range(want[s])]
        for i, f in enumerate(free):
            out[f] = slots[i] if i < len(slots) else "train"
    return out


def scene_splits(n_scenes: int, seed: int = 0) -> list[str]:
    """The split of each scene: exactly ``round(0.7 n)`` train, ``round(0.1 n)`` val, the rest test,
    in a seeded order."""
    n_train = int(round(SPLIT_FRACTIONS["train"] * n_scenes))
    n_val = int(round(SPLIT_FRACTIONS["val"] * n_scenes))
    n_val = min(n_val, n_scenes - n_train)
    labels = ["train"] * n_train + ["val"] * n_val + ["test"] * (n_scenes - n_train - n_val)
    perm = np.random.default_rng(_hash_seed(seed, "scene-splits", n_scenes)).permutation(n_scenes)
    return [labels[i] for i in perm]


def estimate_strict_train(n_scenes: int, n_classes: int, *, held_out: float = 0.4,
                          probs: Sequence[float] = EVENT_COUNT_PROBS) -> float:
    """Expected training scenes left when every scene holding one of ``round(held_out * n_classes)`` held-out
    classes is dropped: ``0.7 n * sum_k p_k C(C-H, k) / C(C, k)`` (classes drawn uniformly without
    replacement)."""
    c = n_classes
    h = int(round(held_out * c))
    if c <= 0:
        return 0.0
    keep = 0.0
    for k, p in enumerate(probs, start=1):
        k = min(k, c)
        keep += p * (math.comb(c - h, k) / math.comb(c, k) if c - h >= k else 0.0)
    return SPLIT_FRACTIONS["train"] * n_scenes * keep

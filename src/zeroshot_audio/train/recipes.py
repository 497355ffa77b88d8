"""Which clips a model trains and validates on: one home for the selection that ``zsa train``, the
evaluation protocol and ``scripts/train_default_model.py`` share.

:func:`dataset_clips` reads what every recipe needs once: the train / val / test split of every clip (the
dataset's ``split`` column, or the seeded split that keeps each family on one side,
:func:`~zeroshot_audio.data.folds.split_clips`), which clips failed to embed (listed in the store's
``failures.csv``: left out everywhere), the store row of every other clip and the label matrix over the
chosen classes. :meth:`DatasetClips.select` then picks the clips of one training run: the train clips over
the training classes, minus, in the strict setting, every train clip that holds a class that must stay
unheard (:func:`strict_drop`), and the val clips over the classes that model selection watches.

Nothing here needs torch: a :class:`ClipSet` is rows of a store and their targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .._errors import ParameterError, StoreError
from ..data.folds import SPLITS, split_clips

__all__ = ["SegmentSource", "ClipSet", "DatasetClips", "Selection", "dataset_clips", "strict_drop"]


class SegmentSource(Protocol):
    """What training needs of a store: padded batches of segment embeddings by row."""

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class ClipSet:
    """Clips for training or scoring: ``rows [N]`` of ``store`` and their ``targets [N, C]`` (bool)."""

    store: SegmentSource
    rows: np.ndarray
    targets: np.ndarray

    def __post_init__(self) -> None:
        self.rows = np.asarray(self.rows, dtype=np.int64)
        self.targets = np.asarray(self.targets, dtype=bool)
        if self.targets.ndim != 2 or self.targets.shape[0] != self.rows.shape[0]:
            raise ParameterError(
                f"targets must be [N, C] with N = {self.rows.shape[0]} rows, got {self.targets.shape}"
            )

    def __len__(self) -> int:
        return int(self.rows.shape[0])


def strict_drop(labels: np.ndarray, ids: np.ndarray, unheard: np.ndarray) -> tuple[np.ndarray, int]:
    """``ids`` without the clips whose labels hold any class of ``unheard``, and how many were dropped.

    Parameters
    ----------
    labels : np.ndarray [N, C] bool
        Labels of every clip over the classes.
    ids : np.ndarray [K] int
        Clips to filter (indices into ``labels``).
    unheard : np.ndarray [U] int
        Columns of the classes that must stay unheard.
    """
    ids = np.asarray(ids, dtype=np.int64)
    unheard = np.asarray(unheard, dtype=np.int64)
    if unheard.size == 0 or ids.size == 0:
        return ids, 0
    hit = labels[np.ix_(ids, unheard)].any(axis=1)
    return ids[~hit], int(hit.sum())


@dataclass(frozen=True)
class Selection:
    """The clips of one training run.

    Attributes
    ----------
    train : ClipSet
        Train clips, targets over the training classes (then the auxiliary classes, when given).
    val : ClipSet or None
        Val clips (with ``watch_dropped``, also the train clips left out for a validation class), targets over
        the validation classes; None when there are no val clips or classes.
    train_ids, val_ids : np.ndarray [int]
        The same clips as indices into the dataset.
    n_dropped : int
        Train clips left out by the strict drop.
    """

    train: ClipSet
    val: ClipSet | None
    train_ids: np.ndarray
    val_ids: np.ndarray
    n_dropped: int


@dataclass(frozen=True)
class DatasetClips:
    """The clips of a dataset that a store holds, split and labelled (see :func:`dataset_clips`).

    Attributes
    ----------
    store : EmbeddingStore or MemoryStore
    classes : list of str
        Columns of ``labels``.
    labels : np.ndarray [N, C] bool
        Labels of every clip of the dataset over ``classes``.
    splits : np.ndarray [N] str
        ``'train'``, ``'val'`` or ``'test'`` per clip.
    failed : np.ndarray [N] bool
        Clips that failed to embed (left out of every split).
    rows : np.ndarray [N] int64
        Store row of every clip, -1 for failed clips.
    """

    store: Any
    classes: list[str]
    labels: np.ndarray
    splits: np.ndarray
    failed: np.ndarray
    rows: np.ndarray

    @property
    def n_failed(self) -> int:
        return int(self.failed.sum())

    def ids(self, split: str) -> np.ndarray:
        """Indices of the clips of ``split`` (``'train'``, ``'val'``, ``'test'``) that did not fail."""
        if split not in SPLITS:
            raise ParameterError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        return np.flatnonzero((self.splits == split) & ~self.failed)

    def columns(self, classes: Sequence[str]) -> np.ndarray:
        """Column indices of ``classes`` in :attr:`classes`."""
        pos = {c: i for i, c in enumerate(self.classes)}
        missing = [c for c in classes if c not in pos]
        if missing:
            raise ParameterError(f"{len(missing)} class(es) not among the selected classes, e.g. {missing[0]!r}")
        return np.array([pos[c] for c in classes], dtype=np.int64)

    def clip_set(self, ids: np.ndarray, columns: np.ndarray, extra_targets: np.ndarray | None = None) -> ClipSet:
        """A :class:`ClipSet` of the clips ``ids`` over the class ``columns`` (then ``extra_targets [N, A]``
        of every clip of the dataset, e.g. auxiliary pseudo-labels, when given)."""
        ids = np.asarray(ids, dtype=np.int64)
        targets = self.labels[np.ix_(ids, np.asarray(columns, dtype=np.int64))]
        if extra_targets is not None:
            targets = np.concatenate([targets, np.asarray(extra_targets, dtype=bool)[ids]], axis=1)
        return ClipSet(self.store, self.rows[ids], targets)

    def select(
        self,
        *,
        train_classes: np.ndarray,
        val_classes: np.ndarray | None = None,
        unheard: np.ndarray | None = None,
        extra_targets: np.ndarray | None = None,
        watch_dropped: bool = True,
    ) -> Selection:
        """The clips of one training run.

        Parameters
        ----------
        train_classes : np.ndarray [int]
            Columns the model trains on.
        val_classes : np.ndarray [int], optional
            Columns that early stopping watches on the val clips (None or empty: no validation).
        unheard : np.ndarray [int], optional
            Columns of classes that must stay unheard: train clips holding any of them are dropped (the
            strict setting). None or empty: no drop.
        extra_targets : np.ndarray [N, A] bool, optional
            Further training targets of every clip (auxiliary classes), appended to the train targets.
        watch_dropped : bool
            Early stopping also watches the train clips that the strict drop left out for holding a validation
            class and that hold no other unheard class: the model never hears them, and a small val split
            alone gives a validation mAP too noisy to choose an epoch by (``docs/attention.md``).
        """
        unheard = np.array([], np.int64) if unheard is None else np.asarray(unheard, dtype=np.int64)
        train_ids, n_dropped = strict_drop(self.labels, self.ids("train"), unheard)
        val_ids = self.ids("val")
        if watch_dropped and val_classes is not None and len(val_classes) and unheard.size:
            dropped = np.setdiff1d(self.ids("train"), train_ids)
            others = np.setdiff1d(unheard, np.asarray(val_classes, dtype=np.int64))
            watched = strict_drop(self.labels, dropped, others)[0]
            watched = watched[self.labels[np.ix_(watched, np.asarray(val_classes, dtype=np.int64))].any(axis=1)]
            val_ids = np.concatenate([val_ids, watched])
        val = None
        if val_classes is not None and len(val_classes) and val_ids.size:
            val = self.clip_set(val_ids, val_classes)
        return Selection(train=self.clip_set(train_ids, train_classes, extra_targets), val=val,
                         train_ids=train_ids, val_ids=val_ids if val is not None else val_ids[:0],
                         n_dropped=n_dropped)


def dataset_clips(dataset: Any, store: Any, *, classes: Sequence[str] | None = None, seed: int = 0) -> DatasetClips:
    """Split, labels and store rows of every clip of ``dataset``.

    Parameters
    ----------
    dataset : Dataset
    store : EmbeddingStore or MemoryStore
        Holds the segment embeddings of the clips (keys = filenames); clips listed in its failures are left
        out, any other clip it lacks is a :class:`StoreError` naming some of them.
    classes : sequence of str, optional
        Columns of the label matrix (default: the dataset's classes).
    seed : int
        Seeds the family-preserving split of clips without a ``split`` value. The split is made over all
        clips, failed ones included, so a clip's side never depends on which other clips failed.
    """
    classes = list(dataset.classes if classes is None else classes)
    failures = getattr(store, "failures", {}) or {}
    failed = np.array([f in failures for f in dataset.filenames], dtype=bool)
    splits = split_clips(dataset.splits, dataset.families, seed=seed)
    ok = np.flatnonzero(~failed)
    try:
        found = store.index_of([dataset.filenames[i] for i in ok])
    except StoreError as err:
        raise StoreError(f"{err}; run `zsa embed` on the dataset first") from None
    rows = np.full(len(dataset.filenames), -1, dtype=np.int64)
    rows[ok] = found
    return DatasetClips(store=store, classes=classes, labels=dataset.label_matrix(classes), splits=splits,
                        failed=failed, rows=rows)

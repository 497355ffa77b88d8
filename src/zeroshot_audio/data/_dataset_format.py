"""The types and names of the dataset directory format (:mod:`zeroshot_audio.data.dataset`): :class:`Event`,
:class:`Dataset`, the split values and the file names, shared by its reader and its writer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._errors import ParameterError, name_some

#: Valid values of the ``split`` column.
SPLITS: tuple[str, ...] = ("train", "val", "test")

_CLIPS = "clips.csv"
_EVENTS = "events.tsv"
_CLASSES = "classes.csv"
_EVENTS_HEADER = ("filename", "onset", "offset", "event_label")


@dataclass(frozen=True)
class Event:
    """One strongly labelled sound event: ``label`` sounds in ``filename`` from ``onset`` to ``offset``.

    Attributes
    ----------
    filename : str
        Clip file name, relative to the dataset directory (as in ``clips.csv``).
    onset, offset : float
        Start and end of the event in seconds from the start of the clip.
    label : str
        Class name.
    """

    filename: str
    onset: float
    offset: float
    label: str


@dataclass
class Dataset:
    """A multi-label audio dataset read from (or to be written to) a dataset directory.

    Attributes
    ----------
    root : Path
        The dataset directory; clip file names are relative to it.
    filenames : list of str
        Clip file names, in ``clips.csv`` order (unique).
    labels : list of tuple of str
        Per clip, its class names (duplicates removed, order kept); ``()`` for a negative clip.
    splits : list of str or None
        Per clip, ``'train'``, ``'val'``, ``'test'`` or None (unassigned or no ``split`` column).
    families : list of str
        Per clip, its variant group (the filename when not given).
    classes : list of str
        ``classes.csv`` order when present, else the sorted unique labels of the clips.
    descriptions : dict of str to str
        Class name -> description (``''`` when none), for every class.
    events : list of Event
        Strong labels (``[]`` when there is no ``events.tsv``).
    """

    root: Path
    filenames: list[str]
    labels: list[tuple[str, ...]]
    splits: list[str | None]
    families: list[str]
    classes: list[str]
    descriptions: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.filenames)
        for name in ("labels", "splits", "families"):
            if len(getattr(self, name)) != n:
                raise ParameterError(
                    f"Dataset: {name} has {len(getattr(self, name))} entries but filenames has {n}"
                )

    def __len__(self) -> int:
        return len(self.filenames)

    @property
    def has_split(self) -> bool:
        """True when at least one clip has a split assigned."""
        return any(s is not None for s in self.splits)

    def label_matrix(self, classes: Sequence[str] | None = None) -> np.ndarray:
        """Return the clip-by-class label matrix.

        Parameters
        ----------
        classes : sequence of str, optional
            Columns of the matrix, in this order; default :attr:`classes`. Clip labels not among them
            are ignored.

        Returns
        -------
        numpy.ndarray
            ``[N, C]`` bool; ``[i, j]`` is True when clip ``i`` has class ``classes[j]``.

        Raises
        ------
        ParameterError
            A requested class is not a class of the dataset.
        """
        if classes is None:
            classes = self.classes
        elif isinstance(classes, str):
            raise ParameterError(
                f"label_matrix: classes must be a sequence of class names, not the string {classes!r}"
            )
        known = set(self.classes)
        unknown = [c for c in classes if c not in known]
        if unknown:
            raise ParameterError(
                f"label_matrix: class {name_some(unknown)} is not a class of the dataset {self.root}"
                f" ({len(self.classes)} classes)"
            )
        columns: dict[str, list[int]] = {}
        for j, c in enumerate(classes):
            columns.setdefault(c, []).append(j)
        matrix = np.zeros((len(self.filenames), len(classes)), dtype=bool)
        for i, clip_labels in enumerate(self.labels):
            for label in clip_labels:
                for j in columns.get(label, ()):
                    matrix[i, j] = True
        return matrix

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """Return the dataset restricted to the clips at ``indices`` (in that order).

        Parameters
        ----------
        indices : sequence of int or numpy.ndarray
            Clip positions (negative values count from the end), or a boolean mask of length ``len(self)``.
            A position may appear only once.

        Returns
        -------
        Dataset
            The selected clips and their events; ``classes`` and ``descriptions`` are kept whole.

        Raises
        ------
        ParameterError
            An index is out of range or repeated, or a mask has the wrong length.
        """
        n = len(self.filenames)
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise ParameterError(f"subset: boolean mask has shape {idx.shape} (expected ({n},))")
            idx = np.flatnonzero(idx)
        elif idx.size == 0:
            idx = np.zeros(0, dtype=np.int64)
        elif idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ParameterError(
                f"subset: indices must be a 1-D sequence of integers (got {idx.dtype}, shape {idx.shape})"
            )
        bad = (idx < -n) | (idx >= n)
        if bad.any():
            raise ParameterError(
                f"subset: index {int(idx[bad][0])} is out of range for a dataset of {n} clips"
            )
        idx = np.where(idx < 0, idx + n, idx).astype(np.int64)
        if len(np.unique(idx)) != len(idx):
            values, counts = np.unique(idx, return_counts=True)
            raise ParameterError(
                f"subset: index {int(values[counts > 1][0])} is repeated (expected each clip once)"
            )
        rows = idx.tolist()
        filenames = [self.filenames[i] for i in rows]
        keep = set(filenames)
        return Dataset(
            root=self.root,
            filenames=filenames,
            labels=[self.labels[i] for i in rows],
            splits=[self.splits[i] for i in rows],
            families=[self.families[i] for i in rows],
            classes=list(self.classes),
            descriptions=dict(self.descriptions),
            events=[e for e in self.events if e.filename in keep],
        )


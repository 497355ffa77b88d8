"""The generic dataset directory format: ``clips.csv``, optional ``events.tsv`` and ``classes.csv``.

A dataset directory holds:

``clips.csv`` (required)
    A header row with at least ``filename,labels``; optional columns ``split`` (``train``, ``val`` or
    ``test``; an empty value means unassigned) and ``family`` (a variant group kept on one side of a
    split; defaults to the filename). Other columns are ignored. ``filename`` is relative to the
    directory; ``labels`` is a ``;``-separated list of class names (CSV-quoted when a name contains a
    comma). An empty ``labels`` field is valid: the clip is a negative example.
``events.tsv`` (optional)
    Strong labels, DCASE style: ``filename<TAB>onset<TAB>offset<TAB>event_label`` (header optional).
``classes.csv`` (optional)
    Header ``label,description`` (``description`` optional). When present it fixes the class list and
    order, and every clip label must be one of its classes.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._errors import DataError, ParameterError, name_some, reads_user_data
from .._io import csv_text, write_text_atomic

__all__ = ["Event", "Dataset", "read_dataset", "write_dataset", "SPLITS"]

logger = logging.getLogger(__name__)

#: Valid values of the ``split`` column.
SPLITS: tuple[str, ...] = ("train", "val", "test")

_CLIPS = "clips.csv"
_EVENTS = "events.tsv"
_CLASSES = "classes.csv"
_LABEL_FORBID = ";\t\n\r"  # characters a class name cannot hold (list separator, events.tsv separators)
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


# --------------------------------------------------------------------------------------------- reading


def _read_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not valid UTF-8 text (byte {e.start}: {e.reason})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None


def _csv_rows(path: Path) -> Iterable[tuple[int, list[str]]]:
    """Yield ``(first line number, fields)`` for each non-blank CSV record of ``path``."""
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), strict=True)
    prev = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"{path}:{prev + 1}: malformed CSV ({e})") from None
        start, prev = prev + 1, reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        yield start, row


def _header(
    path: Path, rows: Iterable[tuple[int, list[str]]], required: Sequence[str], optional: Sequence[str] = ()
) -> tuple[int, dict[str, int]]:
    """Read the header row; return its line number and column name -> position (names lower-cased).

    A column among ``required`` or ``optional`` may appear only once; other columns are ignored.
    """
    expected = ",".join(required)
    try:
        line, header = next(iter(rows))
    except StopIteration:
        raise DataError(f"{path}: empty file (expected a header row with at least {expected})") from None
    columns: dict[str, int] = {}
    for pos, name in enumerate(header):
        key = name.strip().lower()
        if key in columns and key in (*required, *optional):
            raise DataError(f"{path}:{line}: column '{key}' appears twice in the header")
        columns[key] = pos
    missing = [c for c in required if c not in columns]
    if missing:
        found = ", ".join(repr(h.strip()) for h in header)
        raise DataError(
            f"{path}:{line}: missing column {', '.join(repr(m) for m in missing)}"
            f" (expected a header with at least {expected}; found: {found})"
        )
    return line, columns


def _parse_labels(path: Path, line: int, field_value: str) -> tuple[str, ...]:
    text = field_value.strip()
    if not text:
        return ()
    items = [item.strip() for item in text.split(";")]
    if any(not item for item in items):
        raise DataError(
            f"{path}:{line}: malformed labels {field_value!r}: empty item"
            " (expected class names separated by ';', or an empty field for a clip with no labels)"
        )
    return tuple(dict.fromkeys(items))


def _read_classes(path: Path) -> tuple[list[str], dict[str, str]]:
    rows = iter(_csv_rows(path))
    _, columns = _header(path, rows, ("label",), ("description",))
    label_col = columns["label"]
    desc_col = columns.get("description")
    first_line: dict[str, int] = {}
    descriptions: dict[str, str] = {}
    for line, row in rows:
        label = row[label_col].strip() if label_col < len(row) else ""
        if not label:
            raise DataError(f"{path}:{line}: empty label (expected a class name)")
        if label in first_line:
            raise DataError(f"{path}:{line}: duplicate label {label!r} (first on line {first_line[label]})")
        first_line[label] = line
        desc = row[desc_col].strip() if desc_col is not None and desc_col < len(row) else ""
        descriptions[label] = desc
    return list(first_line), descriptions


def _parse_time(path: Path, line: int, what: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataError(f"{path}:{line}: {what} {text!r} is not a number (expected seconds >= 0)")
    if value < 0:
        raise DataError(f"{path}:{line}: negative {what} {text!r} (expected seconds >= 0)")
    return value


def _read_events(
    path: Path, clip_labels: Mapping[str, tuple[str, ...]], classes: set[str], clips_path: Path
) -> list[Event]:
    events: list[Event] = []
    first = True
    for line_no, raw in enumerate(_read_text(path).splitlines(), start=1):
        if not raw.strip():
            continue
        fields = [f.strip() for f in raw.split("\t")]
        if first:
            first = False
            if tuple(f.lower() for f in fields) == _EVENTS_HEADER:
                continue
        if len(fields) != 4:
            raise DataError(
                f"{path}:{line_no}: {len(fields)} tab-separated column(s)"
                " (expected 4: filename, onset, offset, event_label)"
            )
        filename, onset_s, offset_s, label = fields
        onset = _parse_time(path, line_no, "onset", onset_s)
        offset = _parse_time(path, line_no, "offset", offset_s)
        if offset < onset:
            raise DataError(
                f"{path}:{line_no}: offset {offset_s} is before onset {onset_s} (expected offset >= onset)"
            )
        if filename not in clip_labels:
            raise DataError(f"{path}:{line_no}: filename {filename!r} is not in {clips_path}")
        if label not in classes:
            raise DataError(f"{path}:{line_no}: event label {label!r} is not a class of the dataset")
        if label not in clip_labels[filename]:
            have = ";".join(clip_labels[filename]) or "none"
            raise DataError(
                f"{path}:{line_no}: event label {label!r} is not among the labels of {filename!r}"
                f" in {clips_path} (clip labels: {have})"
            )
        events.append(Event(filename, onset, offset, label))
    return events


@reads_user_data("a dataset directory", DataError)
def read_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read and validate a dataset directory.

    Parameters
    ----------
    path : str or os.PathLike
        The dataset directory (holding ``clips.csv`` and optionally ``events.tsv``, ``classes.csv``).

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        The directory or ``clips.csv`` is missing, or a file is malformed; the message names the file and
        line.
    """
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: dataset directory does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: not a directory (expected a dataset directory holding {_CLIPS})")
    clips_path = root / _CLIPS
    if not clips_path.is_file():
        raise DataError(f"{clips_path}: file not found (a dataset directory must hold {_CLIPS})")

    class_list: list[str] | None = None
    descriptions: dict[str, str] = {}
    classes_path = root / _CLASSES
    if classes_path.is_file():
        class_list, descriptions = _read_classes(classes_path)
    class_set = set(class_list) if class_list is not None else None

    rows = iter(_csv_rows(clips_path))
    _, columns = _header(clips_path, rows, ("filename", "labels"), ("split", "family"))
    n_columns = max(columns.values()) + 1  # the header's length (the last position of a column name)
    c_file, c_labels = columns["filename"], columns["labels"]
    c_split, c_family = columns.get("split"), columns.get("family")

    filenames: list[str] = []
    labels: list[tuple[str, ...]] = []
    splits: list[str | None] = []
    families: list[str] = []
    first_line: dict[str, int] = {}
    for line, row in rows:
        if len(row) > n_columns and not any(f.strip() for f in row[n_columns:]):
            row = row[:n_columns]  # trailing empty fields (a spreadsheet's trailing commas)
        if len(row) != n_columns:
            raise DataError(
                f"{clips_path}:{line}: {len(row)} field(s) but the header has {n_columns}"
                " (quote fields that contain commas)"
            )
        filename = row[c_file].strip()
        if not filename:
            raise DataError(f"{clips_path}:{line}: empty filename (expected a path relative to {root})")
        if filename in first_line:
            raise DataError(
                f"{clips_path}:{line}: duplicate filename {filename!r} (first on line {first_line[filename]})"
            )
        first_line[filename] = line
        clip_labels = _parse_labels(clips_path, line, row[c_labels])
        if class_set is not None:
            for label in clip_labels:
                if label not in class_set:
                    raise DataError(f"{clips_path}:{line}: label {label!r} is not a class in {classes_path}")
        split: str | None = None
        if c_split is not None:
            value = row[c_split].strip()
            if value:
                split = value.lower()
                if split not in SPLITS:
                    raise DataError(
                        f"{clips_path}:{line}: unknown split {value!r} (expected one of: {', '.join(SPLITS)},"
                        " or empty)"
                    )
        family = row[c_family].strip() if c_family is not None else ""
        filenames.append(filename)
        labels.append(clip_labels)
        splits.append(split)
        families.append(family or filename)

    if class_list is None:
        class_list = sorted({label for clip_labels in labels for label in clip_labels})
        descriptions = dict.fromkeys(class_list, "")

    events: list[Event] = []
    events_path = root / _EVENTS
    if events_path.is_file():
        events = _read_events(
            events_path, dict(zip(filenames, labels, strict=True)), set(class_list), clips_path
        )

    logger.debug(
        "read dataset %s: %d clips, %d classes, %d events", root, len(filenames), len(class_list), len(events)
    )
    return Dataset(
        root=root,
        filenames=filenames,
        labels=labels,
        splits=splits,
        families=families,
        classes=class_list,
        descriptions=descriptions,
        events=events,
    )


# --------------------------------------------------------------------------------------------- writing


def _check_name(what: str, value: object, *, forbid: str = "") -> str:
    if not isinstance(value, str):
        raise ParameterError(f"write_dataset: {what} {value!r} is not a string")
    if not value or value != value.strip():
        raise ParameterError(f"write_dataset: {what} {value!r} is empty or has surrounding whitespace")
    bad = [c for c in forbid if c in value]
    if bad:
        raise ParameterError(
            f"write_dataset: {what} {value!r} contains {bad[0]!r}, which the format cannot store"
        )
    return value


def write_dataset(
    path: str | os.PathLike[str],
    *,
    filenames: Sequence[str],
    labels: Sequence[Sequence[str]],
    splits: Sequence[str | None] | None = None,
    families: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    descriptions: Mapping[str, str] | None = None,
    events: Iterable[Event | tuple[str, float, float, str]] | None = None,
) -> None:
    """Write a dataset directory that :func:`read_dataset` reads back exactly.

    Each file is written atomically. ``classes.csv`` is written when ``classes`` or ``descriptions`` is
    given and ``events.tsv`` when ``events`` is given; otherwise a stale file of that name in ``path`` is
    removed, so that the directory holds exactly the dataset written.

    Parameters
    ----------
    path : str or os.PathLike
        The dataset directory (created when missing).
    filenames : sequence of str
        Clip file names, unique, relative to ``path``.
    labels : sequence of sequence of str
        Per clip, its class names (may be empty). Names must not contain ``';'``.
    splits : sequence of str or None, optional
        Per clip, ``'train'``, ``'val'``, ``'test'`` or None/``''``; the ``split`` column is written only
        when given.
    families : sequence of str, optional
        Per clip, its variant group; the ``family`` column is written only when given.
    classes : sequence of str, optional
        The class list, in order; must contain every clip label. Default with ``descriptions``: the sorted
        union of the clip labels and the described classes.
    descriptions : mapping of str to str, optional
        Class name -> description. Surrounding whitespace is stripped (as :func:`read_dataset` does).
    events : iterable of Event or (filename, onset, offset, label), optional
        Strong labels; each must name a clip and one of that clip's labels.

    Raises
    ------
    ParameterError
        The arguments are inconsistent or hold values the format cannot represent.
    """
    root = Path(path)
    n = len(filenames)
    for what, seq in (("labels", labels), ("splits", splits), ("families", families)):
        if seq is not None and len(seq) != n:
            raise ParameterError(f"write_dataset: {what} has {len(seq)} entries but filenames has {n}")

    seen: set[str] = set()
    clip_labels: dict[str, tuple[str, ...]] = {}
    for i, fname in enumerate(filenames):
        _check_name("filename", fname, forbid="\t\n\r")
        if fname in seen:
            raise ParameterError(f"write_dataset: duplicate filename {fname!r} (at position {i})")
        seen.add(fname)
        if isinstance(labels[i], str):
            raise ParameterError(
                f"write_dataset: labels of {fname!r} must be a sequence of names, not a string"
            )
        clip_labels[fname] = tuple(
            dict.fromkeys(_check_name("label", lab, forbid=_LABEL_FORBID) for lab in labels[i])
        )
    split_values: list[str] = []
    if splits is not None:
        for fname, s in zip(filenames, splits, strict=True):
            if s not in (None, "", *SPLITS):
                raise ParameterError(
                    f"write_dataset: unknown split {s!r} for {fname!r}"
                    f" (expected one of: {', '.join(SPLITS)}, or None)"
                )
            split_values.append(s or "")
    if families is not None:
        for f in families:
            _check_name("family", f)

    all_labels = {lab for labs in clip_labels.values() for lab in labs}
    class_list: list[str] | None = None
    if classes is not None or descriptions is not None:
        if descriptions is not None:
            for c in descriptions:
                _check_name("class", c, forbid=_LABEL_FORBID)
        if classes is None:
            class_list = sorted(all_labels | set(descriptions or {}))
        else:
            if isinstance(classes, str):
                raise ParameterError("write_dataset: classes must be a sequence of names, not a string")
            class_list = [_check_name("class", c, forbid=_LABEL_FORBID) for c in classes]
            if len(set(class_list)) != len(class_list):
                dup = next(c for c in class_list if class_list.count(c) > 1)
                raise ParameterError(f"write_dataset: duplicate class {dup!r} in classes")
        class_set = set(class_list)
        missing = sorted(all_labels - class_set)
        if missing:
            raise ParameterError(f"write_dataset: clip label {missing[0]!r} is not in classes")
        extra = sorted(set(descriptions or {}) - class_set)
        if extra:
            raise ParameterError(
                f"write_dataset: description given for {extra[0]!r}, which is not in classes"
            )

    event_rows: list[tuple[str, str, str, str]] | None = None
    if events is not None:
        event_rows = []
        for ev in events:
            e = ev if isinstance(ev, Event) else Event(*ev)
            onset, offset = float(e.onset), float(e.offset)
            if not (math.isfinite(onset) and math.isfinite(offset) and 0 <= onset <= offset):
                raise ParameterError(f"write_dataset: event {e} needs finite 0 <= onset <= offset")
            if e.filename not in clip_labels:
                raise ParameterError(f"write_dataset: event {e} names a filename not in filenames")
            if e.label not in clip_labels[e.filename]:
                raise ParameterError(
                    f"write_dataset: event {e} has a label that is not among its clip's labels"
                )
            event_rows.append((e.filename, repr(onset), repr(offset), e.label))

    # Everything is validated: write.
    root.mkdir(parents=True, exist_ok=True)
    header = ["filename", "labels"]
    header += ["split"] if splits is not None else []
    header += ["family"] if families is not None else []
    rows: list[list[str]] = [header]
    for i, fname in enumerate(filenames):
        row = [fname, ";".join(clip_labels[fname])]
        if splits is not None:
            row.append(split_values[i])
        if families is not None:
            row.append(families[i])
        rows.append(row)
    write_text_atomic(root / _CLIPS, csv_text(rows))

    if class_list is not None:
        desc = descriptions or {}
        write_text_atomic(
            root / _CLASSES,
            csv_text([["label", "description"], *([c, str(desc.get(c, "")).strip()] for c in class_list)]),
        )
    elif (root / _CLASSES).exists():
        logger.info("removing stale %s", root / _CLASSES)
        (root / _CLASSES).unlink()

    if event_rows is not None:
        lines = ["\t".join(_EVENTS_HEADER)] + ["\t".join(r) for r in event_rows]
        write_text_atomic(root / _EVENTS, "\n".join(lines) + "\n")
    elif (root / _EVENTS).exists():
        logger.info("removing stale %s", root / _EVENTS)
        (root / _EVENTS).unlink()
    logger.debug("wrote dataset %s: %d clips", root, n)


@reads_user_data("a class list", DataError)
def read_class_list(path: str | os.PathLike[str]) -> list[str]:
    """Read a class list: one label per line (``#`` comments and blank lines skipped), or a CSV with a
    ``label`` column (such as a ``classes.csv``). Duplicates are an error.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: class list not found")
    text = _read_text(path)
    first = text.splitlines()[0].strip().lower() if text.strip() else ""
    if path.suffix.lower() == ".csv" or first == "label" or first.startswith("label,"):
        labels, _ = _read_classes(path)
    else:
        labels, seen = [], {}
        for line_no, line in enumerate(text.splitlines(), start=1):
            label = line.strip()
            if not label or label.startswith("#"):
                continue
            if label in seen:
                raise DataError(f"{path}:{line_no}: duplicate class {label!r} (first on line {seen[label]})")
            seen[label] = line_no
            labels.append(label)
    if not labels:
        raise DataError(f"{path}: the class list is empty")
    return labels

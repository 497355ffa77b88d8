"""Reading a dataset directory (:func:`read_dataset`: ``clips.csv``, ``events.tsv``, ``classes.csv``, validated
line by line) and a class list (:func:`read_class_list`); the format is :mod:`zeroshot_audio.data.dataset`."""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .._errors import DataError, reads_user_data
from ._dataset_format import _CLASSES, _CLIPS, _EVENTS, _EVENTS_HEADER, SPLITS, Dataset, Event

__all__ = ["read_dataset", "read_class_list"]

logger = logging.getLogger("zeroshot_audio.data.dataset")


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

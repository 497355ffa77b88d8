"""Writing a dataset directory (:func:`write_dataset`): the arguments checked against what the format can hold,
then each file written atomically; the format is :mod:`zeroshot_audio.data.dataset`."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .._errors import ParameterError
from .._io import csv_text, write_text_atomic
from ._dataset_format import _CLASSES, _CLIPS, _EVENTS, _EVENTS_HEADER, SPLITS, Event

__all__ = ["write_dataset"]

logger = logging.getLogger("zeroshot_audio.data.dataset")

_LABEL_FORBID = ";\t\n\r"  # characters a class name cannot hold (list separator, events.tsv separators)


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

"""AudioSet class metadata, offline: the ontology's names and descriptions and the 527-class label index.

:func:`audioset_classes`, :func:`audioset_descriptions` and :func:`class_by_name` read the table
``resources/audioset_classes.csv`` shipped with this package: the 632 classes of the AudioSet ontology (name
and description) with, for the 527 classes of the released labels, their label index. The table is derived by
:func:`build_class_table` / :func:`derive_class_table`; ``resources/README.md`` gives its provenance and
licence (CC BY-SA 4.0, Google). Importing the released VGGish features lives in
:mod:`zeroshot_audio.data.audioset.importer`.
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..._errors import DataError, ParameterError, name_some
from ..._io import atomic_path

__all__ = [
    "AudioSetClass",
    "NUM_CLASSES",
    "audioset_classes",
    "audioset_descriptions",
    "class_by_name",
    "build_class_table",
    "write_class_table",
    "derive_class_table",
    "audioset_display_names",
]

logger = logging.getLogger(__name__)

#: Number of classes of the released AudioSet labels (``labels`` of a record index into them).
NUM_CLASSES = 527

_TABLE_FILE = "audioset_classes.csv"
_TABLE_HEADER = ("mid", "display_name", "index527", "description")


# ------------------------------------------------------------------------------------------ class table


@dataclass(frozen=True)
class AudioSetClass:
    """One AudioSet ontology class.

    Attributes
    ----------
    mid : str
        Freebase/Knowledge Graph machine id, e.g. ``'/m/0bt9lr'``.
    name : str
        Display name, e.g. ``'Dog'`` (unique across the ontology).
    index : int or None
        Position among the 527 classes of the released labels (0..526); None for ontology classes that
        are not labelled in the release (mostly abstract or blacklisted ones).
    description : str
        The ontology's description (whitespace normalised).
    """

    mid: str
    name: str
    index: int | None
    description: str


def _norm(text: str) -> str:
    return " ".join(str(text).split())


def build_class_table(ontology_json: str | os.PathLike[str], labels_csv: str | os.PathLike[str]) -> list[AudioSetClass]:
    """Join the AudioSet ontology with the 527-class label index.

    Parameters
    ----------
    ontology_json : str or os.PathLike
        ``ontology.json`` of the AudioSet ontology: a JSON list of objects with ``id``, ``name`` and
        ``description``.
    labels_csv : str or os.PathLike
        ``class_labels_indices.csv``: header ``index,mid,display_name``, one row per labelled class.

    Returns
    -------
    list of AudioSetClass
        Every ontology class: first the 527 labelled ones in index order, then the others in ontology order.
        Names and descriptions come from the ontology, whitespace normalised.

    Raises
    ------
    DataError
        A file is missing or malformed, an index is not 0..526 or repeated, a mid of the label index is not
        in the ontology, or a display name differs from the ontology's name.
    """
    ontology_json, labels_csv = Path(ontology_json), Path(labels_csv)
    try:
        entries = json.loads(ontology_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"{ontology_json}: cannot be read as JSON ({e})") from None
    if not isinstance(entries, list):
        raise DataError(f"{ontology_json}: expected a JSON list of ontology entries")
    ontology: dict[str, tuple[str, str]] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("id", "name")):
            raise DataError(f"{ontology_json}: entry {i} lacks a string 'id' and 'name'")
        mid = entry["id"]
        if mid in ontology:
            raise DataError(f"{ontology_json}: entry {i}: id {mid!r} appears twice")
        ontology[mid] = (_norm(entry["name"]), _norm(entry.get("description") or ""))

    try:
        text = labels_csv.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{labels_csv}: cannot be read ({e})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    if header[:3] != ["index", "mid", "display_name"]:
        raise DataError(f"{labels_csv}: header {header!r} (expected index,mid,display_name)")
    index_of: dict[str, int] = {}
    seen_index: set[int] = set()
    for row in reader:
        if not row:
            continue
        line = reader.line_num
        if len(row) < 3:
            raise DataError(f"{labels_csv}:{line}: {len(row)} column(s) (expected index,mid,display_name)")
        try:
            index = int(row[0])
        except ValueError:
            raise DataError(f"{labels_csv}:{line}: index {row[0]!r} is not an integer") from None
        mid, display = row[1].strip(), _norm(row[2])
        if not 0 <= index < NUM_CLASSES or index in seen_index:
            raise DataError(f"{labels_csv}:{line}: index {index} is repeated or not in 0..{NUM_CLASSES - 1}")
        if mid not in ontology:
            raise DataError(f"{labels_csv}:{line}: mid {mid!r} ({display!r}) is not in {ontology_json}")
        if mid in index_of:
            raise DataError(f"{labels_csv}:{line}: mid {mid!r} appears twice")
        if display != ontology[mid][0]:
            raise DataError(
                f"{labels_csv}:{line}: display name {display!r} differs from the ontology name"
                f" {ontology[mid][0]!r} of {mid}"
            )
        seen_index.add(index)
        index_of[mid] = index
    if len(index_of) != NUM_CLASSES:
        raise DataError(f"{labels_csv}: {len(index_of)} classes (expected {NUM_CLASSES})")

    labelled = sorted(index_of, key=index_of.__getitem__)
    rows = [AudioSetClass(mid, *_name_desc(ontology, mid, index_of.get(mid))) for mid in labelled]
    rows += [AudioSetClass(mid, *_name_desc(ontology, mid, None)) for mid in ontology if mid not in index_of]
    names = [r.name for r in rows]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DataError(f"{ontology_json}: class name {dup!r} is used by two classes")
    return rows


def _name_desc(ontology: dict[str, tuple[str, str]], mid: str, index: int | None) -> tuple[str, int | None, str]:
    name, desc = ontology[mid]
    return name, index, desc


def write_class_table(rows: Iterable[AudioSetClass], path: str | os.PathLike[str]) -> Path:
    """Write class rows as ``mid,display_name,index527,description`` CSV (atomically, UTF-8, ``\\n``).

    Returns
    -------
    Path
        ``path``.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(_TABLE_HEADER)
    for r in rows:
        writer.writerow([r.mid, r.name, "" if r.index is None else str(r.index), r.description])
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue().encode("utf-8"))
    return path


def derive_class_table(
    ontology_json: str | os.PathLike[str],
    labels_csv: str | os.PathLike[str],
    out: str | os.PathLike[str],
) -> Path:
    """Build the class table from the two source files and write it to ``out`` (see ``resources/README.md``).

    Returns
    -------
    Path
        ``out``.
    """
    rows = build_class_table(ontology_json, labels_csv)
    logger.info("writing %d AudioSet classes (%d labelled) to %s", len(rows), NUM_CLASSES, out)
    return write_class_table(rows, out)


@functools.lru_cache(maxsize=1)
def _class_table() -> tuple[AudioSetClass, ...]:
    source = resources.files("zeroshot_audio").joinpath("resources", _TABLE_FILE)
    where = f"zeroshot_audio/resources/{_TABLE_FILE}"
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{where}: cannot be read ({e}); the package installation is incomplete") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    if tuple(next(reader, ())) != _TABLE_HEADER:
        raise DataError(f"{where}: unexpected header (expected {','.join(_TABLE_HEADER)})")
    rows = []
    for row in reader:
        if len(row) != len(_TABLE_HEADER):
            raise DataError(f"{where}:{reader.line_num}: {len(row)} columns (expected {len(_TABLE_HEADER)})")
        mid, name, index, desc = row
        rows.append(AudioSetClass(mid, name, int(index) if index else None, desc))
    if [r.index for r in rows if r.index is not None] != list(range(NUM_CLASSES)):
        raise DataError(f"{where}: the labelled classes are not indices 0..{NUM_CLASSES - 1} in order")
    return tuple(rows)


def audioset_classes(*, only_527: bool = True) -> list[AudioSetClass]:
    """Return the AudioSet classes from the vendored table (read once, then cached).

    Parameters
    ----------
    only_527 : bool, default True
        Only the 527 classes of the released labels, in index order (``result[i].index == i``); False: all
        632 ontology classes, the labelled ones first.

    Returns
    -------
    list of AudioSetClass
    """
    table = _class_table()
    return [c for c in table if c.index is not None] if only_527 else list(table)


def audioset_descriptions() -> dict[str, str]:
    """Return display name -> description for the 527 labelled classes, in index order."""
    return {c.name: c.description for c in audioset_classes()}


def audioset_display_names() -> frozenset[str]:
    """The 527 AudioSet display names (from the class table vendored with the package)."""
    return frozenset(c.name for c in audioset_classes())


def class_by_name(name: str) -> AudioSetClass:
    """Return the ontology class with display name ``name`` (exact, case-sensitive; any of the 632).

    Raises
    ------
    ParameterError
        No class has that name; the message suggests close matches.
    """
    table = _class_table()
    for c in table:
        if c.name == name:
            return c
    names = [c.name for c in table]
    close = [n for n in names if isinstance(name, str) and n.lower() == name.strip().lower()]
    if isinstance(name, str):
        close += [n for n in difflib.get_close_matches(name, names, n=5, cutoff=0.6) if n not in close]
    hint = f"; did you mean {name_some(close)}?" if close else " (see audioset_classes(only_527=False))"
    raise ParameterError(f"class_by_name: {name!r} is not an AudioSet class name{hint}")

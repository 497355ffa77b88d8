"""Output writers of tagging results: one :class:`ResultWriter` per format, chosen by :func:`get_writer`.

Every writer streams: :meth:`~ResultWriter.start` once, :meth:`~ResultWriter.write` for each
:class:`~zeroshot_audio.tagging.TagResult` as soon as it is ready (stream writers flush, so ``zsa tag`` shows each
file when it is done), :meth:`~ResultWriter.finish` once (the events file is written then, atomically). A writer
is also a context manager (``with get_writer("csv") as w: w.write(result)``).

Formats (:data:`FORMATS`):

- ``table``: per file a header line and one line per label, ``probability score label [when]``;
- ``json`` / ``jsonl``: one JSON object per line and file (:meth:`TagResult.to_json`); ``json`` is the
  historical name of the same format;
- ``csv``: ``file,label,score,probability``, one row per shown label (CRLF line ends, as :mod:`csv` writes);
- ``events``: a DCASE events TSV ``filename onset offset event_label`` (one file for the whole run);
- ``timelines``: one sed_scores_eval TSV per recording, ``onset offset <label1> <label2> ...``: one row per
  segment holding each label's detection score (:attr:`LabelResult.detection`); a folder of them is read back
  by ``sed_scores_eval.io.read_sed_scores``.

``top_k`` and ``threshold`` select the labels of ``table``, ``csv`` and ``events`` as ``zsa tag`` does: the
labels with probability >= ``threshold``, then the ``top_k`` best of them; without either, ``events`` keeps the
best label of each file (``json``/``jsonl`` and ``timelines`` always hold every label).

File names that are not UTF-8 are written with their undecodable bytes as ``\\xNN``
(:func:`zeroshot_audio._io.escape_surrogates`). A result a writer cannot write (NaN in JSON, a file name that
a TSV line cannot hold) raises :class:`~zeroshot_audio.DataError` from ``write`` or is left out of the events
file and listed in :attr:`ResultWriter.skipped`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from ._errors import DataError, ParameterError
from ._io import escape_surrogates
from .tagging import PRESENT

__all__ = [
    "FORMATS",
    "ResultWriter",
    "TableWriter",
    "JsonlWriter",
    "CsvWriter",
    "EventsWriter",
    "TimelinesWriter",
    "get_writer",
    "select_labels",
    "tsv_unsafe",
    "output_names",
    "timeline_rows",
]

#: Format name -> where it writes: a text stream (stdout by default), a file, or a directory.
FORMATS: dict[str, str] = {"table": "stream", "json": "stream", "jsonl": "stream", "csv": "stream",
                           "events": "file", "timelines": "directory"}

#: Why a result was left out of the events file.
TSV_UNSAFE = "file name not representable in TSV"


def select_labels(result: Any, *, top_k: int | None = None, threshold: float | None = None) -> list[Any]:
    """The labels of ``result`` (best first) with probability >= ``threshold``, then the ``top_k`` best."""
    shown = [r for r in result.labels if threshold is None or r.probability >= threshold]
    return shown[:top_k] if top_k else shown


def tsv_unsafe(name: str) -> bool:
    """Whether a file name would break a TSV line: a tab, line break or other control character."""
    import unicodedata

    return any(unicodedata.category(c) == "Cc" or c in "\u2028\u2029" for c in name)


def output_names(files: Sequence[str | os.PathLike[str]], suffix: str) -> list[str]:
    """One output file name per input file, unique within the run and predictable: the file's path relative to
    the folder that holds all the files, separators replaced by ``_`` (just its name when the files share one
    folder), plus ``suffix``; a name met again (``a_b/c.wav`` and ``a/b_c.wav``; case ignored) gets ``-2``,
    ``-3``, ... before ``suffix``."""
    absolute = [os.path.abspath(f) for f in files]
    try:
        root = os.path.commonpath([os.path.dirname(a) for a in absolute]) if absolute else ""
    except ValueError:  # no common folder (Windows drives)
        root = ""
    names: list[str] = []
    used: set[str] = set()
    for a in absolute:
        base = (os.path.relpath(a, root) if root else os.path.basename(a)).replace(os.sep, "_")
        name, n = f"{base}{suffix}", 1
        while name.casefold() in used:
            n += 1
            name = f"{base}-{n}{suffix}"
        used.add(name.casefold())
        names.append(name)
    return names


def timeline_rows(result: Any, labels: Sequence[str] | None = None) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The timeline of one result: ``(timestamps [T + 1], labels, detection [T, L])``.

    Segment ``t`` covers ``timestamps[t] .. timestamps[t + 1]`` (its start to the next start; the last one ends
    at the recording's end), as the events do. ``labels`` picks and orders the columns (default: all labels of
    the result, in alphabetical order, so every file of a run has the same columns).
    """
    by_name = {r.label: r for r in result.labels}
    labels = sorted(by_name) if labels is None else list(labels)
    missing = [lab for lab in labels if lab not in by_name]
    if missing:
        raise ParameterError(f"timelines of {result.file}: no result for the label(s) {missing[:5]}")
    stamps = result.frame_times
    columns = []
    for lab in labels:
        det = by_name[lab].detection
        if det is None:
            raise ParameterError(f"timelines of {result.file}: the result of {lab!r} holds no detection scores")
        columns.append(np.asarray(det, dtype=np.float64))
    return stamps, labels, np.stack(columns, axis=1) if columns else np.zeros((stamps.size - 1, 0))


class ResultWriter:
    """Base class: ``start()``, ``write(result)`` per recording, ``finish()``.

    Attributes
    ----------
    skipped : dict of str -> str
        Recordings left out of the output and why (file -> reason).
    """

    format = ""

    def __init__(self, *, top_k: int | None = None, threshold: float | None = None):
        if threshold is not None and not 0 <= threshold <= 1:
            raise ParameterError(f"threshold must be a probability in [0, 1], got {threshold}")
        if top_k is not None and int(top_k) < 1:
            raise ParameterError(f"top_k must be >= 1, got {top_k}")
        self.top_k = top_k
        self.threshold = threshold
        self.skipped: dict[str, str] = {}

    def start(self) -> None:
        """Write what comes before the first result (a header)."""

    def write(self, result: Any) -> None:
        """Write one :class:`~zeroshot_audio.tagging.TagResult`."""
        raise NotImplementedError

    def finish(self) -> None:
        """Write what comes after the last result."""

    def shown(self, result: Any) -> list[Any]:
        """The labels of ``result`` this writer shows (:func:`select_labels`)."""
        return select_labels(result, top_k=self.top_k, threshold=self.threshold)

    def __enter__(self) -> ResultWriter:
        self.start()
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.finish()


class _StreamWriter(ResultWriter):
    def __init__(self, stream: IO[str] | None = None, **options: Any):
        super().__init__(**options)
        self._stream = stream

    @property
    def stream(self) -> IO[str]:
        return self._stream if self._stream is not None else sys.stdout  # stdout as it is now (tests swap it)


class TableWriter(_StreamWriter):
    """A table per recording: ``present probability score label [when]``.

    A label is judged *present* (``*``) when its probability is at least 0.5 (:data:`PRESENT`); its first four
    events are shown (``...`` when there are more). Only present labels have events.
    """

    format = "table"

    def write(self, result: Any) -> None:
        out = self.stream
        out.write(f"{escape_surrogates(result.file)}  ({result.duration:.1f} s)"
                  "  present  probability  score  label  [when]\n")
        for r in self.shown(result):
            present = r.probability >= PRESENT
            when = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b, _ in r.events[:4])
            when += " ..." if len(r.events) > 4 else ""
            out.write(f"  {'*' if present else ' ':>7}  {r.probability:10.1%}  {r.score:6.2f}  {r.label}"
                      + (f"   [{when}]" if when else "") + "\n")
        out.flush()


class JsonlWriter(_StreamWriter):
    """One JSON object per line and recording (:meth:`TagResult.to_json`: every label, best first).

    A result holding NaN or infinity is not written (it would not be JSON): :class:`DataError`.
    """

    format = "jsonl"

    def write(self, result: Any) -> None:
        try:
            line = json.dumps(result.to_json(), allow_nan=False)
        except ValueError:  # never print NaN: it is not JSON
            self.skipped[result.file] = "NaN or infinity in its results (not written)"
            raise DataError(f"{result.file}: NaN or infinity in its results (not written)") from None
        self.stream.write(line + "\n")
        self.stream.flush()


class CsvWriter(_StreamWriter):
    """``file,label,score,probability``: a header, then one row per shown label (4 decimals)."""

    format = "csv"

    def start(self) -> None:
        import csv

        self._csv = csv.writer(self.stream)
        self._csv.writerow(["file", "label", "score", "probability"])

    def write(self, result: Any) -> None:
        if not hasattr(self, "_csv"):
            self.start()
        name = escape_surrogates(result.file)
        for r in self.shown(result):
            self._csv.writerow([name, r.label, f"{r.score:.4f}", f"{r.probability:.4f}"])
        self.stream.flush()


class EventsWriter(ResultWriter):
    """A DCASE events TSV ``filename onset offset event_label`` (seconds, 3 decimals), written atomically by
    :meth:`finish`.

    Without ``top_k`` and ``threshold`` each file contributes the events of its best label. A file name holding
    a tab, line break or other control character cannot be a TSV field: its events are left out and it is
    listed in :attr:`skipped`.
    """

    format = "events"

    def __init__(self, path: str | os.PathLike[str], **options: Any):
        super().__init__(**options)
        self.path = path
        self.rows: list[tuple[str, float, float, str]] = []

    def write(self, result: Any) -> None:
        chosen = self.shown(result) if (self.threshold is not None or self.top_k) else result.labels[:1]
        for r in chosen:
            self.rows += [(result.file, a, b, r.label) for a, b, _ in r.events]

    def finish(self) -> None:
        from ._io import write_text_atomic

        for fn in dict.fromkeys(fn for fn, *_ in self.rows if tsv_unsafe(fn)):
            self.skipped.setdefault(fn, TSV_UNSAFE)
        rows = [row for row in self.rows if not tsv_unsafe(row[0])]
        write_text_atomic(self.path, "filename\tonset\toffset\tevent_label\n" + "".join(
            f"{escape_surrogates(fn)}\t{a:.3f}\t{b:.3f}\t{lab}\n" for fn, a, b, lab in rows))


class TimelinesWriter(ResultWriter):
    """One sed_scores_eval score TSV per recording in ``directory``: ``onset offset <labels...>``.

    Each row is one segment (``onset``/``offset`` in seconds, 3 decimals; the offset of a row is the onset of
    the next) and holds each label's detection score (:attr:`LabelResult.detection`, 6 significant digits):
    attention relative to its window's peak, times the window's calibrated probability; the events of
    ``table``/``json``/``events`` are its runs above half the label's best segment. The file is named
    ``names[result.file]`` when given, else the recording's file name plus ``.tsv`` (``-2``, ``-3`` added on a
    clash), so ``sed_scores_eval.io.read_sed_scores(directory)`` keys the scores by file name. Columns follow
    ``labels`` (default: alphabetical), the same in every file.
    """

    format = "timelines"

    def __init__(self, directory: str | os.PathLike[str], *, labels: Sequence[str] | None = None,
                 names: Mapping[str, str] | None = None, **options: Any):
        super().__init__(**options)
        self.directory = Path(directory)
        self.labels = list(labels) if labels is not None else None
        self.names = dict(names or {})
        self._used: set[str] = {n.casefold() for n in self.names.values()}
        self.written: list[Path] = []

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def _name(self, file: str) -> str:
        if file in self.names:
            return self.names[file]
        base = os.path.basename(file) or "array"
        name, n = f"{base}.tsv", 1
        while name.casefold() in self._used:
            n += 1
            name = f"{base}-{n}.tsv"
        self._used.add(name.casefold())
        self.names[file] = name
        return name

    def write(self, result: Any) -> None:
        from ._io import write_text_atomic

        stamps, labels, det = timeline_rows(result, self.labels)
        if not np.isfinite(det).all():
            self.skipped[result.file] = "NaN or infinity in its results (not written)"
            raise DataError(f"{result.file}: NaN or infinity in its timelines (not written)")
        on = [f"{t:.3f}" for t in stamps]
        lines = ["onset\toffset\t" + "\t".join(labels) + "\n"]
        lines += [f"{on[t]}\t{on[t + 1]}\t" + "\t".join(f"{v:.6g}" for v in row) + "\n" for t, row in enumerate(det)]
        if not self.directory.is_dir():
            self.start()
        path = self.directory / self._name(result.file)
        write_text_atomic(path, "".join(lines))
        self.written.append(path)


def get_writer(fmt: str, out: str | os.PathLike[str] | IO[str] | None = None, *, top_k: int | None = None,
               threshold: float | None = None, **options: Any) -> ResultWriter:
    """The writer of format ``fmt`` (one of :data:`FORMATS`).

    Parameters
    ----------
    fmt : str
        ``table``, ``json``, ``jsonl``, ``csv`` (to a text stream), ``events`` (to a file) or ``timelines``
        (to a directory).
    out : text stream, path or None
        Where to write: a stream for the stream formats (default: ``sys.stdout``), a path for ``events`` and
        ``timelines`` (required).
    top_k, threshold : int, float or None
        Label selection of ``table``, ``csv`` and ``events`` (see the module docstring).
    **options
        ``timelines``: ``labels`` (column order) and ``names`` (``{result.file: output file name}``).

    Raises
    ------
    ParameterError
        An unknown format (the message lists the valid ones), or a missing ``out`` for a file format.
    """
    kind = FORMATS.get(fmt)
    if kind is None:
        raise ParameterError(f"unknown output format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    if kind != "stream" and (out is None or hasattr(out, "write")):
        raise ParameterError(f"the {fmt} format writes to a {kind}: give its path")
    if kind == "stream" and out is not None and not hasattr(out, "write"):
        raise ParameterError(f"the {fmt} format writes to a text stream, got {out!r}")
    if options and fmt != "timelines":
        raise ParameterError(f"the {fmt} format takes no option(s) {', '.join(sorted(options))}")
    cls = {"table": TableWriter, "json": JsonlWriter, "jsonl": JsonlWriter, "csv": CsvWriter,
           "events": EventsWriter, "timelines": TimelinesWriter}[fmt]
    return cls(out, top_k=top_k, threshold=threshold, **options)

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
  by ``sed_scores_eval.io.read_sed_scores``;
- ``parquet``: a results directory (:class:`ParquetWriter`): ``tags.parquet`` (file, label, score, probability,
  present; every label), ``events.parquet`` (file, label, onset, offset, score) and ``failures.parquet`` (file,
  error), each a directory of part files that pyarrow and pandas read as one table; resumable (a rerun tags
  only the files not done yet). ``zsa tag --engine ray`` writes the same directory (:mod:`zeroshot_audio.cluster`).

``top_k`` and ``threshold`` select the labels of ``table``, ``csv`` and ``events`` as ``zsa tag`` does: the
labels with probability >= ``threshold``, then the ``top_k`` best of them; without either, ``events`` keeps the
best label of each file (``json``/``jsonl`` and ``timelines`` always hold every label).

File names that are not UTF-8 are written with their undecodable bytes as ``\\xNN``
(:func:`zeroshot_audio._io.escape_surrogates`). A result a writer cannot write (NaN in JSON, a file name that
a TSV line cannot hold) raises :class:`~zeroshot_audio.DataError` from ``write`` or is left out of the events
file and listed in :attr:`ResultWriter.skipped`.
"""

from __future__ import annotations

import contextlib
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
    "ParquetWriter",
    "PARQUET_TABLES",
    "file_key",
    "parquet_schemas",
    "read_parquet_results",
    "get_writer",
    "select_labels",
    "tsv_unsafe",
    "output_names",
    "timeline_rows",
]

#: Format name -> where it writes: a text stream (stdout by default), a file, or a directory.
FORMATS: dict[str, str] = {"table": "stream", "json": "stream", "jsonl": "stream", "csv": "stream",
                           "events": "file", "timelines": "directory", "parquet": "directory"}

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
        # tenths of a second, hundredths for a clip shorter than one (a 0.03 s click is not "0.0 s")
        d = 1 if result.duration >= 1 else 2
        out.write(f"{escape_surrogates(result.file)}  ({result.duration:.{d}f} s)"
                  "  present  probability  score  label  [when]\n")
        for r in self.shown(result):
            present = r.probability >= PRESENT
            when = ", ".join(f"{a:.{d}f}-{b:.{d}f} s" for a, b, _ in r.events[:4])
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


#: The tables of a Parquet results directory (:class:`ParquetWriter`): each is a directory of part files.
PARQUET_TABLES = ("tags", "events", "failures")
#: The markers that commit parts: ``_done/part-NAME.parquet`` lists the files of part NAME (file, size, mtime_ns,
#: failed); written last, it makes the part count (its name starts with ``_``: readers of the tables skip it).
_DONE = "_done"
#: What a results directory was made with (labels, model, event options): a rerun must match it.
_RUN = "_zsa_run.json"
_LOCK = "_zsa_lock"


def _pyarrow(feature: str = "the parquet format"):
    """``(pyarrow, pyarrow.parquet)``, or the one-line error naming the extra that installs them."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        from ._errors import missing_extra_dependency

        raise missing_extra_dependency("pyarrow", feature, "parquet") from None
    return pa, pq


def parquet_schemas() -> dict[str, Any]:
    """The arrow schemas of the tables of a Parquet results directory (and of its ``_done`` markers)."""
    pa, _ = _pyarrow()
    s, f, b, i = pa.string(), pa.float64(), pa.bool_(), pa.int64()
    return {
        "tags": pa.schema([("file", s), ("label", s), ("score", f), ("probability", f), ("present", b)]),
        "events": pa.schema([("file", s), ("label", s), ("onset", f), ("offset", f), ("score", f)]),
        "failures": pa.schema([("file", s), ("error", s)]),
        _DONE: pa.schema([("file", s), ("size", i), ("mtime_ns", i), ("failed", b)]),
    }


def file_key(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(size, mtime_ns)`` of a local file or of a URL that pyarrow's file systems open (``s3://``, ``gs://``,
    ``file://``...): with the path, what a Parquet results directory keys a done file by. ``(-1, -1)`` when the
    file cannot be asked (it is tagged, and fails with its own message)."""
    text = os.fspath(path)
    try:
        if isinstance(text, str) and "://" in text:
            from pyarrow import fs

            filesystem, inner = fs.FileSystem.from_uri(text)
            info = filesystem.get_file_info(inner)
            return int(info.size if info.size is not None else -1), int(info.mtime_ns or 0)
        st = os.stat(text)
        return int(st.st_size), int(st.st_mtime_ns)
    except (OSError, ValueError):
        return -1, -1


def _part_name(keys: Sequence[tuple[str, int, int]]) -> str:
    """A part's name from its files' keys: the same files give the same name (a retried task rewrites its part)."""
    import hashlib

    digest = hashlib.sha1(json.dumps(sorted(keys), ensure_ascii=True).encode()).hexdigest()
    return digest[:20]


def _write_parquet_atomic(path: Path, table: Any, metadata: Mapping[str, str] | None = None) -> None:
    """Write ``table`` to ``path``: a temporary in the same directory, fsync, rename."""
    from ._io import atomic_path

    _, pq = _pyarrow()
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            pq.write_table(table, f)
            f.flush()
            os.fsync(f.fileno())


class ParquetWriter(ResultWriter):
    """A Parquet results directory: ``tags.parquet``, ``events.parquet`` and ``failures.parquet``.

    Each table is a directory of part files, read as one table by ``pandas.read_parquet(DIR / "tags.parquet")``
    or ``pyarrow.dataset.dataset(...)``; the columns are:

    - ``tags``: ``file, label, score, probability, present`` (every label of every file, best first; ``score``
      and ``probability`` unrounded, as :class:`~zeroshot_audio.tagging.LabelResult` holds them);
    - ``events``: ``file, label, onset, offset, score`` (every event of every label);
    - ``failures``: ``file, error`` (one line naming the file).

    A part holds the rows of up to ``part_files`` files and is committed atomically: its table files are written
    (temporary, fsync, rename), then its marker ``_done/part-NAME.parquet`` (file, size, mtime_ns, failed), which
    makes it count. :meth:`resume` leaves out the files already done (same path, size and modification time), so
    a rerun into the same directory does only what is missing and never repeats a row; parts without a marker (a
    killed run) are removed first, and a part holding a file that changed since (or, with ``retry_failed``, a
    failed file) is rewritten without it. ``top_k`` and ``threshold`` are not used: every label is written.

    Parameters
    ----------
    directory : path
        The results directory (created).
    run : dict, optional
        What the results are made with (labels, model, event options): :meth:`resume` writes it to
        ``_zsa_run.json``, or refuses a directory that holds another run's.
    part_files : int
        Files per part (:meth:`write` commits a part when it holds that many).
    """

    format = "parquet"

    def __init__(self, directory: str | os.PathLike[str], *, run: Mapping[str, Any] | None = None,
                 part_files: int = 256, **options: Any):
        super().__init__(**options)
        if int(part_files) < 1:
            raise ParameterError(f"part_files must be >= 1, got {part_files}")
        self.directory = Path(directory)
        self.run = dict(run) if run is not None else None
        self.part_files = int(part_files)
        #: ``{file: (size, mtime_ns)}`` of the files :meth:`resume` was given (others are asked when written).
        self.keys: dict[str, tuple[int, int]] = {}
        #: Names of the parts this writer committed.
        self.parts: list[str] = []
        #: Files of :meth:`resume` that failed in an earlier run (and are not tried again).
        self.failed_before: list[str] = []
        self._rows: dict[str, list[tuple]] = {name: [] for name in (*PARQUET_TABLES, _DONE)}

    def _dir(self, table: str) -> Path:
        return self.directory / (table if table == _DONE else f"{table}.parquet")

    def start(self) -> None:
        for table in (*PARQUET_TABLES, _DONE):
            self._dir(table).mkdir(parents=True, exist_ok=True)

    # -- writing ------------------------------------------------------------------------------------------

    def _key(self, file: str) -> tuple[str, int, int]:
        size, mtime = self.keys[file] if file in self.keys else file_key(file)
        return escape_surrogates(file), size, mtime

    def write(self, result: Any) -> None:
        name = escape_surrogates(result.file)
        self._rows["tags"] += [(name, r.label, float(r.score), float(r.probability), bool(r.probability >= PRESENT))
                               for r in result.labels]
        self._rows["events"] += [(name, r.label, float(a), float(b), float(sc))
                                 for r in result.labels for a, b, sc in r.events]
        self._rows[_DONE].append((*self._key(result.file), False))
        if len(self._rows[_DONE]) >= self.part_files:
            self.commit()

    def add_failure(self, file: str, error: str) -> None:
        """Record that ``file`` failed with ``error`` (a row of ``failures.parquet``; the file counts as done)."""
        self._rows["failures"].append((escape_surrogates(file), escape_surrogates(" ".join(str(error).split()))))
        self._rows[_DONE].append((*self._key(file), True))
        if len(self._rows[_DONE]) >= self.part_files:
            self.commit()

    def commit(self, name: str | None = None, *, metadata: Mapping[str, str] | None = None) -> str | None:
        """Write the pending rows as one part (tables first, its marker last) and return its name (None: nothing
        pending). ``name`` defaults to a digest of the part's file keys."""
        pa, _ = _pyarrow()
        done = self._rows[_DONE]
        if not done:
            return None
        name = name or _part_name([k[:3] for k in done])
        self.start()
        schemas = parquet_schemas()
        for table in (*PARQUET_TABLES, _DONE):
            rows = self._rows[table]
            schema = schemas[table]
            columns = list(zip(*rows)) if rows else [[] for _ in schema]
            data = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, schema)], schema=schema)
            _write_parquet_atomic(self._dir(table) / f"part-{name}.parquet", data,
                                  metadata if table == _DONE else None)
        self._rows = {t: [] for t in self._rows}
        self.parts.append(name)
        return name

    def finish(self) -> None:
        self.commit()

    @contextlib.contextmanager
    def locked(self):
        """Hold the results directory for one run (an advisory lock on ``_zsa_lock``, released when the block or
        the process ends). A second run into the same directory stops with one line instead of tagging the same
        files and removing the parts this run has written but not yet committed. Without ``fcntl`` (Windows)
        nothing is locked."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on Linux or macOS
            yield
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / _LOCK
        with open(path, "a+", encoding="utf-8") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                who = f.read().strip()
                raise ParameterError(f"{self.directory}: another run is writing into this results directory"
                                     f"{f' ({who})' if who else ''}; wait for it to end or write to another "
                                     "directory") from None
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()}\n")
            f.flush()
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- resuming -----------------------------------------------------------------------------------------

    def _markers(self) -> dict[str, Any]:
        _, pq = _pyarrow()
        out = {}
        for p in sorted(self._dir(_DONE).glob("part-*.parquet")):
            out[p.name[len("part-"): -len(".parquet")]] = pq.read_table(p)
        return out

    def _drop_part(self, name: str) -> None:
        """Un-commit part ``name``: its marker first, then its table files."""
        import contextlib

        for table in (_DONE, *PARQUET_TABLES):
            with contextlib.suppress(FileNotFoundError):
                (self._dir(table) / f"part-{name}.parquet").unlink()

    def _check_run(self) -> None:
        from ._io import write_json_atomic

        if self.run is None:
            return
        path = self.directory / _RUN
        if path.is_file():
            try:
                before = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise DataError(f"{path}: cannot be read ({err})") from None
            if before != json.loads(json.dumps(self.run)):
                what = [k for k in sorted(set(before) | set(self.run)) if before.get(k) != self.run.get(k)]
                raise ParameterError(f"{self.directory}: holds results made with other {', '.join(what)} "
                                     f"(see {path}); write to another directory")
        else:
            write_json_atomic(path, self.run)

    def _clean(self) -> None:
        """Finish an interrupted rewrite, then remove table parts without a marker and stray temporaries."""
        markers = self._markers()
        for table in markers.values():
            old = (table.schema.metadata or {}).get(b"replaces", b"").decode()
            if old and old in markers:
                self._drop_part(old)
        done = {p.name for p in self._dir(_DONE).glob("part-*.parquet")}
        for table in PARQUET_TABLES:
            for p in self._dir(table).iterdir():
                orphan = p.name.startswith("part-") and p.name not in done
                if orphan or (p.name.startswith(".") and p.name.endswith(".tmp")):
                    p.unlink()
        for p in self._dir(_DONE).iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                p.unlink()

    def resume(self, files: Sequence[str | os.PathLike[str]], *, keys: Sequence[tuple[int, int]] | None = None,
               retry_failed: bool = False) -> list[str]:
        """Prepare the directory for a run over ``files`` and return those not done yet (in order).

        Parameters
        ----------
        files : sequence of path or URL
            The run's inputs, named as they are written in the ``file`` column.
        keys : sequence of (size, mtime_ns), optional
            Their :func:`file_key` (asked for each file when not given).
        retry_failed : bool
            Do the files recorded in ``failures.parquet`` again.
        """
        names = [os.fspath(f) for f in files]
        if keys is None:
            keys = [file_key(f) for f in names]
        self.keys.update(zip(names, map(tuple, keys)))
        self.start()
        self._check_run()
        self._clean()
        wanted = {escape_surrogates(f): self.keys[f] for f in names}
        done: set[str] = set()
        for name, table in self._markers().items():
            rows = table.to_pylist()
            stale = {r["file"] for r in rows if r["file"] in wanted
                     and ((r["size"], r["mtime_ns"]) != wanted[r["file"]] or (retry_failed and r["failed"]))}
            if stale:
                self._rewrite(name, stale)
            done.update(r["file"] for r in rows if r["file"] not in stale)
            self.failed_before += [r["file"] for r in rows if r["failed"] and r["file"] in wanted
                                   and r["file"] not in stale]
        return [f for f in names if escape_surrogates(f) not in done]

    def _rewrite(self, name: str, drop: set[str]) -> None:
        """Part ``name`` without the rows of the files ``drop``: a new part (marked as replacing it), then the old
        one removed; :meth:`_clean` finishes the job when a run is killed in between."""
        import pyarrow.compute as pc

        pa, pq = _pyarrow()
        keep = self._rows
        self._rows = {t: [] for t in keep}
        try:
            for table in (*PARQUET_TABLES, _DONE):
                data = pq.read_table(self._dir(table) / f"part-{name}.parquet")
                mask = pc.invert(pc.is_in(data["file"], value_set=pa.array(sorted(drop), pa.string())))
                self._rows[table] = [tuple(r.values()) for r in data.filter(mask).to_pylist()]
            if self._rows[_DONE]:
                self.commit(metadata={"replaces": name})
                self.parts.pop()
        finally:
            self._rows = keep
        self._drop_part(name)


def read_parquet_results(directory: str | os.PathLike[str], table: str = "tags"):
    """One table of a Parquet results directory as a pandas DataFrame (``tags``, ``events`` or ``failures``):
    what ``pandas.read_parquet(directory / "tags.parquet")`` reads, with the column types fixed when the table
    has no rows."""
    if table not in PARQUET_TABLES:
        raise ParameterError(f"unknown table {table!r} (expected one of: {', '.join(PARQUET_TABLES)})")
    pa, pq = _pyarrow()
    path = Path(directory) / f"{table}.parquet"
    schema = parquet_schemas()[table]
    if not path.is_dir() or not any(path.glob("part-*.parquet")):
        return schema.empty_table().to_pandas()
    return pq.read_table(path, schema=schema).to_pandas()


def get_writer(fmt: str, out: str | os.PathLike[str] | IO[str] | None = None, *, top_k: int | None = None,
               threshold: float | None = None, **options: Any) -> ResultWriter:
    """The writer of format ``fmt`` (one of :data:`FORMATS`).

    Parameters
    ----------
    fmt : str
        ``table``, ``json``, ``jsonl``, ``csv`` (to a text stream), ``events`` (to a file), ``timelines`` or
        ``parquet`` (to a directory).
    out : text stream, path or None
        Where to write: a stream for the stream formats (default: ``sys.stdout``), a path for ``events`` and
        ``timelines`` (required).
    top_k, threshold : int, float or None
        Label selection of ``table``, ``csv`` and ``events`` (see the module docstring).
    **options
        ``timelines``: ``labels`` (column order) and ``names`` (``{result.file: output file name}``);
        ``parquet``: ``run`` and ``part_files`` (see :class:`ParquetWriter`).

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
    if options and fmt not in ("timelines", "parquet"):
        raise ParameterError(f"the {fmt} format takes no option(s) {', '.join(sorted(options))}")
    cls = {"table": TableWriter, "json": JsonlWriter, "jsonl": JsonlWriter, "csv": CsvWriter,
           "events": EventsWriter, "timelines": TimelinesWriter, "parquet": ParquetWriter}[fmt]
    return cls(out, top_k=top_k, threshold=threshold, **options)

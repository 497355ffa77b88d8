"""Embedding store: per-clip segment embeddings written in atomic shards, read memory-mapped.

Layout of a store directory::

    meta.json                  format version and the StoreMeta fields
    shards/00000.npy           np.save of an [S, D] matrix (dtype from meta.json)
    shards/00000.index.json    keys, offsets into the shard, counts and durations of its clips
    failures.csv               key,reason of clips that could not be embedded
    writer.lock                held (flock) by the one writer of the store, with its pid

A shard counts only once its index file exists: the writer renames the ``.npy`` into place first and
the index second, so an interrupted writer leaves at most an ``.npy`` without an index, which readers
ignore and the next writer removes. Shards are never rewritten, so a reader sees the snapshot of
complete shards that existed when it opened the store, while a writer goes on appending.

One writer at a time per store: a writer holds an exclusive ``flock`` on ``writer.lock`` for its
lifetime (the kernel releases it when the process ends, also by a kill), and a second writer is refused
with an error naming the holder's pid. Shard files are created without replacing existing ones, so even
writers that bypass the lock cannot overwrite each other's shards.

Opening checks every shard file against its index (a ``.npy`` header, dtype, shape and file size, read
without loading the data): a reader refuses a damaged shard with an error naming it, and a resuming
writer drops the clips of a damaged shard (with a warning) so that they are embedded again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from .._errors import ParameterError, StoreError, name_some, reads_user_data
from .._io import atomic_path, write_json_atomic
from ._store_format import (  # the format; StoreMeta, identity_mismatch and the version are public here
    _FAILURES,
    _HOP_TOL,
    _MAX_OPEN_SHARDS,
    _META,
    _NPY_RE,
    _SHARDS,
    STORE_FORMAT_VERSION,
    StoreMeta,
    _describe,
    _foreign_entries,
    _identity_differs,
    _list_shards,
    _lock_store,
    _read_failures,
    _read_index,
    _read_meta,
    _shard_name,
    _shard_problem,
    _write_failures,
    identity_mismatch,
)

__all__ = [
    "STORE_FORMAT_VERSION",
    "StoreMeta",
    "StoreWriter",
    "EmbeddingStore",
    "open_store",
    "identity_mismatch",
]

logger = logging.getLogger(__name__)


class StoreWriter:
    """Write (or resume writing) an embedding store.

    Parameters
    ----------
    path : str or os.PathLike
        Store directory; created when missing. An existing store is resumed: its clips count as stored.
    meta : StoreMeta
        What produces the embeddings. When resuming, the store keeps its own ``meta.json``, whose
        identity, ``sample_rate`` and segment window must equal ``meta``'s.
    shard_size : int, default 1024
        Clips per shard: a shard is written whenever this many clips are pending.

    Attributes
    ----------
    dropped : list of str
        Keys of clips that were in damaged shards (missing, truncated or unreadable ``.npy`` files) when
        the store was opened: they were removed from the store, with a warning, and can be written again.

    Raises
    ------
    StoreError
        Another process is writing the store (the message names its pid); ``path`` is a non-empty
        directory that is not an embedding store; the existing store was made by a different embedder,
        or is unreadable or malformed.
    ParameterError
        ``shard_size`` < 1.

    Notes
    -----
    Use it as a context manager: on leaving the block, also through an exception or KeyboardInterrupt,
    pending clips are flushed, so every clip whose :meth:`add` returned is kept. One writer per store at
    a time: the writer holds an exclusive lock on ``writer.lock`` in the store until :meth:`close` (or
    until its process ends, however it ends); a second writer is refused rather than made to wait.
    Readers do not take the lock.
    """

    def __init__(self, path: str | os.PathLike[str], meta: StoreMeta, *, shard_size: int = 1024) -> None:
        if not isinstance(meta, StoreMeta):
            raise ParameterError(f"StoreWriter: meta must be a StoreMeta (got {type(meta).__name__})")
        if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
            raise ParameterError(f"StoreWriter: shard_size must be a positive integer (got {shard_size!r})")
        self.path = Path(path)
        self.shard_size = shard_size
        self._shard_dir = self.path / _SHARDS
        self._pending_keys: list[str] = []
        self._pending_segments: list[np.ndarray] = []
        self._pending_durations: list[float] = []
        self._pending_set: set[str] = set()
        self._stored: set[str] = set()
        self._failures_dirty = 0
        self._closed = False

        self.dropped: list[str] = []
        self._lock: Any = None

        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path}: exists and is not a directory (expected an embedding store)")
        if self.path.is_dir() and not (self.path / _META).exists():
            foreign = _foreign_entries(self.path)
            if foreign:
                raise StoreError(
                    f"{self.path}: is not empty and is not an embedding store (no {_META}; it holds"
                    f" {name_some(foreign, 3)}); refusing to write a store among other files"
                    " (use a new or empty directory)"
                )
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_store(self.path)
        try:
            self._open(meta)
        except BaseException:
            self._unlock()
            raise

    def _open(self, meta: StoreMeta) -> None:
        """Read or create the store (under the lock): meta, complete shards, failures."""
        if (self.path / _META).exists():
            existing = _read_meta(self.path)
            self._check_resume(existing, meta)
            self.meta = existing
        else:
            if _list_shards(self._shard_dir):
                raise StoreError(f"{self.path}: has shards but no {_META} (not a valid embedding store)")
            write_json_atomic(self.path / _META, meta.to_json())
            self.meta = meta
        self._dtype = np.dtype(self.meta.dtype)
        self._shard_dir.mkdir(exist_ok=True)

        shards = _list_shards(self._shard_dir)
        where: dict[str, Path] = {}
        complete = set()
        for number, index_path in shards:
            index = _read_index(index_path)
            npy_path = self._shard_dir / f"{_shard_name(number)}.npy"
            problem = _shard_problem(npy_path, index_path, index, self.meta)
            if problem is not None:
                logger.warning(
                    "%s; dropping its %d clip(s) from the store so that they are written again",
                    problem,
                    len(index["keys"]),
                )
                index_path.unlink()  # first the index: the shard no longer counts
                with contextlib.suppress(FileNotFoundError):
                    npy_path.unlink()
                self.dropped.extend(index["keys"])
                continue
            complete.add(number)
            for key in index["keys"]:
                if key in where:
                    raise StoreError(
                        f"{self.path}: key {key!r} is stored twice ({where[key].name} and {index_path.name})"
                    )
                where[key] = index_path
        self._stored = set(where)
        # Read under the lock; _write_shard also skips numbers taken meanwhile (it never replaces a shard).
        self._next = shards[-1][0] + 1 if shards else 0
        self._remove_leftovers(complete)
        self._failures = {
            k: r for k, r in _read_failures(self.path / _FAILURES).items() if k not in self._stored
        }
        if shards:
            logger.info("resuming store %s: %d clips in %d shards", self.path, len(self._stored), len(complete))

    def _unlock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()  # closing the descriptor releases the flock

    def _check_resume(self, existing: StoreMeta, meta: StoreMeta) -> None:
        if _identity_differs(existing.identity(), meta.identity()):
            raise StoreError(
                f"store {self.path} was made by {_describe(existing.identity())}"
                f" but the writer was given {_describe(meta.identity())}"
            )
        if (
            existing.sample_rate != meta.sample_rate
            or abs(existing.segment_window - meta.segment_window) > _HOP_TOL
        ):
            raise StoreError(
                f"store {self.path} has sample_rate {existing.sample_rate}, window"
                f" {existing.segment_window} but the writer was given sample_rate {meta.sample_rate},"
                f" window {meta.segment_window}"
            )
        if existing.dtype != meta.dtype:
            logger.warning(
                "store %s holds %s; writing %s as the store says (requested %s)",
                self.path,
                existing.dtype,
                existing.dtype,
                meta.dtype,
            )

    def _remove_leftovers(self, complete: set[int]) -> None:
        """Remove ``.npy`` files without an index (interrupted writer) and stray temporaries."""
        for p in self._shard_dir.iterdir():
            m = _NPY_RE.match(p.name)
            orphan = m is not None and int(m.group(1)) not in complete
            if orphan or (p.name.startswith(".") and p.name.endswith(".tmp")):
                logger.info("removing %s left by an interrupted writer", p)
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()

    # -- queries --------------------------------------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        return key in self._stored or key in self._pending_set

    def __len__(self) -> int:
        """Number of clips stored or pending."""
        return len(self._stored) + len(self._pending_keys)

    @property
    def failures(self) -> dict[str, str]:
        """Keys recorded as failed, with their reasons (a copy)."""
        return dict(self._failures)

    # -- writing --------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"store writer for {self.path} is closed")

    def add(self, key: str, segments: np.ndarray, *, duration: float | None = None) -> None:
        """Add the segment embeddings of one clip.

        Parameters
        ----------
        key : str
            Clip key (typically its dataset filename); must not be stored already.
        segments : numpy.ndarray
            ``[T, D]`` embeddings, T >= 1, D = ``meta.dim``, finite (also after casting to the store dtype).
        duration : float, optional
            Clip duration in seconds; default ``T * hop``.

        Raises
        ------
        ParameterError
            Wrong shape, empty, non-finite values, bad duration, or the key is already stored.
        """
        self._check_open()
        if not isinstance(key, str) or not key:
            raise ParameterError(f"StoreWriter.add: key must be a non-empty string (got {key!r})")
        if key in self:
            raise ParameterError(f"StoreWriter.add: key {key!r} is already stored in {self.path}")
        seg = np.asarray(segments)
        if seg.dtype.kind not in "fiu":
            raise ParameterError(
                f"StoreWriter.add: segments of {key!r} have dtype {seg.dtype} (expected real numbers)"
            )
        if seg.ndim != 2 or seg.shape[1] != self.meta.dim:
            raise ParameterError(
                f"StoreWriter.add: segments of {key!r} have shape {seg.shape} (expected [T, {self.meta.dim}])"
            )
        if seg.shape[0] == 0:
            raise ParameterError(f"StoreWriter.add: segments of {key!r} are empty (expected T >= 1)")
        if not np.isfinite(seg).all():
            raise ParameterError(
                f"StoreWriter.add: segments of {key!r} hold NaN or infinite values (expected finite)"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            stored = seg.astype(self._dtype, copy=True)
        if not np.isfinite(stored).all():
            raise ParameterError(
                f"StoreWriter.add: segments of {key!r} hold values too large for the store dtype"
                f" {self._dtype} (max |x| {float(np.abs(seg).max()):.4g})"
            )
        if duration is None:
            duration = seg.shape[0] * self.meta.hop
        elif (
            not isinstance(duration, (int, float, np.integer, np.floating))
            or isinstance(duration, bool)
            or not math.isfinite(float(duration))
            or duration < 0
        ):
            raise ParameterError(
                f"StoreWriter.add: duration of {key!r} is {duration!r} (expected seconds >= 0)"
            )
        self._pending_keys.append(key)
        self._pending_segments.append(stored)
        self._pending_durations.append(float(duration))
        self._pending_set.add(key)
        if key in self._failures:
            del self._failures[key]
            self._failures_dirty += 1
        if len(self._pending_keys) >= self.shard_size:
            self.flush()

    def add_failure(self, key: str, reason: str) -> None:
        """Record that clip ``key`` could not be embedded (kept in ``failures.csv``).

        Raises
        ------
        ParameterError
            The key is already stored.
        """
        self._check_open()
        if not isinstance(key, str) or not key:
            raise ParameterError(f"StoreWriter.add_failure: key must be a non-empty string (got {key!r})")
        if key in self:
            raise ParameterError(f"StoreWriter.add_failure: key {key!r} is already stored in {self.path}")
        self._failures[key] = " ".join(str(reason).split())
        self._failures_dirty += 1
        if self._failures_dirty >= self.shard_size:
            self._save_failures()

    def _save_failures(self) -> None:
        if self._failures_dirty:
            _write_failures(self.path / _FAILURES, self._failures)
            self._failures_dirty = 0

    def flush(self) -> None:
        """Write the pending clips as one shard (``.npy`` then index, each atomically) and save failures."""
        if self._pending_keys:
            self._write_shard()
        self._save_failures()

    def _write_shard(self) -> None:
        counts = [s.shape[0] for s in self._pending_segments]
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()
        number = self._next
        index_path = self._shard_dir / f"{_shard_name(number)}.index.json"
        claimed = False  # the .npy of ``number`` is ours
        try:
            data = np.concatenate(self._pending_segments, axis=0)
            self._shard_dir.mkdir(parents=True, exist_ok=True)
            while True:  # claim a number no other shard has (the .npy is created, never replaced)
                name = _shard_name(number)
                npy_path = self._shard_dir / f"{name}.npy"
                index_path = self._shard_dir / f"{name}.index.json"
                if not (npy_path.exists() or index_path.exists()):
                    try:
                        with atomic_path(npy_path, overwrite=False) as tmp:
                            with open(tmp, "wb") as f:
                                np.save(f, data)
                                f.flush()
                                os.fsync(f.fileno())
                        claimed = True
                        break
                    except FileExistsError:
                        pass
                number += 1
            index = {
                "format_version": STORE_FORMAT_VERSION,
                "keys": list(self._pending_keys),
                "offsets": offsets,
                "counts": counts,
                "durations": list(self._pending_durations),
            }
            with atomic_path(index_path, overwrite=False) as tmp:
                tmp.write_text(json.dumps(index, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        finally:
            # The shard is complete exactly when its index exists; bookkeeping follows that, also when an
            # interrupt arrives between the rename and here.
            if claimed and index_path.exists():
                self._stored.update(self._pending_keys)
                self._pending_keys, self._pending_segments, self._pending_durations = [], [], []
                self._pending_set = set()
                self._next = number + 1
        logger.debug("wrote shard %s: %d clips, %d segments", npy_path, len(counts), sum(counts))

    def close(self) -> None:
        """Flush and release the writer lock; further adds raise StoreError. Closing twice is harmless."""
        if not self._closed:
            self.flush()
            self._closed = True
        self._unlock()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                self.close()
                return
            try:
                self.close()
            except Exception:
                logger.exception("could not flush store %s while handling %s", self.path, exc_type.__name__)
        finally:
            self._unlock()


# ---------------------------------------------------------------------------------------------- reader


class EmbeddingStore:
    """Read an embedding store, memory-mapped.

    Parameters
    ----------
    path : str or os.PathLike
        Store directory.

    Attributes
    ----------
    path : Path
    meta : StoreMeta
    keys : list of str
        Clip keys, in shard order; row ``i`` of :attr:`counts` and :attr:`durations` is ``keys[i]``.
    counts : numpy.ndarray
        ``[N]`` int64 segments per clip.
    durations : numpy.ndarray
        ``[N]`` float64 clip durations (seconds).
    failures : dict of str to str
        Keys that could not be embedded (and are not stored), with reasons.

    Raises
    ------
    StoreError
        The store is missing, unreadable or inconsistent (e.g. a key in two shards).
    """

    @reads_user_data("an embedding store", StoreError)
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise StoreError(f"{self.path}: embedding store does not exist")
        self.meta = _read_meta(self.path)
        shard_dir = self.path / _SHARDS
        self._shard_paths: list[Path] = []
        keys: list[str] = []
        counts, durations, offsets, shard_ids = [], [], [], []
        self._shard_need: list[int] = []  # rows each shard must have
        for number, index_path in _list_shards(shard_dir):
            index = _read_index(index_path)
            npy_path = shard_dir / f"{_shard_name(number)}.npy"
            problem = _shard_problem(npy_path, index_path, index, self.meta)
            if problem is not None:
                raise StoreError(
                    f"{problem}; store {self.path} is damaged (a writer, e.g. `zsa embed` into it again, drops"
                    " the shard and writes its clips again)"
                )
            sid = len(self._shard_paths)
            self._shard_paths.append(npy_path)
            self._shard_need.append(int((index["offsets"] + index["counts"]).max()) if index["keys"] else 0)
            keys.extend(index["keys"])
            counts.append(index["counts"])
            durations.append(index["durations"])
            offsets.append(index["offsets"])
            shard_ids.append(np.full(len(index["keys"]), sid, dtype=np.int64))
        self.keys = keys
        self.counts = np.concatenate(counts) if counts else np.zeros(0, np.int64)
        self.durations = np.concatenate(durations) if durations else np.zeros(0, np.float64)
        self._offsets = np.concatenate(offsets) if offsets else np.zeros(0, np.int64)
        self._shard_of = np.concatenate(shard_ids) if shard_ids else np.zeros(0, np.int64)
        self._row: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key in self._row:
                first = self._shard_paths[self._shard_of[self._row[key]]].name
                raise StoreError(
                    f"{self.path}: key {key!r} is stored twice (shards {first} and"
                    f" {self._shard_paths[self._shard_of[i]].name})"
                )
            self._row[key] = i
        self.failures = {k: r for k, r in _read_failures(self.path / _FAILURES).items() if k not in self._row}
        self._open: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: object) -> bool:
        return key in self._row

    def __repr__(self) -> str:
        return (
            f"EmbeddingStore({str(self.path)!r}: {len(self)} clips, {len(self._shard_paths)} shards,"
            f" {_describe(self.meta.identity())})"
        )

    @reads_user_data("a shard of segment embeddings", StoreError, where=lambda a: a["self"]._shard_paths[a["sid"]])
    def _shard(self, sid: int) -> np.ndarray:
        """Return shard ``sid`` memory-mapped (opened lazily, least recently used closed beyond a limit)."""
        arr = self._open.get(sid)
        if arr is not None:
            self._open.move_to_end(sid)
            return arr
        path = self._shard_paths[sid]
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise StoreError(f"{path}: cannot be read ({e})") from None
        if arr.ndim != 2 or arr.shape[1] != self.meta.dim or arr.shape[0] < self._shard_need[sid]:
            raise StoreError(
                f"{path}: shape {arr.shape} does not match its index"
                f" (expected at least [{self._shard_need[sid]}, {self.meta.dim}])"
            )
        self._open[sid] = arr
        while len(self._open) > _MAX_OPEN_SHARDS:
            self._open.popitem(last=False)
        return arr

    def close(self) -> None:
        """Release the memory-mapped shards (they are reopened on demand)."""
        self._open.clear()

    def index_of(self, keys: Sequence[str]) -> np.ndarray:
        """Return the row numbers of ``keys``.

        Returns
        -------
        numpy.ndarray
            ``[K]`` int64.

        Raises
        ------
        StoreError
            Some keys are not in the store (the message counts them and names up to 5).
        """
        if isinstance(keys, str):
            keys = [keys]
        row = self._row
        missing = [k for k in keys if k not in row]
        if missing:
            raise StoreError(
                f"{len(missing)} of {len(keys)} key(s) are not in store {self.path}: {name_some(missing)}"
            )
        return np.fromiter((row[k] for k in keys), dtype=np.int64, count=len(keys))

    def get(self, key: str) -> np.ndarray:
        """Return the ``[T, D]`` float32 segment embeddings of ``key``; StoreError when it is missing."""
        i = self._row.get(key)
        if i is None:
            raise StoreError(f"key {key!r} is not in store {self.path}")
        off, n = int(self._offsets[i]), int(self.counts[i])
        x = np.array(self._shard(int(self._shard_of[i]))[off : off + n], dtype=np.float32)
        if not np.isfinite(x).all():
            self._not_finite(i)
        return x

    def _not_finite(self, row: int) -> None:
        sid = int(self._shard_of[row])
        off = int(self._offsets[row])
        raise StoreError(
            f"{self._shard_paths[sid]}: clip {self.keys[row]!r} (rows {off}..{off + int(self.counts[row]) - 1})"
            " holds NaN or infinite embeddings; the shard is damaged (delete it and its .index.json, then"
            " embed again)"
        )

    def batch(self, rows: np.ndarray | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Gather a padded batch of clips.

        Parameters
        ----------
        rows : array-like of int
            ``[B]`` clip row numbers (e.g. from :meth:`index_of`); repeats allowed.

        Returns
        -------
        x : numpy.ndarray
            ``[B, Tmax, D]`` float32; positions past a clip's length are zero.
        mask : numpy.ndarray
            ``[B, Tmax]`` bool, True at real segments.

        Raises
        ------
        ParameterError
            A row is out of range.
        """
        rows = np.asarray(rows)
        if rows.size == 0:
            rows = rows.reshape(0).astype(np.int64)
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            raise ParameterError(
                f"batch: rows must be a 1-D integer array (got {rows.dtype}, shape {rows.shape})"
            )
        n = len(self.keys)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            bad = rows[(rows < 0) | (rows >= n)][0]
            raise ParameterError(f"batch: row {int(bad)} is out of range for store {self.path} of {n} clips")
        counts = self.counts[rows]
        tmax = int(counts.max()) if rows.size else 0
        steps = np.arange(tmax, dtype=np.int64)
        mask = steps[None, :] < counts[:, None]
        x = np.empty((rows.size, tmax, self.meta.dim), dtype=np.float32)
        if rows.size:
            shard_of = self._shard_of[rows]
            gather = self._offsets[rows][:, None] + np.minimum(steps[None, :], counts[:, None] - 1)
            first = shard_of[0]
            if (shard_of == first).all():
                x[...] = self._shard(int(first))[gather]
            else:
                for sid in np.unique(shard_of):
                    sel = np.flatnonzero(shard_of == sid)
                    x[sel] = self._shard(int(sid))[gather[sel]]
            x[~mask] = 0.0
            finite = np.isfinite(x).all(axis=(1, 2))
            if not finite.all():
                self._not_finite(int(rows[np.argmin(finite)]))
        return x, mask

    def check_compatible(self, identity: dict[str, Any], *, what: str = "model") -> None:
        """Check that the store's embedder identity equals ``identity`` (hop within 1e-6).

        Parameters
        ----------
        identity : dict
            ``{embedder, embedder_version, dim, hop}``, e.g. from :meth:`StoreMeta.identity`.
        what : str
            Who expects ``identity``, for the message.

        Raises
        ------
        StoreError
            Any field differs.
        """
        mine = self.meta.identity()
        if _identity_differs(mine, identity):
            raise StoreError(
                f"store {self.path} was made by {_describe(mine)} but the {what} expects"
                f" {_describe(identity)}"
            )


def open_store(path: str | os.PathLike[str]) -> EmbeddingStore:
    """Open the embedding store at ``path`` for reading (see :class:`EmbeddingStore`)."""
    return EmbeddingStore(path)

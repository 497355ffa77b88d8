"""The writer of an embedding store: :class:`StoreWriter` appends clips in atomic shards under the store's
writer lock, resumes a store (dropping damaged shards) and keeps ``failures.csv`` (the format is
:mod:`zeroshot_audio.data._store_format`; the reader is :mod:`zeroshot_audio.data.store`)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from .._errors import ParameterError, StoreError, name_some
from .._io import atomic_path, write_json_atomic
from ._store_format import (
    _FAILURES,
    _HOP_TOL,
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
)

__all__ = ["StoreWriter", "check_segments", "write_shard"]

logger = logging.getLogger("zeroshot_audio.data.store")


def check_segments(key: str, segments: np.ndarray, duration: float | None, meta: StoreMeta) -> tuple[np.ndarray, float]:
    """``(segments in the store's dtype, duration)`` of one clip, checked as :meth:`StoreWriter.add` requires (also
    used by workers that write shards themselves: :func:`write_shard`).

    Raises
    ------
    ParameterError
        Wrong shape, empty, non-finite values or a bad duration (the message names ``key``).
    """
    dtype = np.dtype(meta.dtype)
    seg = np.asarray(segments)
    if seg.dtype.kind not in "fiu":
        raise ParameterError(
            f"StoreWriter.add: segments of {key!r} have dtype {seg.dtype} (expected real numbers)"
        )
    if seg.ndim != 2 or seg.shape[1] != meta.dim:
        raise ParameterError(
            f"StoreWriter.add: segments of {key!r} have shape {seg.shape} (expected [T, {meta.dim}])"
        )
    if seg.shape[0] == 0:
        raise ParameterError(f"StoreWriter.add: segments of {key!r} are empty (expected T >= 1)")
    if not np.isfinite(seg).all():
        raise ParameterError(
            f"StoreWriter.add: segments of {key!r} hold NaN or infinite values (expected finite)"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        stored = seg.astype(dtype, copy=True)
    if not np.isfinite(stored).all():
        raise ParameterError(
            f"StoreWriter.add: segments of {key!r} hold values too large for the store dtype"
            f" {dtype} (max |x| {float(np.abs(seg).max()):.4g})"
        )
    if duration is None:
        duration = seg.shape[0] * meta.hop
    elif (
        not isinstance(duration, (int, float, np.integer, np.floating))
        or isinstance(duration, bool)
        or not math.isfinite(float(duration))
        or duration < 0
    ):
        raise ParameterError(
            f"StoreWriter.add: duration of {key!r} is {duration!r} (expected seconds >= 0)"
        )
    return stored, float(duration)


def _shard_index(keys: list[str], segments: list[np.ndarray], durations: list[float]) -> tuple[np.ndarray, dict]:
    """The ``.npy`` data and the index of a shard holding ``segments`` (one ``[T, D]`` array per key)."""
    counts = [s.shape[0] for s in segments]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()
    index = {
        "format_version": STORE_FORMAT_VERSION,
        "keys": list(keys),
        "offsets": offsets,
        "counts": counts,
        "durations": list(durations),
    }
    return np.concatenate(segments, axis=0), index


def _save_npy(path: Path, data: np.ndarray, *, overwrite: bool) -> None:
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, data)
            f.flush()
            os.fsync(f.fileno())


def _save_index(path: Path, index: dict, *, overwrite: bool) -> None:
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(index, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_shard(store: str | os.PathLike[str], number: int, keys: list[str], segments: list[np.ndarray],
                durations: list[float]) -> None:
    """Write shard ``number`` of ``store`` (``.npy`` then index, each atomically), replacing a shard of that number.

    For workers writing shards on behalf of a :class:`StoreWriter` that reserved the number
    (:meth:`StoreWriter.reserve`) and adopts the shard when the worker is done (:meth:`StoreWriter.adopt`): a
    retried worker rewrites the same shard. ``segments`` must be checked and cast (:func:`check_segments`).
    """
    data, index = _shard_index(keys, segments, durations)
    shard_dir = Path(store) / _SHARDS
    _save_npy(shard_dir / f"{_shard_name(number)}.npy", data, overwrite=True)
    _save_index(shard_dir / f"{_shard_name(number)}.index.json", index, overwrite=True)


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
        stored, duration = check_segments(key, segments, duration, self.meta)
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
        number = self._next
        index_path = self._shard_dir / f"{_shard_name(number)}.index.json"
        claimed = False  # the .npy of ``number`` is ours
        try:
            data, index = _shard_index(self._pending_keys, self._pending_segments, self._pending_durations)
            counts = index["counts"]
            self._shard_dir.mkdir(parents=True, exist_ok=True)
            while True:  # claim a number no other shard has (the .npy is created, never replaced)
                name = _shard_name(number)
                npy_path = self._shard_dir / f"{name}.npy"
                index_path = self._shard_dir / f"{name}.index.json"
                if not (npy_path.exists() or index_path.exists()):
                    try:
                        _save_npy(npy_path, data, overwrite=False)
                        claimed = True
                        break
                    except FileExistsError:
                        pass
                number += 1
            _save_index(index_path, index, overwrite=False)
        finally:
            # The shard is complete exactly when its index exists; bookkeeping follows that, also when an
            # interrupt arrives between the rename and here.
            if claimed and index_path.exists():
                self._stored.update(self._pending_keys)
                self._pending_keys, self._pending_segments, self._pending_durations = [], [], []
                self._pending_set = set()
                self._next = number + 1
        logger.debug("wrote shard %s: %d clips, %d segments", npy_path, len(counts), sum(counts))

    # -- shards written by workers ----------------------------------------------------------------------

    def reserve(self, n: int) -> int:
        """Reserve ``n`` consecutive shard numbers for workers (:func:`write_shard`); returns the first.

        Pending clips are flushed first. A worker killed after writing its ``.npy`` leaves an orphan that the
        next writer removes; a retried worker rewrites its shard.
        """
        self._check_open()
        self.flush()
        first = self._next
        while any((self._shard_dir / f"{_shard_name(first + i)}.index.json").exists() for i in range(n)):
            first += 1
        self._next = first + n
        return first

    def adopt(self, number: int) -> list[str]:
        """Count shard ``number``, written by a worker, as part of the store: its keys become stored (and leave
        the failures list). Returns its keys.

        Raises
        ------
        StoreError
            The shard is missing or damaged, or holds a key the store holds already.
        """
        self._check_open()
        index_path = self._shard_dir / f"{_shard_name(number)}.index.json"
        if not index_path.is_file():
            raise StoreError(f"{index_path}: shard index missing (its worker did not finish it)")
        index = _read_index(index_path)
        problem = _shard_problem(self._shard_dir / f"{_shard_name(number)}.npy", index_path, index, self.meta)
        if problem is not None:
            raise StoreError(problem)
        keys = list(index["keys"])
        twice = [k for k in keys if k in self]
        if twice:
            raise StoreError(f"{index_path}: holds key(s) the store holds already: {name_some(twice, 3)}")
        self._stored.update(keys)
        for key in keys:
            if self._failures.pop(key, None) is not None:
                self._failures_dirty += 1
        return keys

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

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

This module is the reader (:class:`EmbeddingStore`, :func:`open_store`) and the public home of the store's
names: the writer is :mod:`zeroshot_audio.data.store_writer` (:class:`StoreWriter`, re-exported here), the
format :mod:`zeroshot_audio.data._store_format` (:class:`StoreMeta`, :func:`identity_mismatch`).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ParameterError, StoreError, name_some, reads_user_data
from ._store_format import (  # the format; StoreMeta, identity_mismatch and the version are public here
    _FAILURES,
    _MAX_OPEN_SHARDS,
    _SHARDS,
    STORE_FORMAT_VERSION,
    StoreMeta,
    _describe,
    _identity_differs,
    _list_shards,
    _read_failures,
    _read_index,
    _read_meta,
    _shard_name,
    _shard_problem,
    identity_mismatch,
)
from .store_writer import StoreWriter  # public here

__all__ = [
    "STORE_FORMAT_VERSION",
    "StoreMeta",
    "StoreWriter",
    "EmbeddingStore",
    "open_store",
    "identity_mismatch",
]


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

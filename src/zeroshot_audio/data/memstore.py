"""An embedding store held in memory: the read interface of a store over one array.

Used by planted (synthetic) data and by callers that already hold their segment embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._errors import ParameterError, StoreError, name_some
from .store import StoreMeta, identity_mismatch

__all__ = ["MemoryStore"]


class MemoryStore:
    """Segments ``[N, T, D]`` with per-clip counts, read like :class:`~zeroshot_audio.data.EmbeddingStore`.

    Parameters
    ----------
    keys : sequence of str
        One key per clip (the dataset filename).
    segments : np.ndarray [N, T, D]
        Padded segment embeddings.
    counts : np.ndarray [N], optional
        Real segments per clip (default all ``T``).
    meta : StoreMeta
    """

    def __init__(self, keys: Sequence[str], segments: np.ndarray, *, meta: StoreMeta, counts=None):
        segments = np.asarray(segments, dtype=np.float32)
        if segments.ndim != 3 or segments.shape[0] != len(keys) or segments.shape[2] != meta.dim:
            raise ParameterError(
                f"segments must be [N={len(keys)}, T, D={meta.dim}], got {segments.shape}"
            )
        self.keys = list(keys)
        self._row = {k: i for i, k in enumerate(self.keys)}
        if len(self._row) != len(self.keys):
            raise ParameterError("duplicate keys in a memory store")
        self.segments = segments
        n, t, _ = segments.shape
        self.counts = np.full(n, t, dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
        if self.counts.shape != (n,) or self.counts.min(initial=1) < 1 or self.counts.max(initial=0) > t:
            raise ParameterError(f"counts must be [N] in 1..{t}")
        self.durations = self.counts * float(meta.hop)
        self.meta = meta
        self.failures: dict[str, str] = {}
        self.path = "<memory>"

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: object) -> bool:
        return key in self._row

    def index_of(self, keys: Sequence[str]) -> np.ndarray:
        missing = [k for k in keys if k not in self._row]
        if missing:
            raise StoreError(f"{len(missing)} of {len(keys)} key(s) are not in store {self.path}: {name_some(missing)}")
        return np.array([self._row[k] for k in keys], dtype=np.int64)

    def get(self, key: str) -> np.ndarray:
        i = self.index_of([key])[0]
        return self.segments[i, : self.counts[i]].copy()

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(rows, dtype=np.int64)
        counts = self.counts[rows]
        t = int(counts.max(initial=1))
        x = self.segments[rows, :t].copy()
        mask = np.arange(t)[None, :] < counts[:, None]
        x[~mask] = 0.0
        return x, mask

    def check_compatible(self, identity: dict, *, what: str = "model") -> None:
        problem = identity_mismatch(self.meta.identity(), identity)
        if problem:
            raise StoreError(f"store {self.path} {problem} ({what})")

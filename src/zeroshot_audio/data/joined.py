"""Two stores of the same clips read as one: their segment vectors side by side.

A model anchored on YAMNet's class scores reads, per segment, YAMNet's embedding and then its logits (the
``yamnet+logits`` embedder). A dataset embedded with ``yamnet`` and with ``yamnet-logits`` already holds both:
``JoinedStore(open_store(".../yamnet-hop0.96"), open_store(".../yamnet-logits-hop0.96"))`` reads them as the
``yamnet+logits`` store they make together, without embedding again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._errors import StoreError

__all__ = ["JoinedStore", "joined_name"]

#: Embedder names of two stores -> the embedder whose vectors they make side by side.
_JOINED = {("yamnet", "yamnet-logits"): "yamnet+logits"}


def joined_name(first: str, second: str) -> str:
    """The embedder name of ``first`` and ``second`` side by side (``yamnet`` + ``yamnet-logits`` ->
    ``yamnet+logits``)."""
    return _JOINED.get((first, second), f"{first}+{second}")


class JoinedStore:
    """The clips of ``first`` with, per segment, ``first``'s vector then ``second``'s (read like a store).

    Rows and keys are ``first``'s; every clip of ``first`` must be in ``second`` with the same number of
    segments, and both must be made with the same hop and embedder version, or a :class:`StoreError` names
    what differs.
    """

    def __init__(self, first: Any, second: Any):
        a, b = first.meta, second.meta
        if abs(float(a.hop) - float(b.hop)) > 1e-6 or a.embedder_version != b.embedder_version:
            raise StoreError(f"stores {first.path} and {second.path} were not made by the same embedder run "
                             f"(hop {a.hop} / {b.hop}, version {a.embedder_version} / {b.embedder_version})")
        self.first, self.second = first, second
        self.keys = list(first.keys)
        missing = [k for k in self.keys if k not in second]
        if missing:
            raise StoreError(f"store {second.path} lacks {len(missing)} clip(s) of {first.path}, e.g. {missing[0]!r}")
        self._second_row = second.index_of(self.keys)
        if not np.array_equal(np.asarray(first.counts), np.asarray(second.counts)[self._second_row]):
            raise StoreError(f"stores {first.path} and {second.path} hold different segment counts for some clips")
        self.path = first.path
        self.counts = first.counts
        self.durations = first.durations
        self.failures = {**getattr(second, "failures", {}), **getattr(first, "failures", {})}
        self.meta = dataclasses.replace(a, embedder=joined_name(a.embedder, b.embedder), dim=int(a.dim) + int(b.dim))

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: object) -> bool:
        return key in self.first

    def __repr__(self) -> str:
        return f"JoinedStore({self.first!r}, {self.second!r})"

    def index_of(self, keys: Sequence[str]) -> np.ndarray:
        return self.first.index_of(keys)

    def batch(self, rows: np.ndarray | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(x [B, T, Da + Db], mask [B, T])`` of the clips at ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        x1, m1 = self.first.batch(rows)
        x2, _ = self.second.batch(self._second_row[rows])
        return np.concatenate([np.asarray(x1, np.float32), np.asarray(x2, np.float32)], axis=2), m1

    def check_compatible(self, identity: dict[str, Any], *, what: str = "model") -> None:
        from ._store_format import _describe, _identity_differs

        mine = self.meta.identity()
        if _identity_differs(mine, identity):
            raise StoreError(f"stores {self.first.path} + {self.second.path} make {_describe(mine)} but the {what} "
                             f"expects {_describe(identity)}")

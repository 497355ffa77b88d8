"""Dataset directories (:mod:`.dataset`) and embedding stores (:mod:`.store`)."""

from __future__ import annotations

from .dataset import SPLITS, Dataset, Event, read_class_list, read_dataset, write_dataset
from .store import STORE_FORMAT_VERSION, EmbeddingStore, StoreMeta, StoreWriter, identity_mismatch, open_store

__all__ = [
    "SPLITS",
    "Dataset",
    "Event",
    "read_dataset",
    "read_class_list",
    "write_dataset",
    "STORE_FORMAT_VERSION",
    "EmbeddingStore",
    "StoreMeta",
    "StoreWriter",
    "open_store",
    "identity_mismatch",
]

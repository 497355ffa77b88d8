"""zeroshot-audio: multi-label zero-shot audio tagging with temporal attention.

Tag audio with any text labels, including labels no model was trained on, and see when each is heard.
The public names below are imported on first use, so ``import zeroshot_audio`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # tagging
    "load_model": ".tagging",
    "available_models": ".tagging",
    "Tagger": ".tagging",
    "TagResult": ".tagging",
    "LabelResult": ".tagging",
    "EventOptions": ".events",
    "get_writer": ".writers",
    # audio and embedders
    "load_audio": ".audio",
    "get_embedder": ".embedders",
    "available_embedders": ".embedders",
    # errors
    "ZsaError": "._errors",
    "ParameterError": "._errors",
    "DataError": "._errors",
    "StoreError": "._errors",
    "CheckpointError": "._errors",
    "AudioError": "._errors",
    "MissingDependencyError": "._errors",
    # data
    "Dataset": ".data.dataset",
    "read_dataset": ".data.dataset",
    "write_dataset": ".data.dataset",
    "EmbeddingStore": ".data.store",
    "StoreWriter": ".data.store",
    "StoreMeta": ".data.store",
    "open_store": ".data.store",
    "MemoryStore": ".data.memstore",
    "make_synthetic": ".data.synthetic",
    # labels
    "LabelEncoder": ".text",
    "get_label_encoder": ".text",
    "available_label_encoders": ".text",
    "class_matrix": ".text",
    # model, training, evaluation
    "ModelConfig": ".model",
    "NumpyModel": ".model",
    "ZeroShotModel": ".train.network",
    "TrainOptions": ".train.options",
    "ClipSet": ".train.recipes",
    "fit": ".train.fit",
    "predict": ".train.fit",
    "TrainedModel": ".checkpoint",
    "ProtocolOptions": ".evaluation.protocol",
    "run_protocol": ".evaluation.protocol",
    "evaluate_scores": ".evaluation.metrics",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zeroshot_audio' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover
    from ._errors import (
        AudioError,
        CheckpointError,
        DataError,
        MissingDependencyError,
        ParameterError,
        StoreError,
        ZsaError,
    )
    from .audio import load_audio
    from .checkpoint import TrainedModel
    from .data.dataset import Dataset, read_dataset, write_dataset
    from .data.memstore import MemoryStore
    from .data.store import EmbeddingStore, StoreMeta, StoreWriter, open_store
    from .data.synthetic import make_synthetic
    from .embedders import available_embedders, get_embedder
    from .evaluation.metrics import evaluate_scores
    from .evaluation.protocol import ProtocolOptions, run_protocol
    from .events import EventOptions
    from .model import ModelConfig, NumpyModel
    from .tagging import LabelResult, Tagger, TagResult, available_models, load_model
    from .text import LabelEncoder, available_label_encoders, class_matrix, get_label_encoder
    from .train.fit import fit, predict
    from .train.network import ZeroShotModel
    from .train.options import TrainOptions
    from .train.recipes import ClipSet
    from .writers import get_writer

"""Model directories: a trained model that describes itself.

A model directory holds ``config.json`` (format version, model config, class list, the identity of the
embedder whose segment embeddings it reads and of the label encoder whose space its classes live in,
training information), ``weights.pt`` (a plain state dict, loaded with ``weights_only=True``) and
``class_embeddings.npy`` (the label embeddings of its classes, ``[C, Ds]``). It is written to a temporary
directory and renamed, so a crash never leaves a partial model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import CheckpointError, ParameterError, reads_user_data
from ._io import atomic_dir
from .model import ModelConfig, ZeroShotModel

__all__ = ["TrainedModel", "CHECKPOINT_FORMAT"]

#: Bumped when the layout of a model directory changes incompatibly.
CHECKPOINT_FORMAT = 1


@dataclass
class TrainedModel:
    """A fitted model with everything needed to use it on new data.

    Attributes
    ----------
    model : ZeroShotModel
    classes : list of str
        The classes it was trained on, in the order of ``class_embeddings``.
    class_embeddings : np.ndarray [C, Ds]
    embedder : dict
        Identity of the segment embedder (``embedder``, ``embedder_version``, ``dim``, ``hop``).
    label_encoder : dict
        Identity of the label encoder (``name``, ``version``, ``dim``) and how class texts were made
        (``text``, ``templates``).
    info : dict
        Training options, history and anything else worth keeping.
    """

    model: ZeroShotModel
    classes: list[str]
    class_embeddings: np.ndarray
    embedder: dict[str, Any]
    label_encoder: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.class_embeddings = np.asarray(self.class_embeddings, dtype=np.float32)
        if self.class_embeddings.shape != (len(self.classes), self.model.config.text_dim):
            raise ParameterError(
                f"class_embeddings must be [{len(self.classes)}, {self.model.config.text_dim}], "
                f"got {self.class_embeddings.shape}"
            )

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model directory at ``path`` (atomically replacing an existing model directory; any other
        non-empty directory is refused)."""
        import torch

        path = Path(path)
        if path.is_dir() and any(path.iterdir()) and not (path / "config.json").is_file():
            raise CheckpointError(f"{path}: exists and is not a model directory (refusing to replace it)")
        doc = {
            "format": CHECKPOINT_FORMAT,
            "model_config": self.config.to_dict(),
            "classes": list(self.classes),
            "embedder": self.embedder,
            "label_encoder": self.label_encoder,
            "info": self.info,
        }
        with atomic_dir(path) as tmp:
            torch.save({k: v.detach().cpu() for k, v in self.model.state_dict().items()}, tmp / "weights.pt")
            np.save(tmp / "class_embeddings.npy", self.class_embeddings)
            (tmp / "config.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    @reads_user_data("a model directory", CheckpointError)
    def load(cls, path: str | os.PathLike[str]) -> TrainedModel:
        """Read a model directory written by :meth:`save`."""
        import torch

        path = Path(path)
        if not path.is_dir():
            raise CheckpointError(f"{path}: not a model directory (it does not exist or is not a directory)")
        for name in ("config.json", "weights.pt", "class_embeddings.npy"):
            if not (path / name).is_file():
                raise CheckpointError(f"{path}: incomplete model directory, {name} is missing")
        try:
            doc = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{path / 'config.json'}: unreadable ({err})") from None
        if doc.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{path}: model format {doc.get('format')!r}, this version of zeroshot-audio reads format "
                f"{CHECKPOINT_FORMAT}"
            )
        try:
            config = ModelConfig.from_dict(doc["model_config"])
            model = ZeroShotModel(config)
            state = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
            model.load_state_dict(state)
            class_emb = np.load(path / "class_embeddings.npy", allow_pickle=False)
            trained = cls(
                model=model.eval(),
                classes=list(doc["classes"]),
                class_embeddings=class_emb,
                embedder=dict(doc["embedder"]),
                label_encoder=dict(doc["label_encoder"]),
                info=dict(doc.get("info", {})),
            )
        except (KeyError, RuntimeError, ValueError, OSError) as err:
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise CheckpointError(f"{path}: damaged model directory ({msg})") from None
        return trained

    def check_store(self, store: Any, *, name: str = "model") -> None:
        """Refuse a store made by another embedder than the one this model was trained on."""
        from ._errors import StoreError

        try:
            store.check_compatible(self.embedder, what=name)
        except StoreError as err:
            raise CheckpointError(str(err)) from None

    def label_embeddings(self, labels: list[str], *, descriptions: dict[str, str] | None = None) -> np.ndarray:
        """``[L, Ds]`` embeddings of ``labels`` in this model's label space.

        Classes the model was trained on use their saved embeddings; when any label is new, all are encoded
        with the label encoder the model was trained with (rebuilt from its identity, same text and template
        settings), so that every label is represented the same way.
        """
        known = dict(zip(self.classes, self.class_embeddings))
        if all(x in known for x in labels):
            return np.stack([known[x] for x in labels]) if labels else self.class_embeddings[:0]
        from .labels import class_matrix, label_encoder_from_identity

        enc = self.label_encoder
        return class_matrix(label_encoder_from_identity(enc), labels, descriptions=descriptions,
                            text=enc.get("text", "name"), templates=enc.get("templates", "none"))

    def scores(self, store: Any, rows: np.ndarray, class_emb: np.ndarray | None = None, **kw: Any) -> np.ndarray:
        """Clip scores ``[N, C]`` of store rows for ``class_emb`` (default: the model's own classes)."""
        from .training import predict

        emb = self.class_embeddings if class_emb is None else class_emb
        return predict(self.model, store, rows, emb, **kw)

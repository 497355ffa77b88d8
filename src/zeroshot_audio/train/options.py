"""Optimisation settings of training (:class:`TrainOptions`), importable without torch.

The ``zsa`` command derives its training flags from this dataclass (names, types, defaults, choices and the
help of the Parameters section below), so every option here is reachable from the command line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .._errors import ParameterError

__all__ = ["TrainOptions", "OPTIMIZERS", "LOSS_NAMES", "DEVICES"]

OPTIMIZERS = ("adamw", "sgd")
#: Names of the training losses (the functions are in :data:`zeroshot_audio.train.losses.LOSSES`, which needs torch).
LOSS_NAMES = ("rank_hinge", "bce")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainOptions:
    """Optimisation settings, validated on creation.

    Parameters
    ----------
    epochs : int
        Upper bound on passes over the training clips.
    batch_size : int
        Clips per batch.
    lr : float
        Learning rate.
    weight_decay : float
        Weight decay.
    optimizer : {"adamw", "sgd"}
        The optimiser.
    momentum : float
        SGD momentum.
    loss : {"rank_hinge", "bce"}
        Rank-weighted multi-label hinge, or binary cross-entropy.
    margin : float
        Hinge margin ``Delta`` of the rank_hinge loss.
    patience : int
        Epochs without a better validation mAP before stopping (0 = never stop early).
    seed : int
        Seeds initialisation and batch order: equal seeds give equal models on one device.
    device : {"auto", "cpu", "cuda"}
        Where to train (auto: CUDA when available).
    normalize : bool
        Standardise audio embedding dimensions with training statistics.
    """

    epochs: int = 60
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-2
    optimizer: str = "adamw"
    momentum: float = 0.9
    loss: str = "rank_hinge"
    margin: float = 1.0
    patience: int = 10
    seed: int = 0
    device: str = "auto"
    normalize: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ParameterError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.patience < 0:
            raise ParameterError(f"patience must be >= 0, got {self.patience}")
        if not self.lr > 0:
            raise ParameterError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ParameterError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.optimizer not in OPTIMIZERS:
            raise ParameterError(f"optimizer must be 'adamw' or 'sgd', got {self.optimizer!r}")
        if self.loss not in LOSS_NAMES:
            raise ParameterError(f"loss must be one of {', '.join(LOSS_NAMES)}, got {self.loss!r}")
        if self.device not in DEVICES:
            raise ParameterError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if not 0 <= self.momentum < 1:
            raise ParameterError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.margin < 0:
            raise ParameterError(f"margin must be >= 0, got {self.margin}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

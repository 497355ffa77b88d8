"""The zero-shot model: projections, segment compatibility, and temporal pooling.

Shapes: ``x [B, T, Da]`` segment embeddings, ``mask [B, T]`` (True = real segment, False = padding),
``class_emb [C, Ds]`` label embeddings. Outputs ``clip_scores [B, C]`` and, on request,
``segment_scores [B, T, C]`` and ``attention [B, T, C]`` (sums to 1 over the real segments of a clip).

Attention pooling (the method):

- ``s_t(y) = theta(x_t) . psi(phi(y))``
- ``e_t(y) = theta_a(x_t) . psi_a(phi(y))`` (``attention="separate"``) or ``s_t(y) / tau`` (``"shared"``)
- ``alpha_t(y) = softmax_t e_t(y)`` over the real segments, per class; ``F(y) = sum_t alpha_t(y) s_t(y)``

Mean pooling (the paper's baseline) projects the mean of the segment embeddings; max pooling takes the
best segment score. All classes are scored at once by matrix products; there is no loop over classes or
segments. ``psi_a`` starts at zero, so attention starts uniform: the model begins as an average of segment
scores and learns where to deviate.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from ._errors import ParameterError

__all__ = ["ModelConfig", "ModelOutput", "ZeroShotModel", "POOLINGS", "PROJECTIONS", "ATTENTIONS"]

POOLINGS = ("attention", "mean", "max")
PROJECTIONS = ("linear", "mlp")
ATTENTIONS = ("separate", "shared")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a :class:`ZeroShotModel`, saved beside its weights.

    Parameters
    ----------
    audio_dim, text_dim : int
        ``Da`` of the segment embeddings and ``Ds`` of the label embeddings.
    dim : int
        ``D`` of the shared space.
    projection : {"linear", "mlp"}
        ``theta``: one linear map, or Linear-tanh-Linear with ``hidden`` units.
    hidden : int
        Hidden width of the MLP projection.
    pooling : {"attention", "mean", "max"}
    attention : {"separate", "shared"}
        Attention logits from their own projection pair, or the segment scores divided by ``temperature``.
    temperature : float
        ``tau`` of shared attention.
    dropout : float
        Dropout on the projected segment embeddings during training.
    text_projection : {"linear", "none"}
        ``psi``: a learned linear map, or none (``psi`` = identity, ``dim`` = ``text_dim``): the audio is then
        projected straight into the label-embedding space, whose geometry is kept as it is.
    """

    audio_dim: int
    text_dim: int
    dim: int = 128
    projection: str = "linear"
    hidden: int = 512
    pooling: str = "attention"
    attention: str = "separate"
    temperature: float = 1.0
    dropout: float = 0.0
    text_projection: str = "linear"

    def __post_init__(self) -> None:
        for name in ("audio_dim", "text_dim", "dim", "hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"{name} must be a positive integer, got {value!r}")
        if self.pooling not in POOLINGS:
            raise ParameterError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.projection not in PROJECTIONS:
            raise ParameterError(f"projection must be one of {', '.join(PROJECTIONS)}, got {self.projection!r}")
        if self.attention not in ATTENTIONS:
            raise ParameterError(f"attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}")
        for name in ("temperature", "dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ParameterError(f"{name} must be a finite number, got {value!r}")
        if not self.temperature > 0:
            raise ParameterError(f"temperature must be > 0, got {self.temperature!r}")
        if self.text_projection not in ("linear", "none"):
            raise ParameterError(f"text_projection must be 'linear' or 'none', got {self.text_projection!r}")
        if self.text_projection == "none" and self.dim != self.text_dim:
            raise ParameterError(f"text_projection 'none' needs dim == text_dim ({self.text_dim}), got dim {self.dim}")
        if not 0 <= self.dropout < 1:
            raise ParameterError(f"dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def separate_attention(self) -> bool:
        return self.pooling == "attention" and self.attention == "separate"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(d, dict):
            raise ParameterError(f"a model config must be a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - known)
        if unknown:
            raise ParameterError(f"unknown model config field(s): {', '.join(unknown)}")
        required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
        missing = sorted(required - set(d))
        if missing:
            raise ParameterError(f"missing model config field(s): {', '.join(missing)}")
        return cls(**d)


class ModelOutput(NamedTuple):
    clip_scores: torch.Tensor  # [B, C]
    segment_scores: torch.Tensor | None  # [B, T, C]
    attention: torch.Tensor | None  # [B, T, C]


class ZeroShotModel(nn.Module):
    """Scores every (clip, class) pair through the shared space; see the module docstring."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        branches = 2 if config.separate_attention else 1
        d = config.dim
        if config.projection == "linear":
            self.audio_proj: nn.Module = nn.Linear(config.audio_dim, d * branches)
        else:
            self.audio_proj = nn.Sequential(
                nn.Linear(config.audio_dim, config.hidden), nn.Tanh(), nn.Linear(config.hidden, d * branches)
            )
        n_text = d * branches if config.text_projection == "linear" else d * (branches - 1)
        self.text_proj = nn.Linear(config.text_dim, n_text) if n_text else None
        if branches == 2:  # psi_a = 0: uniform attention at the start
            with torch.no_grad():
                self.text_proj.weight[n_text - d :].zero_()
                self.text_proj.bias[n_text - d :].zero_()
        self.dropout = nn.Dropout(config.dropout)
        # per-dimension standardisation of the audio embeddings, fitted on training data
        self.register_buffer("audio_mean", torch.zeros(config.audio_dim))
        self.register_buffer("audio_scale", torch.ones(config.audio_dim))

    @torch.no_grad()
    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Standardise inputs with these per-dimension statistics ``[Da]`` (zero std is treated as 1)."""
        std = torch.as_tensor(std, dtype=torch.float32)
        self.audio_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.audio_scale.copy_(1.0 / torch.where(std > 1e-6, std, torch.ones_like(std)))

    def project_audio(self, x: torch.Tensor) -> torch.Tensor:
        """``theta`` (and ``theta_a``) of standardised inputs: ``[..., Da] -> [..., D * branches]``.

        The standardisation is folded into the first linear layer, so it costs nothing per segment.
        """
        if isinstance(self.audio_proj, nn.Linear):
            first, rest = self.audio_proj, None
        else:
            first, rest = self.audio_proj[0], self.audio_proj[1:]
        weight = first.weight * self.audio_scale  # [out, Da]
        bias = first.bias - weight @ self.audio_mean
        h = nn.functional.linear(x, weight, bias)
        return h if rest is None else rest(h)

    def encode_classes(self, class_emb: torch.Tensor) -> torch.Tensor:
        """``psi(phi)`` (and ``psi_a(phi)``) for every class: ``[C, D * branches]``."""
        if self.config.text_projection == "none":
            return class_emb if self.text_proj is None else torch.cat([class_emb, self.text_proj(class_emb)], dim=1)
        return self.text_proj(class_emb)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        class_emb: torch.Tensor,
        *,
        return_segments: bool = False,
    ) -> ModelOutput:
        """Score clips against classes.

        Parameters
        ----------
        x : torch.Tensor [B, T, Da]
        mask : torch.Tensor [B, T] bool or None
            None means every segment is real.
        class_emb : torch.Tensor [C, Ds]
        return_segments : bool
            Also return ``segment_scores`` and ``attention`` (for timelines and event detection).
        """
        cfg = self.config
        if x.ndim != 3 or x.shape[-1] != cfg.audio_dim:
            raise ParameterError(f"x must be [B, T, {cfg.audio_dim}], got {tuple(x.shape)}")
        if class_emb.ndim != 2 or class_emb.shape[-1] != cfg.text_dim:
            raise ParameterError(f"class_emb must be [C, {cfg.text_dim}], got {tuple(class_emb.shape)}")
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        k = self.encode_classes(class_emb)  # [C, D*branches]
        d = cfg.dim
        maskf = mask.to(x.dtype).unsqueeze(-1)  # [B, T, 1]
        n_real = maskf.sum(dim=1).clamp(min=1.0)  # [B, 1]

        if cfg.pooling == "mean" and not return_segments:
            pooled = (x * maskf).sum(dim=1) / n_real  # [B, Da]
            clip = self.dropout(self.project_audio(pooled)) @ k[:, :d].T
            return ModelOutput(clip, None, None)

        q = self.dropout(self.project_audio(x))  # [B, T, D*branches]
        seg = torch.matmul(q[..., :d], k[:, :d].T)  # [B, T, C]
        pad = ~mask.unsqueeze(-1)  # [B, T, 1]
        padded = not bool(mask.all())
        if cfg.pooling == "mean":
            pooled = (x * maskf).sum(dim=1) / n_real
            clip = self.project_audio(pooled) @ k[:, :d].T
            att = (maskf / n_real.unsqueeze(1)).expand_as(seg)
        elif cfg.pooling == "max":
            masked = seg.masked_fill(pad, float("-inf")) if padded else seg
            clip = masked.max(dim=1).values
            att = torch.zeros_like(seg).scatter_(1, masked.argmax(dim=1, keepdim=True), 1.0)
        else:
            if cfg.attention == "separate":
                logits = torch.matmul(q[..., d:], k[:, d:].T)
            else:
                logits = seg / cfg.temperature
            att = torch.softmax(logits.masked_fill(pad, float("-inf")) if padded else logits, dim=1)
            clip = (att * seg).sum(dim=1)
        if return_segments:
            return ModelOutput(clip, seg, att)
        return ModelOutput(clip, None, None)

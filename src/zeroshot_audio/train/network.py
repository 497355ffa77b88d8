"""The torch form of the zero-shot model, for training (needs the ``[train]`` extra).

:class:`ZeroShotModel` is the network of :mod:`zeroshot_audio.model` as a ``torch.nn.Module``: the same
parameters (a state dict whose names are the keys of ``weights.npz``), the same forward, with gradients and
dropout. Inference does not need it: :class:`zeroshot_audio.model.NumpyModel` runs the same forward in numpy.
:func:`state_dict_to_numpy` and :func:`numpy_to_state_dict` convert between the two.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .._errors import ParameterError
from ..model import ANCHOR_TEMPERATURE, ModelConfig

__all__ = ["ZeroShotModel", "ModelOutput", "state_dict_to_numpy", "numpy_to_state_dict"]


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
        if config.anchored:  # psi = 0: the residual starts at zero, the model at the semantic transfer
            with torch.no_grad():
                self.text_proj.weight.zero_()
                self.text_proj.bias.zero_()
            self.register_buffer("anchor_text", torch.zeros(config.anchor_dim, config.text_dim))
            self.anchor_log_temperature = nn.Parameter(torch.full((1,), math.log(ANCHOR_TEMPERATURE)))
            self.anchor_scale = nn.Parameter(torch.ones(1))
            self.anchor_bias = nn.Parameter(torch.zeros(1))
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

    def anchor_weights(self, class_emb: torch.Tensor) -> torch.Tensor:
        """``w(y) [C, K]``: softmax over the ``anchor_top_k`` most cosine-similar anchor classes (see
        :meth:`zeroshot_audio.model.NumpyModel.anchor_weights`)."""
        e = nn.functional.normalize(class_emb, dim=1)
        sim = e @ nn.functional.normalize(self.anchor_text, dim=1).T  # [C, K]
        kth = sim.topk(self.config.anchor_top_k, dim=1).values[:, -1:]
        z = torch.where(sim >= kth, sim / self.anchor_log_temperature.exp(), torch.full_like(sim, float("-inf")))
        return torch.softmax(z, dim=1)

    def anchor_scores(self, logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``scale * logit(sigmoid(logits) @ weights.T) + bias``: ``[..., K]`` -> ``[..., C]``."""
        sem = torch.matmul(torch.sigmoid(logits.clamp(-60, 60)), weights.T).clamp(1e-6, 1 - 1e-6)
        return self.anchor_scale * (torch.log(sem) - torch.log1p(-sem)) + self.anchor_bias

    def project_audio(self, x: torch.Tensor) -> torch.Tensor:
        """``theta`` (and ``theta_a``) of standardised inputs: ``[..., Da] -> [..., D * branches]``.

        The standardisation is folded into the first linear layer, so it costs nothing per segment. An anchored
        model's input ``[..., Da + K]`` is read up to ``Da``.
        """
        x = x[..., : self.config.audio_dim]
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
        if x.ndim != 3 or x.shape[-1] != cfg.input_dim:
            raise ParameterError(f"x must be [B, T, {cfg.input_dim}], got {tuple(x.shape)}")
        if class_emb.ndim != 2 or class_emb.shape[-1] != cfg.text_dim:
            raise ParameterError(f"class_emb must be [C, {cfg.text_dim}], got {tuple(class_emb.shape)}")
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        k = self.encode_classes(class_emb)  # [C, D*branches]
        d = cfg.dim
        maskf = mask.to(x.dtype).unsqueeze(-1)  # [B, T, 1]
        n_real = maskf.sum(dim=1).clamp(min=1.0)  # [B, 1]

        if cfg.pooling == "mean" and not return_segments and not cfg.anchored:
            pooled = (x * maskf).sum(dim=1) / n_real  # [B, Da]
            clip = self.dropout(self.project_audio(pooled)) @ k[:, :d].T
            return ModelOutput(clip, None, None)

        q = self.dropout(self.project_audio(x))  # [B, T, D*branches]
        seg = torch.matmul(q[..., :d], k[:, :d].T)  # [B, T, C]
        if cfg.anchored:
            seg = seg + self.anchor_scores(x[..., cfg.audio_dim :], self.anchor_weights(class_emb))
        pad = ~mask.unsqueeze(-1)  # [B, T, 1]
        padded = not bool(mask.all())
        if cfg.pooling == "mean" and cfg.anchored:
            att = (maskf / n_real.unsqueeze(1)).expand_as(seg)
            clip = (att * seg).sum(dim=1)
        elif cfg.pooling == "mean":
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


def state_dict_to_numpy(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """A state dict as float32 numpy arrays (detached, on the CPU), keyed by the same names."""
    return {k: v.detach().cpu().to(torch.float32).numpy().copy() for k, v in state.items()}


def numpy_to_state_dict(params: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Numpy parameters (e.g. read from ``weights.npz``) as a state dict of float32 tensors."""
    return {k: torch.from_numpy(np.array(v, dtype=np.float32, copy=True)) for k, v in params.items()}

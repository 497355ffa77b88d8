"""Training losses on clip scores ``scores [B, C]`` against multi-hot ``targets [B, C]``.

The default is the rank-weighted multi-label hinge (WARP-style) of the method: for clip ``n``, positive
``p`` and negative ``q``, ``h = max(0, margin + F(q) - F(p))``; with ``r_p`` the number of negatives that
violate the margin for ``p`` and ``beta(r) = (sum_{i<=r} 1/i) / r``, the clip loss is the mean over its
positives of ``beta(r_p) * sum_q h``, and the batch loss the mean over clips that have a positive.

It is computed without forming the ``[B, C, C]`` pair tensor: only the ``K`` positive labels of the batch
are paired with all classes, ``[K, C]``, which for multi-label data (a few positives per clip) is close to
the cost of the scores themselves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._errors import ParameterError

__all__ = ["rank_hinge_loss", "rank_hinge_loss_pairwise", "bce_loss", "LOSSES", "get_loss"]


def _rank_weight(r: torch.Tensor) -> torch.Tensor:
    """``beta(r) = H_r / r`` with ``beta(0) = 0``, for integer-valued float ``r``."""
    # H_r = digamma(r + 1) + Euler-Mascheroni constant
    harmonic = torch.special.digamma(r + 1.0) + 0.5772156649015329
    return torch.where(r > 0, harmonic / r.clamp(min=1.0), torch.zeros_like(r))


def rank_hinge_loss(scores: torch.Tensor, targets: torch.Tensor, *, margin: float = 1.0) -> torch.Tensor:
    """Rank-weighted multi-label hinge loss.

    Parameters
    ----------
    scores : torch.Tensor [B, C]
        Clip scores ``F``.
    targets : torch.Tensor [B, C]
        Multi-hot labels (bool or 0/1).
    margin : float
        The margin ``Delta``.

    Returns
    -------
    torch.Tensor
        Scalar loss; 0 when no clip of the batch has a positive.
    """
    if scores.shape != targets.shape or scores.ndim != 2:
        raise ParameterError(f"scores and targets must both be [B, C], got {tuple(scores.shape)} "
                             f"and {tuple(targets.shape)}")
    pos = targets.bool()
    n_pos = pos.sum(dim=1)
    has_pos = n_pos > 0
    if not bool(has_pos.any()):
        return scores.sum() * 0.0
    # only the (clip, positive) pairs that exist are formed: [K, C] with K = number of positive labels
    clip_idx, class_idx = pos.nonzero(as_tuple=True)
    f_pos = scores[clip_idx, class_idx]  # [K]
    rows = scores[clip_idx]  # [K, C]
    negatives = ~pos[clip_idx]  # [K, C]
    hinge = (margin + rows - f_pos[:, None]).clamp(min=0.0) * negatives
    n_violators = (hinge > 0).sum(dim=1).to(scores.dtype)  # r_p
    per_pos = _rank_weight(n_violators) * hinge.sum(dim=1)
    per_clip = torch.zeros(scores.shape[0], dtype=scores.dtype, device=scores.device).index_add(0, clip_idx, per_pos)
    return (per_clip[has_pos] / n_pos[has_pos].to(scores.dtype)).mean()


def rank_hinge_loss_pairwise(scores: torch.Tensor, targets: torch.Tensor, *, margin: float = 1.0) -> torch.Tensor:
    """The same loss computed from the explicit ``[B, C, C]`` pair tensor (reference for tests)."""
    pos = targets.bool()
    neg = ~pos
    hinge = (margin + scores[:, None, :] - scores[:, :, None]).clamp(min=0.0)  # [B, p, q]
    pair = pos[:, :, None] & neg[:, None, :]
    hinge = hinge * pair
    r = ((hinge > 0) & pair).sum(dim=2).to(scores.dtype)
    per_pos = _rank_weight(r) * hinge.sum(dim=2) * pos
    n_pos = pos.sum(dim=1)
    has_pos = n_pos > 0
    if not bool(has_pos.any()):
        return scores.sum() * 0.0
    return (per_pos.sum(dim=1)[has_pos] / n_pos[has_pos].to(scores.dtype)).mean()


def bce_loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on ``sigmoid(F)``, averaged over clips and classes (ablation)."""
    return F.binary_cross_entropy_with_logits(scores, targets.to(scores.dtype))


LOSSES = {"rank_hinge": rank_hinge_loss, "bce": bce_loss}


def get_loss(name: str):
    """The loss function registered under ``name`` ("rank_hinge" or "bce")."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ParameterError(f"unknown loss {name!r} (expected one of: {', '.join(LOSSES)})") from None

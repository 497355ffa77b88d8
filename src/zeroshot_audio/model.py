"""The zero-shot model: projections, segment compatibility, and temporal pooling.

Shapes: ``x [B, T, Da]`` segment embeddings, ``mask [B, T]`` (True = real segment, False = padding),
``class_emb [C, Ds]`` label embeddings. Outputs ``clip_scores [B, C]`` and, on request,
``segment_scores [B, T, C]`` and ``attention [B, T, C]`` (sums to 1 over the real segments of a clip).

Attention pooling (the method):

- ``s_t(y) = theta(x_t) . psi(phi(y))``
- ``e_t(y) = theta_a(x_t) . psi_a(phi(y))`` (``attention="separate"``) or ``s_t(y) / tau`` (``"shared"``)
- ``alpha_t(y) = softmax_t e_t(y)`` over the real segments, per class; ``F(y) = sum_t alpha_t(y) s_t(y)``

Anchored on YAMNet's class scores (``anchor_dim > 0``): the input carries, after the ``audio_dim`` embedding
dimensions, the ``anchor_dim`` logits of an audio classifier (YAMNet's 521 AudioSet classes), and the segment
score adds a semantic term to the compatibility, which then acts as a learned residual:

- ``w(y) = softmax_k(cos(phi(y), a_k) / tau_s)`` over the ``anchor_top_k`` anchor classes ``a_k`` (their label
  texts, embedded) most similar to the label, zero elsewhere
- ``s_t(y) = scale * logit(sum_k w_k(y) sigmoid(l_t,k)) + bias + theta(x_t) . psi(phi(y))``

``psi`` starts at zero, so an untrained anchored model *is* the training-free semantic transfer of the
classifier's scores, pooled over time; attention is then ``softmax_t(s_t(y) / temperature)`` (shared).

Mean pooling (the paper's baseline) projects the mean of the segment embeddings; max pooling takes the
best segment score. All classes are scored at once by matrix products; there is no loop over classes or
segments. ``psi_a`` starts at zero, so attention starts uniform: the model begins as an average of segment
scores and learns where to deviate.

This module is the inference core: :class:`NumpyModel` runs the forward in numpy from the parameters of a
model directory (``weights.npz``). The torch module that is trained, with the same parameter names and the
same forward, is :class:`zeroshot_audio.train.network.ZeroShotModel` (needs the ``[train]`` extra).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

from ._errors import ParameterError
from ._math import sigmoid

__all__ = [
    "ModelConfig", "NumpyModel", "NumpyOutput", "parameter_shapes", "params_mismatch", "POOLINGS", "PROJECTIONS",
    "ATTENTIONS", "ANCHOR_TEMPERATURE", "untrained_anchored", "Adaptation", "Prototypes",
]

POOLINGS = ("attention", "mean", "max")
#: ``tau_s`` of an anchored model before training: the softmax over its most similar anchor classes.
ANCHOR_TEMPERATURE = 0.05
PROJECTIONS = ("linear", "mlp")
ATTENTIONS = ("separate", "shared")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the model (:class:`NumpyModel`, and ``ZeroShotModel`` in training), saved beside its weights.

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
        Attention logits from their own projection pair, or the segment scores divided by ``temperature``. The
        separate branch can learn to look where no label scores, e.g. at the digital-silence embedding that half
        the segments of scenes without a noise bed share, and then attends away from the sound; shared attention
        (with ``temperature`` 0.3) follows each label's own evidence (docs/attention.md).
    temperature : float
        ``tau`` of shared attention.
    dropout : float
        Dropout on the projected segment embeddings during training.
    text_projection : {"linear", "none"}
        ``psi``: a learned linear map, or none (``psi`` = identity, ``dim`` = ``text_dim``): the audio is then
        projected straight into the label-embedding space, whose geometry is kept as it is.
    anchor_dim : int
        0 (the paper's model), or ``K``: the input's last ``K`` dimensions are a classifier's logits (YAMNet's
        521 AudioSet classes, embedder ``yamnet+logits``) and the model is anchored on them (module docstring).
    anchor_top_k : int
        How many anchor classes, the most similar to a label's text, carry its semantic score.
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
    anchor_dim: int = 0
    anchor_top_k: int = 5

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
        for name in ("anchor_dim", "anchor_top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ParameterError(f"{name} must be an integer >= 0, got {value!r}")
        if self.anchored:
            if not 1 <= self.anchor_top_k <= self.anchor_dim:
                raise ParameterError(f"anchor_top_k must be in [1, anchor_dim={self.anchor_dim}], "
                                     f"got {self.anchor_top_k}")
            if self.separate_attention:
                raise ParameterError("an anchored model pools with shared attention (attention='shared'), "
                                     "not 'separate'")

    @property
    def anchored(self) -> bool:
        return self.anchor_dim > 0

    @property
    def input_dim(self) -> int:
        """Last dimension of the model's input: the embedding, then the anchor logits."""
        return self.audio_dim + self.anchor_dim

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



def parameter_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The parameters a model of ``config`` has: state-dict name -> shape (the arrays of ``weights.npz``)."""
    branches = 2 if config.separate_attention else 1
    out = config.dim * branches
    shapes: dict[str, tuple[int, ...]] = {"audio_mean": (config.audio_dim,), "audio_scale": (config.audio_dim,)}
    if config.projection == "linear":
        shapes.update({"audio_proj.weight": (out, config.audio_dim), "audio_proj.bias": (out,)})
    else:
        shapes.update({"audio_proj.0.weight": (config.hidden, config.audio_dim), "audio_proj.0.bias": (config.hidden,),
                       "audio_proj.2.weight": (out, config.hidden), "audio_proj.2.bias": (out,)})
    n_text = out if config.text_projection == "linear" else config.dim * (branches - 1)
    if n_text:
        shapes.update({"text_proj.weight": (n_text, config.text_dim), "text_proj.bias": (n_text,)})
    if config.anchored:
        shapes.update({"anchor_text": (config.anchor_dim, config.text_dim), "anchor_log_temperature": (1,),
                       "anchor_scale": (1,), "anchor_bias": (1,)})
    return shapes


class NumpyOutput(NamedTuple):
    """What :meth:`NumpyModel.forward` returns (float32 arrays)."""

    clip_scores: np.ndarray  # [B, C]
    segment_scores: np.ndarray | None  # [B, T, C]
    attention: np.ndarray | None  # [B, T, C]


class Prototypes(NamedTuple):
    """Classes given by example (:mod:`zeroshot_audio.examples`): a term combined with the segment scores.

    With ``e_t(c) = scale * cos(x_t, vectors_c) + bias``, ``x_t`` the segment's embedding (the input's first
    ``audio_dim`` dimensions), before pooling:

        ``s_t(c) <- (1 - mix_c) * s_t(c) + mix_c * e_t(c) + lift_c * max(0, e_t(c) - s_t(c))``

    ``mix_c = 1`` makes a class example-defined (its text is ignored); ``lift_c > 0`` lets the examples raise a
    segment's text score toward theirs, never lower it (a label with text and examples); zero in both leaves a
    class as its text makes it. ``lift`` None is zero for every class.
    """

    vectors: np.ndarray  # [C, Da], unit rows (zero where a class has no examples)
    mix: np.ndarray  # [C] in [0, 1]
    scale: float
    bias: float
    lift: np.ndarray | None = None  # [C] in [0, 1]


class SegmentSource(Protocol):
    """What scoring needs of a store: padded batches ``(x [B, T, Da], mask [B, T])`` of segment embeddings by row."""

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


#: Largest difference, per dimension, between a label embedding and an adapted label's own for it to be that label.
ADAPTED_MATCH_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Adaptation:
    """Per-label parameters fitted on example clips (``zsa adapt``, :func:`zeroshot_audio.train.adapt.adapt_model`).

    An adapted label ``y`` gets, on top of the model's segment score, a residual that is linear in the model's
    input ``x_t`` (YAMNet embedding and, for an anchored model, its logits):
    ``s'_t(y) = s_t(y) + weight[y] . x_t + bias[y]``; pooling and calibration are those of the model. A class
    whose label embedding is not (within :data:`ADAPTED_MATCH_TOLERANCE`) one of :attr:`label_embeddings` is
    scored exactly as without adaptation.

    Attributes
    ----------
    labels : tuple of str
        The adapted labels (cleaned text).
    label_embeddings : np.ndarray [A, Ds]
        Their label embeddings, as the model computes them: a class of the forward is matched to them.
    weight : np.ndarray [A, Din]
        The residual's weights over the model's input (``Din`` = ``ModelConfig.input_dim``).
    bias : np.ndarray [A]
    """

    labels: tuple[str, ...]
    label_embeddings: np.ndarray
    weight: np.ndarray
    bias: np.ndarray

    def __post_init__(self) -> None:
        a = len(self.labels)
        for name, ndim in (("label_embeddings", 2), ("weight", 2), ("bias", 1)):
            value = np.ascontiguousarray(getattr(self, name), dtype=np.float32)
            if value.ndim != ndim or value.shape[0] != a:
                raise ParameterError(f"adaptation: {name} must have {a} rows (one per label), got {value.shape}")
            if not np.isfinite(value).all():
                raise ParameterError(f"adaptation: {name} holds non-finite values (NaN or infinity)")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "labels", tuple(self.labels))

    def match(self, class_emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(columns, rows)``: the classes of ``class_emb [C, Ds]`` that are adapted labels, and which."""
        if not self.labels:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        e = np.asarray(class_emb, dtype=np.float32)
        dot = e @ self.label_embeddings.T  # [C, A]; equal unit vectors have a dot of 1
        sq = (e * e).sum(axis=1)[:, None] + (self.label_embeddings ** 2).sum(axis=1)[None] - 2 * dot
        cols, rows = np.nonzero(sq <= ADAPTED_MATCH_TOLERANCE ** 2 * e.shape[1])
        if cols.size:  # the candidates must agree in every dimension; one adapted label per class
            ok = np.abs(e[cols] - self.label_embeddings[rows]).max(axis=1) <= ADAPTED_MATCH_TOLERANCE
            cols, rows = cols[ok], rows[ok]
            cols, first = np.unique(cols, return_index=True)
            rows = rows[first]
        return cols.astype(np.int64), rows.astype(np.int64)

    def residual(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``weight[rows] . x_t + bias[rows]`` of inputs ``x [..., Din]``: ``[..., len(rows)]``."""
        lead = x.shape[:-1]
        out = x.reshape(-1, x.shape[-1]) @ self.weight[rows].T + self.bias[rows]
        return out.reshape(*lead, len(rows)).astype(np.float32)


class NumpyModel:
    """The forward of the zero-shot model in numpy (see the module docstring), for inference without torch.

    Parameters
    ----------
    config : ModelConfig
    params : dict of str to np.ndarray
        The parameters by state-dict name (:func:`parameter_shapes`): ``audio_mean``/``audio_scale [Da]``
        (the standardisation of the inputs), ``audio_proj.*`` (``theta``, and ``theta_a`` stacked below it),
        ``text_proj.*`` (``psi``, and ``psi_a``). Kept as float32 in :attr:`params`; names or shapes that do
        not fit ``config`` are a :class:`ParameterError`.
    adaptation : Adaptation or None
        Per-label parameters fitted on examples (``zsa adapt``), applied to the classes that are its labels.
    """

    def __init__(self, config: ModelConfig, params: dict[str, np.ndarray], adaptation: Adaptation | None = None):
        expected = parameter_shapes(config)
        problem = params_mismatch(expected, {k: np.shape(v) for k, v in params.items()})
        if problem:
            raise ParameterError(f"the parameters do not fit the model config ({problem})")
        self.config = config
        self.params = {k: np.ascontiguousarray(params[k], dtype=np.float32) for k in expected}
        if adaptation is not None and adaptation.weight.shape[1:] != (config.input_dim,):
            raise ParameterError(f"adaptation: weight must be [{len(adaptation.labels)}, {config.input_dim}], "
                                 f"got {adaptation.weight.shape}")
        if adaptation is not None and adaptation.label_embeddings.shape[1:] != (config.text_dim,):
            raise ParameterError(f"adaptation: label_embeddings must be [{len(adaptation.labels)}, "
                                 f"{config.text_dim}], got {adaptation.label_embeddings.shape}")
        self.adaptation = adaptation
        p = self.params
        first = "audio_proj.weight" if config.projection == "linear" else "audio_proj.0.weight"
        # the standardisation folded into the first linear layer, as the torch module does it (float32); damaged
        # weights may overflow here: their non-finite scores are refused by the caller, not warned about
        with np.errstate(over="ignore", invalid="ignore"):
            weight = p[first] * p["audio_scale"]  # [out, Da]
            self._w1 = np.ascontiguousarray(weight.T)  # [Da, out]
            self._b1 = p[first.replace("weight", "bias")] - weight @ p["audio_mean"]
        if config.projection == "mlp":
            self._w2 = np.ascontiguousarray(p["audio_proj.2.weight"].T)
            self._b2 = p["audio_proj.2.bias"]
        if config.anchored:
            a = p["anchor_text"]
            self._anchor = np.ascontiguousarray(a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12))

    def project_audio(self, x: np.ndarray) -> np.ndarray:
        """``theta`` (and ``theta_a``) of standardised inputs: ``[..., Da] -> [..., D * branches]`` (an anchored
        model's input ``[..., Da + K]`` is read up to ``Da``)."""
        x = x[..., : self.config.audio_dim]
        lead = x.shape[:-1]
        h = x.reshape(-1, x.shape[-1]) @ self._w1 + self._b1
        if self.config.projection == "mlp":
            h = np.tanh(h) @ self._w2 + self._b2
        return h.reshape(*lead, h.shape[-1])

    def encode_classes(self, class_emb: np.ndarray) -> np.ndarray:
        """``psi(phi)`` (and ``psi_a(phi)``) for every class: ``[C, Ds] -> [C, D * branches]``."""
        if "text_proj.weight" in self.params:
            proj = class_emb @ self.params["text_proj.weight"].T + self.params["text_proj.bias"]
            return proj if self.config.text_projection == "linear" else np.concatenate([class_emb, proj], axis=1)
        return class_emb

    def anchor_weights(self, class_emb: np.ndarray) -> np.ndarray:
        """``w(y)`` of an anchored model: ``[C, Ds] -> [C, K]``, each row a softmax over the ``anchor_top_k``
        anchor classes whose texts are the most cosine-similar to the label (zero elsewhere)."""
        e = np.asarray(class_emb, dtype=np.float32)
        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), np.float32(1e-12))
        sim = e @ self._anchor.T  # [C, K]
        k = self.config.anchor_top_k
        kth = np.partition(sim, sim.shape[1] - k, axis=1)[:, sim.shape[1] - k][:, None]
        tau = np.float32(np.exp(self.params["anchor_log_temperature"][0]))
        z = np.where(sim >= kth, sim / tau, np.float32(-np.inf))
        w = np.exp(z - z.max(axis=1, keepdims=True))
        return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)

    def anchor_scores(self, logits: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The semantic term of an anchored model: ``scale * logit(sigmoid(logits) @ weights.T) + bias``,
        ``logits [..., K]``, ``weights [C, K]`` -> ``[..., C]``."""
        lead = logits.shape[:-1]
        # in float64: its tanh form loses the relative precision of small probabilities in float32, and their
        # logit below needs it
        prob = sigmoid(logits.reshape(-1, logits.shape[-1])).astype(np.float32)
        sem = np.clip(prob @ weights.T, np.float32(1e-6), np.float32(1 - 1e-6))
        z = np.log(sem) - np.log1p(-sem)
        out = self.params["anchor_scale"][0] * z + self.params["anchor_bias"][0]
        return out.reshape(*lead, weights.shape[0]).astype(np.float32)

    def forward(self, x: np.ndarray, mask: np.ndarray | None, class_emb: np.ndarray, *,
                return_segments: bool = False, prototypes: Prototypes | None = None) -> NumpyOutput:
        """Score clips against classes, as the torch module does in evaluation mode.

        Parameters
        ----------
        x : np.ndarray [B, T, Da] (or [B, T, Da + K] for an anchored model)
            Segment embeddings (cast to float32), followed by the anchor logits when the model is anchored.
        mask : np.ndarray [B, T] bool or None
            True = real segment, False = padding; None means every segment is real.
        class_emb : np.ndarray [C, Ds]
        return_segments : bool
            Also return ``segment_scores`` and ``attention`` (for timelines and event detection).
        prototypes : Prototypes, optional
            Classes given by example, combined with the segment scores before pooling (not with mean pooling of
            an unanchored model, which pools before scoring).

        Returns
        -------
        NumpyOutput
            ``clip_scores [B, C]``; with ``return_segments``, ``segment_scores [B, T, C]`` and ``attention
            [B, T, C]`` (zero on padding; sums to 1 over the real segments of a clip), all float32. Overflow
            gives infinite or NaN scores without a warning, as in torch; callers check for them.
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._forward(x, mask, class_emb, return_segments, prototypes)

    def _forward(self, x: np.ndarray, mask: np.ndarray | None, class_emb: np.ndarray,
                 return_segments: bool, prototypes: Prototypes | None = None) -> NumpyOutput:
        cfg = self.config
        x = np.asarray(x, dtype=np.float32)
        class_emb = np.asarray(class_emb, dtype=np.float32)
        if x.ndim != 3 or x.shape[-1] != cfg.input_dim:
            raise ParameterError(f"x must be [B, T, {cfg.input_dim}], got {tuple(x.shape)}")
        if class_emb.ndim != 2 or class_emb.shape[-1] != cfg.text_dim:
            raise ParameterError(f"class_emb must be [C, {cfg.text_dim}], got {tuple(class_emb.shape)}")
        b, t = x.shape[:2]
        mask = np.ones((b, t), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        if mask.shape != (b, t):
            raise ParameterError(f"mask must be [{b}, {t}], got {tuple(mask.shape)}")
        k = self.encode_classes(class_emb)  # [C, D*branches]
        d = cfg.dim
        kt = np.ascontiguousarray(k[:, :d].T)  # [D, C]
        maskf = mask.astype(np.float32)[..., None]  # [B, T, 1]
        n_real = np.maximum(maskf.sum(axis=1), np.float32(1.0))  # [B, 1]
        adapted = (self.adaptation.match(class_emb) if self.adaptation is not None
                   else (np.zeros(0, np.int64),) * 2)

        if cfg.pooling == "mean" and not cfg.anchored and not adapted[0].size:
            pooled = (x * maskf).sum(axis=1) / n_real  # [B, Da]
            clip = self.project_audio(pooled) @ kt
            if not return_segments:
                return NumpyOutput(clip, None, None)
        q = self.project_audio(x[..., : cfg.audio_dim])  # [B, T, D*branches]
        n_cls = k.shape[0]
        seg = (q[..., :d].reshape(b * t, d) @ kt).reshape(b, t, n_cls)  # [B, T, C]
        if cfg.anchored:
            seg += self.anchor_scores(x[..., cfg.audio_dim :], self.anchor_weights(class_emb))
        if prototypes is not None:
            seg = _with_prototypes(seg, x[..., : cfg.audio_dim], prototypes)
        if adapted[0].size:  # the residual of the adapted labels' own columns; every other column is untouched
            seg[..., adapted[0]] += self.adaptation.residual(x, adapted[1])
        pad = ~mask[..., None]  # [B, T, 1]
        padded = not bool(mask.all())
        if cfg.pooling == "mean":
            att = np.broadcast_to(maskf / n_real[:, None], seg.shape).astype(np.float32)
            if cfg.anchored or adapted[0].size:
                clip = np.einsum("btc,btc->bc", att, seg)
        elif cfg.pooling == "max":
            masked = np.where(pad, np.float32(-np.inf), seg) if padded else seg
            clip = masked.max(axis=1)
            att = np.zeros_like(seg)
            np.put_along_axis(att, masked.argmax(axis=1)[:, None, :], np.float32(1.0), axis=1)
        else:
            if cfg.attention == "separate":
                ka = np.ascontiguousarray(k[:, d:].T)
                logits = (q[..., d:].reshape(b * t, d) @ ka).reshape(b, t, n_cls)
            else:
                logits = seg / np.float32(cfg.temperature)
            att = _masked_softmax(logits, pad if padded else None)
            clip = np.einsum("btc,btc->bc", att, seg)
        if return_segments:
            return NumpyOutput(clip, seg, att)
        return NumpyOutput(clip, None, None)

    __call__ = forward

    def scores(self, store: SegmentSource, rows: np.ndarray, class_emb: np.ndarray, *,
               batch_size: int = 256) -> np.ndarray:
        """Clip scores ``[N, C]`` of the clips at ``rows`` of ``store`` for the classes of ``class_emb [C, Ds]``."""
        rows = np.asarray(rows, dtype=np.int64)
        class_emb = np.asarray(class_emb, dtype=np.float32)
        out = np.zeros((rows.shape[0], class_emb.shape[0]), dtype=np.float32)
        for start in range(0, rows.shape[0], batch_size):
            x, mask = store.batch(rows[start : start + batch_size])
            out[start : start + batch_size] = self.forward(x, mask, class_emb).clip_scores
        return out

    def segments(self, store: SegmentSource, rows: np.ndarray, class_emb: np.ndarray, *,
                 batch_size: int = 256) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per clip ``(segment_scores [T_i, C], attention [T_i, C], clip_scores [C])`` with padding removed."""
        rows = np.asarray(rows, dtype=np.int64)
        class_emb = np.asarray(class_emb, dtype=np.float32)
        out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for start in range(0, rows.shape[0], batch_size):
            x, mask = store.batch(rows[start : start + batch_size])
            res = self.forward(x, mask, class_emb, return_segments=True)
            counts = np.asarray(mask, dtype=bool).sum(axis=1)
            out.extend((res.segment_scores[i, : counts[i]], res.attention[i, : counts[i]], res.clip_scores[i])
                       for i in range(len(counts)))
        return out


def untrained_anchored(config: ModelConfig, anchor_text: np.ndarray, *,
                       temperature: float = ANCHOR_TEMPERATURE) -> NumpyModel:
    """An anchored model before any training: the residual is zero, so it is the semantic transfer of the
    anchor classifier's scores (``anchor_text [K, Ds]``: the embedded texts of its classes; ``temperature``:
    ``tau_s`` of the weights over the most similar anchor classes), pooled over time as ``config`` says."""
    if not config.anchored:
        raise ParameterError("untrained_anchored needs an anchored config (anchor_dim > 0)")
    params = {name: np.zeros(shape, np.float32) for name, shape in parameter_shapes(config).items()}
    params["audio_scale"][:] = 1.0
    params["anchor_text"] = np.asarray(anchor_text, dtype=np.float32)
    params["anchor_log_temperature"][:] = np.log(temperature)
    params["anchor_scale"][:] = 1.0
    return NumpyModel(config, params)


def params_mismatch(expected: dict[str, tuple[int, ...]], shapes: dict[str, tuple[int, ...]]) -> str | None:
    """Why parameters of these ``shapes`` (name -> shape) do not fit ``expected`` (name -> shape), or None."""
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    parts = []
    if missing:
        parts.append(f"missing: {', '.join(missing)}")
    if unexpected:
        parts.append(f"unexpected: {', '.join(unexpected)}")
    for name, shape in expected.items():
        if name in shapes and tuple(shapes[name]) != shape:
            parts.append(f"{name} is {list(shapes[name])}, the config needs {list(shape)}")
    return "; ".join(parts) or None


def _with_prototypes(seg: np.ndarray, x: np.ndarray, p: Prototypes) -> np.ndarray:
    """``seg [B, T, C]`` with the example term of ``p`` combined in (see :class:`Prototypes`)."""
    b, t, n_cls = seg.shape
    v = np.asarray(p.vectors, np.float32)
    mix = np.asarray(p.mix, np.float32)
    lift = np.zeros(n_cls, np.float32) if p.lift is None else np.asarray(p.lift, np.float32)
    if v.shape != (n_cls, x.shape[-1]) or mix.shape != (n_cls,) or lift.shape != (n_cls,):
        raise ParameterError(f"prototypes must be [{n_cls}, {x.shape[-1]}] with a mix and a lift of [{n_cls}], got "
                             f"{tuple(v.shape)}, {tuple(mix.shape)} and {tuple(lift.shape)}")
    flat = x.reshape(b * t, -1)
    unit = flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), np.float32(1e-12))
    term = np.float32(p.scale) * (unit @ v.T).reshape(b, t, n_cls) + np.float32(p.bias)
    return ((1 - mix) * seg + mix * term + lift * np.maximum(term - seg, 0)).astype(np.float32)


def _masked_softmax(logits: np.ndarray, pad: np.ndarray | None) -> np.ndarray:
    """Softmax over axis 1 (segments) of ``logits [B, T, C]``, zero where ``pad [B, T, 1]`` is True.

    The maximum is subtracted first, so large logits do not overflow; like torch, a clip without any real
    segment gets NaN attention (the caller's ``np.errstate`` keeps that quiet).
    """
    if pad is not None:
        logits = np.where(pad, np.float32(-np.inf), logits)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


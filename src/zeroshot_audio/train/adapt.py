"""Few-shot adaptation of a model on example clips (``zsa adapt``): per-label parameters fitted in seconds.

Each label of an examples folder (:func:`zeroshot_audio.examples.read_examples`) gets a bias and a residual that
is linear in the model's input (YAMNet's 1024-d embedding and, for a model anchored on YAMNet's class scores,
its 521 logits), added to the model's segment score of that label only
(:class:`~zeroshot_audio.model.Adaptation`): ``s'_t(y) = s_t(y) + u_y . z_t + b_y`` with ``z_t`` the
standardised input. Pooling over time and the calibration ``sigmoid(scale * F + bias)`` stay the model's, so the
fit is a logistic regression of the calibrated probability of each example window:

- positives: each example clip of the label (its best 10 s window, re-chosen at every step, as tagging scores a
  recording by its best window);
- negatives: every window of the other labels' examples and of the generic negatives (``negatives=``, e.g. a
  folder of other sounds); the positives carry :data:`POSITIVE_SHARE` of the loss's weight and the negatives the
  rest (:data:`POSITIVE_SHARE_WITHOUT_NEGATIVES` when there are no generic negatives: the other labels' examples
  then weigh more, so that an adapted label does not fire on everything else), so that probability 0.5 stays a
  decision (chosen on debian-eval's selection recordings, ``benchmarks/adapt_select.py --on selection``,
  docs/adapt.md);
- an L2 pull of ``u_y`` and ``b_y`` toward zero (``strength``), so the label moves only where the examples say.

Full-batch Adam in numpy over :data:`DEFAULT_STEPS` steps: a few seconds on a CPU for tens of labels. A label
that is not adapted is scored exactly as by the base model (its column of the forward is never touched), and so is
any label whose text differs from an adapted label's.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ParameterError, ZsaError
from .._io import sha256_file
from .._math import sigmoid
from ..model import Adaptation, NumpyModel

__all__ = ["AdaptResult", "adapt_model", "fit_adaptation", "FEATURES", "DEFAULT_FEATURES", "DEFAULT_STEPS",
           "DEFAULT_STRENGTH", "POSITIVE_SHARE", "POSITIVE_SHARE_WITHOUT_NEGATIVES"]

log = logging.getLogger(__name__)

#: Which part of the model's input the residual reads: YAMNet's embedding, its logits (anchored models), or both.
FEATURES = ("embedding", "both", "logits")
# The defaults below were chosen on debian-eval's selection recordings (families whose sources made corpus train/val
# scenes; 3 draws, labels adapted on 3 examples from other families), by mAP + F1 at probability 0.5
# (``python benchmarks/adapt_select.py --on selection``); the recordings reported in docs/adapt.md are the other
# families. Chosen on the corpus's validation scenes instead, they did not transfer to single-source recordings.
#: The residual reads the embedding (``both`` and ``logits`` lost mAP on the corpus's validation scenes).
DEFAULT_FEATURES = "embedding"
#: The residual's form (:func:`fit_adaptation`): free over every feature, or along one direction per label.
RESIDUALS = ("full", "direction")
DEFAULT_RESIDUAL = "full"
#: Adam steps: 300 of 30, 100, 300.
DEFAULT_STEPS = 300
#: Weight of the L2 pull of the adapted parameters toward zero (relative to the mean log-loss of the examples).
DEFAULT_STRENGTH = 0.1
#: Adam's step size (the inputs are standardised).
LEARNING_RATE = 0.05
#: Standard deviations of the inputs are floored at this share of their median, so that a dimension the few
#: examples hardly vary on is not blown up.
STD_FLOOR = 0.1
#: Share of the log-loss's weight on the positives (the rest on the negatives), with generic negatives.
POSITIVE_SHARE = 0.2
#: The same without generic negatives (only the other labels' examples).
POSITIVE_SHARE_WITHOUT_NEGATIVES = 0.5


@dataclass
class AdaptResult:
    """What :func:`adapt_model` did.

    Attributes
    ----------
    tagger : zeroshot_audio.tagging.Tagger
        The adapted model, ready to tag.
    path : Path or None
        The model directory written (``out``), or None.
    labels : list of str
        The labels adapted by this call.
    warnings : list of str
        One line per input skipped (example folders and files, labels left out), naming it.
    seconds : float
        Time of the fit (embedding the examples excluded) and of the whole call: ``fit_seconds``, ``seconds``.
    stats : dict
        Per label: examples, negative windows, training accuracy and log-loss before and after.
    """

    tagger: Any
    path: Path | None
    labels: list[str]
    warnings: list[str] = field(default_factory=list)
    fit_seconds: float = 0.0
    seconds: float = 0.0
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)


def _windows(clips: Sequence[np.ndarray], window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x [N, W, Din], mask [N, W], clip_of [N])``: the clips cut into windows of ``window`` segments, as
    :meth:`zeroshot_audio.tagging.Tagger.recording_scores` scores them."""
    parts, owner = [], []
    for i, x in enumerate(clips):
        for a in range(0, len(x), window):
            parts.append(x[a : a + window])
            owner.append(i)
    dim = clips[0].shape[1]
    xw = np.zeros((len(parts), window, dim), np.float32)
    mask = np.zeros((len(parts), window), bool)
    for j, x in enumerate(parts):
        xw[j, : len(x)], mask[j, : len(x)] = x, True
    return xw, mask, np.asarray(owner, np.int64)


def _feature_dims(model: NumpyModel, features: str) -> np.ndarray:
    cfg = model.config
    if features not in FEATURES:
        raise ParameterError(f"features must be one of {', '.join(FEATURES)}, got {features!r}")
    if features == "logits" and not cfg.anchored:
        raise ParameterError("features 'logits' needs a model anchored on YAMNet's class scores")
    if features == "embedding" or not cfg.anchored:
        return np.arange(cfg.audio_dim)
    if features == "logits":
        return np.arange(cfg.audio_dim, cfg.input_dim)
    return np.arange(cfg.input_dim)


def fit_adaptation(model: NumpyModel, labels: Sequence[str], label_embeddings: np.ndarray,
                   clips: Sequence[np.ndarray], positive: np.ndarray, negative: np.ndarray | None = None, *,
                   scale: float = 1.0, bias: float = 0.0, window: int = 10, steps: int = DEFAULT_STEPS,
                   strength: float = DEFAULT_STRENGTH, features: str = DEFAULT_FEATURES,
                   learning_rate: float = LEARNING_RATE, positive_share: float = POSITIVE_SHARE,
                   residual: str = DEFAULT_RESIDUAL) -> tuple[Adaptation, dict[str, dict[str, Any]]]:
    """Fit the per-label parameters of ``labels`` on clips given as segment embeddings (the module docstring).

    Parameters
    ----------
    model : NumpyModel
        The base model (an adaptation it holds is ignored: the fit starts from its own scores).
    labels : sequence of str
        ``A`` labels to adapt, with their ``label_embeddings [A, Ds]`` (as the model computes them).
    clips : sequence of np.ndarray [T_i, Din]
        The model's input of each clip (segment embeddings, and logits for an anchored model).
    positive : np.ndarray [n_clips, A] bool
        Which clips are examples of which label.
    negative : np.ndarray [n_clips, A] bool, optional
        Which clips are negatives of which label (default: every clip that is not a positive).
    scale, bias : float
        The model's calibration, ``sigmoid(scale * F + bias)``.
    window : int
        Segments per window (the tagger's ``window_segments``).
    steps, strength, features, learning_rate, positive_share
        Adam steps, the L2 pull toward zero, the part of the input the residual reads (:data:`FEATURES`), the
        step size, the positives' share of the loss's weight.
    residual : str
        ``"full"``: ``u_y`` free over every feature; ``"direction"``: ``u_y = a_y d_y`` along the difference
        ``d_y`` of the mean standardised features of the label's examples and of its negatives (unit length),
        so only ``a_y`` and ``b_y`` are fitted (:data:`RESIDUALS`).

    Returns
    -------
    (Adaptation, dict)
        The fitted parameters and, per label, ``positives``, ``negative_windows``, ``accuracy_before``/``after``
        (windows right at probability 0.5, weighted as in the loss) and ``loss_before``/``after``.
    """
    cfg = model.config
    labels = list(labels)
    n_lab = len(labels)
    emb = np.asarray(label_embeddings, np.float32)
    positive = np.asarray(positive, bool)
    negative = ~positive if negative is None else np.asarray(negative, bool) & ~positive
    if not clips or positive.shape != (len(clips), n_lab) or emb.shape != (n_lab, cfg.text_dim):
        raise ParameterError(f"fit_adaptation: {len(clips)} clips, {n_lab} labels: positive must be "
                             f"[{len(clips)}, {n_lab}] and label_embeddings [{n_lab}, {cfg.text_dim}]")
    if not positive.any(axis=0).all() or not negative.any(axis=0).all():
        raise ParameterError("fit_adaptation: every label needs a positive and a negative clip")
    clips = [np.asarray(c, np.float32)[:, : cfg.input_dim] for c in clips]
    xw, mask, clip_of = _windows(clips, window)
    base = NumpyModel(cfg, model.params)  # without any adaptation
    out = base.forward(xw, mask, emb, return_segments=True)
    s0, att0 = out.segment_scores, out.attention  # [N, W, A]

    dims = _feature_dims(model, features)
    real = xw[mask][:, dims]
    mean = real.mean(axis=0)
    std = real.std(axis=0)
    inv = (1.0 / np.maximum(std, max(STD_FLOOR * float(np.median(std)), 1e-6))).astype(np.float32)
    z = (xw[..., dims] - mean) * inv * mask[..., None]  # [N, W, F]
    n, w, nf = z.shape
    zf = z.reshape(n * w, nf)

    pos_w = positive.sum(axis=0).astype(np.float64)  # clips per label
    neg_win = negative[clip_of]  # [N, A] windows that are negatives
    neg_w = neg_win.sum(axis=0).astype(np.float64)
    pooled = cfg.pooling
    shared = pooled == "attention" and cfg.attention == "shared"
    tau = np.float32(cfg.temperature)
    big = np.float32(-1e30)

    def forward(u: np.ndarray, b: np.ndarray):
        s = s0 + contribution(u) + b  # [N, W, A]
        if shared:
            logits = np.where(mask[..., None], s / tau, big)
            e = np.exp(logits - logits.max(axis=1, keepdims=True)) * mask[..., None]
            att = e / e.sum(axis=1, keepdims=True)
            f = (att * s).sum(axis=1)
            ds = att * (1 + (s - f[:, None]) / tau)
        elif pooled == "max":
            masked = np.where(mask[..., None], s, -np.inf)
            f = masked.max(axis=1)
            ds = np.zeros_like(s)
            np.put_along_axis(ds, masked.argmax(axis=1)[:, None], 1.0, axis=1)
        else:  # mean pooling, or attention of its own branch: weights that the residual does not change
            f = (att0 * s).sum(axis=1)
            ds = att0
        return f, ds  # [N, A], dF/ds [N, W, A]

    def weights(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Instance weights [N, A] and targets: each positive clip's best window, every negative window."""
        best = np.full((len(clips), n_lab), -np.inf, np.float32)
        np.maximum.at(best, clip_of, f)
        is_best = (f >= best[clip_of]) & positive[clip_of]
        wt = (np.where(is_best, positive_share / pos_w, 0.0)
              + np.where(neg_win, (1 - positive_share) / np.maximum(neg_w, 1), 0.0))
        return wt, is_best.astype(np.float64)

    def evaluate(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        wt, y = weights(f)
        p = sigmoid(scale * f.astype(np.float64) + bias)
        eps = 1e-12
        loss = -(wt * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))).sum(axis=0)
        acc = (wt * ((p >= 0.5) == (y > 0))).sum(axis=0)
        return loss, acc

    if residual not in RESIDUALS:
        raise ParameterError(f"residual must be one of {', '.join(RESIDUALS)}, got {residual!r}")
    if residual == "direction":  # u_y = a_y d_y: the contribution a_y (z . d_y), the parameter a_y
        real = mask.reshape(-1)
        seg_clip = np.repeat(clip_of, w)[real]
        zr = zf[real]
        direction = np.zeros((n_lab, nf), np.float32)
        for i in range(n_lab):
            pos = [zr[seg_clip == c].mean(axis=0) for c in np.flatnonzero(positive[:, i])]  # each clip once
            d = np.mean(pos, axis=0) - zr[negative[seg_clip, i]].mean(axis=0)
            direction[i] = d / max(float(np.linalg.norm(d)), 1e-12)
        proj = zf @ direction.T  # [N * W, A]
        u = np.zeros((n_lab, 1), np.float32)
    else:
        u = np.zeros((n_lab, nf), np.float32)

    def contribution(u: np.ndarray) -> np.ndarray:
        return ((zf @ u.T) if residual == "full" else proj * u[:, 0]).reshape(n, w, n_lab)

    def gradient(g_s: np.ndarray) -> np.ndarray:
        return (g_s.T @ zf) if residual == "full" else (g_s * proj).sum(axis=0)[:, None]

    b = np.zeros(n_lab, np.float32)
    loss0, acc0 = evaluate(forward(u, b)[0])
    m_u, v_u, m_b, v_b = np.zeros_like(u), np.zeros_like(u), np.zeros_like(b), np.zeros_like(b)
    beta1, beta2 = 0.9, 0.999
    for step in range(1, int(steps) + 1):
        f, ds = forward(u, b)
        wt, y = weights(f)
        p = sigmoid(scale * f.astype(np.float64) + bias)
        g_f = (wt * scale * (p - y)).astype(np.float32)  # dL/dF [N, A]
        g_s = (ds * g_f[:, None, :]).reshape(n * w, n_lab)  # dL/ds
        g_u = gradient(g_s) + strength * u
        g_b = g_s.sum(axis=0) + strength * b
        for prm, g, m_, v_ in ((u, g_u, m_u, v_u), (b, g_b, m_b, v_b)):
            m_ *= beta1
            m_ += (1 - beta1) * g
            v_ *= beta2
            v_ += (1 - beta2) * g * g
            prm -= (learning_rate * (m_ / (1 - beta1 ** step)) / (np.sqrt(v_ / (1 - beta2 ** step)) + 1e-8)
                    ).astype(np.float32)
    loss1, acc1 = evaluate(forward(u, b)[0])
    if residual == "direction":
        u = u * direction

    # fold the standardisation into the weights: u . ((x - mean) * inv) + b = (u * inv) . x + (b - (u * inv) . mean)
    weight = np.zeros((n_lab, cfg.input_dim), np.float32)
    weight[:, dims] = u * inv
    bias_out = b - weight[:, dims] @ mean
    adaptation = Adaptation(labels=tuple(labels), label_embeddings=emb, weight=weight, bias=bias_out)
    stats = {lab: {"positives": int(pos_w[i]), "negative_windows": int(neg_w[i]),
                   "accuracy_before": round(float(acc0[i]), 4), "accuracy_after": round(float(acc1[i]), 4),
                   "loss_before": round(float(loss0[i]), 4), "loss_after": round(float(loss1[i]), 4)}
             for i, lab in enumerate(labels)}
    return adaptation, stats


def _embed_examples(tagger: Any, files: Sequence[Path], warn: Any) -> list[tuple[Path, np.ndarray]]:
    """``(file, model input [T, Din])`` of each file that decodes; the others are warnings naming them."""
    from ..embed import embed_file

    dim = tagger.trained.config.input_dim
    out = []
    for path in files:
        try:
            res = embed_file(tagger.embedder, path)
        except (ZsaError, OSError, ValueError, RuntimeError) as err:
            warn(f"{path}: skipped, it cannot be decoded ({err})")
            continue
        x = np.asarray(res.embeddings, np.float32)
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] < dim:
            warn(f"{path}: skipped, it gave no segment the model can read")
            continue
        if res.peak is not None and res.peak == 0.0:
            warn(f"{path}: skipped, it is digitally silent")
            continue
        if res.padded:
            warn(f"{path}: shorter than one segment ({tagger.embedder.window_samples / tagger.embedder.sample_rate:.2f}"
                 " s), padded with silence")
        out.append((path, x[:, :dim]))
    return out


def _negative_clips(tagger: Any, negatives: Any, warn: Any, rng: np.random.Generator,
                    limit: int) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Generic negatives: a folder or files of audio, or arrays of the model's input; at most ``limit`` clips."""
    if negatives is None:
        return [], {"clips": 0}
    dim = tagger.trained.config.input_dim
    if isinstance(negatives, (str, os.PathLike)):
        negatives = [negatives]
    arrays = [np.asarray(x, np.float32) for x in negatives if isinstance(x, np.ndarray)]
    paths = [Path(x) for x in negatives if not isinstance(x, np.ndarray)]
    source: dict[str, Any] = {}
    if paths:
        from ..audio_files import find_audio_files

        errors: list[tuple[Path, str]] = []
        for p in paths:
            if not p.exists():
                raise ParameterError(f"negatives {p}: no such file or folder")
        files = find_audio_files(paths, errors=errors)
        for where, reason in errors:
            warn(f"{where}: {reason}")
        if len(files) > limit:
            files = sorted(rng.choice(np.asarray(files, dtype=object), size=limit, replace=False).tolist())
        arrays += [x for _, x in _embed_examples(tagger, files, warn)]
        source["paths"] = [str(p) for p in paths]
    bad = [i for i, x in enumerate(arrays) if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] < dim]
    if bad:
        raise ParameterError(f"negatives: array {bad[0]} must be [T >= 1, >= {dim}] (the model's input), "
                             f"got {arrays[bad[0]].shape}")
    if len(arrays) > limit:
        arrays = [arrays[i] for i in sorted(rng.choice(len(arrays), size=limit, replace=False))]
    source["clips"] = len(arrays)
    return [x[:, :dim] for x in arrays], source


def _base_identity(tagger: Any) -> dict[str, Any]:
    from ..checkpoint import ADAPTED, WEIGHTS

    path = Path(tagger.path)
    out: dict[str, Any] = {"model": str(path)}
    for name in (WEIGHTS, ADAPTED, "class_embeddings.npy"):
        if (path / name).is_file():
            out[f"{name} sha256"] = sha256_file(path / name)
    return out


def adapt_model(model: Any, examples: Any, out: str | os.PathLike[str] | None = None, *, negatives: Any = None,
                steps: int = DEFAULT_STEPS, strength: float = DEFAULT_STRENGTH, features: str = DEFAULT_FEATURES,
                seed: int = 0, force: bool = False, max_negatives: int = 500,
                positive_share: float | None = None) -> AdaptResult:
    """Adapt ``model`` to the labels of ``examples`` (module docstring) and write it to ``out``.

    Parameters
    ----------
    model : Tagger, str or PathLike
        A loaded model (:func:`zeroshot_audio.load_model`) or what ``load_model`` accepts (``"default"``, a
        model directory).
    examples : ExampleSet, str or PathLike
        The example clips per label (:func:`zeroshot_audio.examples.read_examples`, which a folder is read with).
    out : str or PathLike, optional
        Model directory to write (a normal model directory: ``load_model(out)``, ``zsa tag --model out``). An
        existing path is refused unless ``force`` (and a directory that is not a model directory always is).
    negatives : folder, files or list of np.ndarray, optional
        Generic negatives: recordings of other sounds than the labels (at most ``max_negatives`` clips, drawn
        with ``seed``), or their model input ``[T, Din]`` (segment embeddings, and logits for an anchored model).
        The other labels' examples are always negatives.
    steps, strength, features
        See :func:`fit_adaptation`.
    positive_share : float, optional
        The positives' share of the loss's weight; default :data:`POSITIVE_SHARE` with generic negatives,
        :data:`POSITIVE_SHARE_WITHOUT_NEGATIVES` without.

    Returns
    -------
    AdaptResult

    Notes
    -----
    Warnings (logged, and in :attr:`AdaptResult.warnings`): what :func:`read_examples` warns about, an example that
    cannot be decoded or is silent (skipped), a label left with no usable example or without any negative (not
    adapted). No label left to adapt is a :class:`ParameterError`. A model that already holds an adaptation keeps
    it for the labels not adapted again.
    """
    from ..examples import ExampleSet, read_examples
    from ..tagging import Tagger, load_model

    t_start = time.perf_counter()
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ParameterError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength < float("inf"):
        raise ParameterError(f"strength must be a number >= 0, got {strength!r}")
    if out is not None:
        out = Path(out)
        if (out.exists() or out.is_symlink()) and not force:
            raise ParameterError(f"--out {out}: exists (use --force to replace it)")
        if out.exists() and not out.is_dir():
            raise ParameterError(f"--out {out}: exists and is not a directory")
        if out.is_dir() and any(out.iterdir()) and not (out / "config.json").is_file():
            raise ParameterError(f"--out {out}: exists and is not a model directory (refusing to replace it)")
    tagger = model if isinstance(model, Tagger) else load_model(model)
    if out is not None and out.exists() and out.resolve() == Path(tagger.path).resolve():
        raise ParameterError(f"--out {out}: is the model being adapted (write the adapted model elsewhere)")
    _feature_dims(tagger.trained.model, features)
    ex = examples if isinstance(examples, ExampleSet) else read_examples(examples)
    warnings_: list[str] = list(ex.warnings)

    def warn(text: str) -> None:
        warnings_.append(text)
        log.warning("%s", text)

    rng = np.random.default_rng(seed)
    files_info: dict[str, list[dict[str, Any]]] = {}
    clips: list[np.ndarray] = []
    owner: list[str] = []
    for label, files in ex.clips.items():
        got = _embed_examples(tagger, files, warn)
        if not got:
            warn(f"label {label!r}: not adapted, none of its {len(files)} example(s) could be used")
            continue
        files_info[label] = [{"file": str(p), "size": p.stat().st_size, "sha256": sha256_file(p)} for p, _ in got]
        clips += [x for _, x in got]
        owner += [label] * len(got)
    generic, neg_source = _negative_clips(tagger, negatives, warn, rng, max_negatives)
    labels = list(files_info)
    if len(labels) == 1 and not generic:
        warn(f"label {labels[0]!r}: not adapted, it has no negatives (give the examples of other labels or "
             "negatives, recordings of other sounds)")
        labels = []
    if not labels:
        raise ParameterError("no label to adapt: every label was skipped (see the warnings)")
    owner_arr = np.asarray(owner + [""] * len(generic), dtype=object)
    positive = np.stack([owner_arr == lab for lab in labels], axis=1)
    emb = tagger.label_embeddings(labels)
    if positive_share is None:
        positive_share = POSITIVE_SHARE if generic else POSITIVE_SHARE_WITHOUT_NEGATIVES
    if not 0 < positive_share < 1:
        raise ParameterError(f"positive_share must be in (0, 1), got {positive_share!r}")
    t_fit = time.perf_counter()
    adaptation, stats = fit_adaptation(
        tagger.trained.model, labels, emb, clips + generic, positive, scale=tagger.scale, bias=tagger.bias,
        window=tagger.window_segments, steps=steps, strength=float(strength), features=features,
        positive_share=float(positive_share))
    fit_seconds = time.perf_counter() - t_fit

    trained = tagger.trained
    old = trained.model.adaptation
    previous = dict(trained.info.get("adapted") or {})
    if old is not None:  # keep the earlier adaptation of the labels not adapted again
        keep = [i for i, lab in enumerate(old.labels) if lab not in set(labels)]
        adaptation = Adaptation(labels=tuple(old.labels[i] for i in keep) + adaptation.labels,
                                label_embeddings=np.concatenate([old.label_embeddings[keep],
                                                                 adaptation.label_embeddings]),
                                weight=np.concatenate([old.weight[keep], adaptation.weight]),
                                bias=np.concatenate([old.bias[keep], adaptation.bias]))
    info = dict(trained.info)
    info["adapted"] = {
        "labels": list(adaptation.labels),
        "base": _base_identity(tagger),
        "adapted_now": labels,
        "examples": files_info,
        "negatives": neg_source,
        "settings": {"steps": steps, "strength": float(strength), "features": features, "seed": seed,
                     "max_negatives": max_negatives, "learning_rate": LEARNING_RATE,
                     "positive_share": float(positive_share),
                     "window_segments": tagger.window_segments},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "fit": stats,
        "fit_seconds": round(fit_seconds, 3),
        "warnings": warnings_,
    }
    if previous:
        info["adapted"]["previous"] = previous
    new_model = NumpyModel(trained.config, trained.model.params, adaptation=adaptation)
    new_trained = dataclasses.replace(trained, model=new_model, info=info)
    new_trained.__dict__.pop("_encoder", None)
    if "_encoder" in trained.__dict__:  # the label encoder, loaded once, is shared
        new_trained.__dict__["_encoder"] = trained.__dict__["_encoder"]
    path = None
    if out is not None:
        path = new_trained.save(out)
        _write_card(Path(tagger.path), path, info["adapted"])
    new_tagger = Tagger(new_trained, path=path if path is not None else Path(tagger.path),
                        window_segments=tagger.window_segments, batch_labels=tagger.batch_labels)
    return AdaptResult(tagger=new_tagger, path=path, labels=labels, warnings=warnings_, fit_seconds=fit_seconds,
                       seconds=time.perf_counter() - t_start, stats=stats)


def describe_adaptation(adapted: dict[str, Any]) -> str:
    """Markdown lines on what a model was adapted on (``info.adapted`` of its ``config.json``)."""
    lines = ["## Adapted on example clips (`zsa adapt`)", "",
             f"- **Base model**: {adapted.get('base', {}).get('model')} "
             f"(weights.npz sha256 {adapted.get('base', {}).get('weights.npz sha256', '-')})",
             f"- **Date**: {adapted.get('date')}",
             f"- **Settings**: {', '.join(f'{k} {v}' for k, v in adapted.get('settings', {}).items())}",
             f"- **Generic negatives**: {adapted.get('negatives', {}).get('clips', 0)} clip(s)",
             f"- **Adapted labels** ({len(adapted.get('labels', []))}): labels with exactly these texts use their "
             "adapted parameters; any other label is scored as by the base model."]
    for label, files in adapted.get("examples", {}).items():
        fit = adapted.get("fit", {}).get(label, {})
        lines.append(f"  - {label}: {len(files)} example(s), training accuracy {fit.get('accuracy_before')} -> "
                     f"{fit.get('accuracy_after')}")
        lines += [f"    - {f['file']} ({f['size']} bytes, sha256 {f['sha256']})" for f in files]
    if adapted.get("warnings"):
        lines.append(f"- **Skipped** ({len(adapted['warnings'])}):")
        lines += [f"  - {w}" for w in adapted["warnings"]]
    return "\n".join(lines) + "\n"


def _write_card(base: Path, path: Path, adapted: dict[str, Any]) -> None:
    """``MODEL_CARD.md`` of the adapted model: what it was adapted on, then the base model's card."""
    card = base / "MODEL_CARD.md"
    text = describe_adaptation(adapted)
    if card.is_file():
        text += "\n# The base model\n\n" + card.read_text(encoding="utf-8", errors="replace")
    (path / "MODEL_CARD.md").write_text(text, encoding="utf-8")

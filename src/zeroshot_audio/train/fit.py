"""Fitting a :class:`~zeroshot_audio.train.network.ZeroShotModel` on segment embeddings from a store.

Training sees the clips of a :class:`ClipSet` (rows of an embedding store + multi-hot targets over the
training classes) and the label embeddings of those classes only. Early stopping watches macro mAP of
the validation clips over the validation classes, which the model never trains on: model selection
itself is zero-shot.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._errors import ParameterError
from ..evaluation.metrics import mean_average_precision
from ..model import ModelConfig
from .losses import get_loss
from .network import ZeroShotModel
from .options import TrainOptions
from .recipes import ClipSet, SegmentSource

__all__ = [
    "TrainOptions", "ClipSet", "FitResult", "fit", "predict", "predict_segments", "resolve_device", "SegmentSource",
]

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    model: ZeroShotModel
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_map: float | None = None
    seconds: float = 0.0


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without CUDA is a :class:`ParameterError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ParameterError("--device cuda was asked for but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise ParameterError(f"device must be 'auto', 'cpu' or 'cuda', got {name!r}")
    return torch.device(name)


def _batches(n: int, batch_size: int, order: np.ndarray | None = None):
    idx = np.arange(n) if order is None else order
    for start in range(0, n, batch_size):
        yield idx[start : start + batch_size]


def _prefetched(store: SegmentSource, row_batches: list[np.ndarray]):
    """Yield ``(x, mask)`` for each batch of rows, loading the next batch in a thread meanwhile.

    Reading a store (memory-mapped gather, float16 -> float32) overlaps with the matrix products.
    """
    from concurrent.futures import ThreadPoolExecutor

    if not row_batches:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zsa-prefetch") as pool:
        pending = pool.submit(store.batch, row_batches[0])
        for i in range(len(row_batches)):
            x, mask = pending.result()
            if i + 1 < len(row_batches):
                pending = pool.submit(store.batch, row_batches[i + 1])
            yield x, mask


def _to_device(store: SegmentSource, rows: np.ndarray, device: torch.device):
    x, mask = store.batch(rows)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device), torch.from_numpy(
        np.asarray(mask, dtype=bool)
    ).to(device)


def _input_statistics(clips: ClipSet, *, max_clips: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std of the real segments of (a sample of) the clips."""
    rng = np.random.default_rng(seed)
    rows = clips.rows if len(clips) <= max_clips else rng.choice(clips.rows, max_clips, replace=False)
    total = None
    count = 0
    sq = None
    for part in _batches(len(rows), 512):
        x, mask = clips.store.batch(rows[part])
        real = np.asarray(x, dtype=np.float64)[np.asarray(mask, dtype=bool)]
        total = real.sum(0) if total is None else total + real.sum(0)
        sq = (real**2).sum(0) if sq is None else sq + (real**2).sum(0)
        count += real.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean**2, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)


@torch.no_grad()
def predict(
    model: ZeroShotModel,
    store: SegmentSource,
    rows: np.ndarray,
    class_emb: np.ndarray,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Clip scores ``[N, C]`` of the clips at ``rows`` for the classes of ``class_emb [C, Ds]``."""
    device = torch.device(device)
    model.eval()
    rows = np.asarray(rows, dtype=np.int64)
    k = torch.as_tensor(np.asarray(class_emb, dtype=np.float32), device=device)
    out = np.zeros((rows.shape[0], k.shape[0]), dtype=np.float32)
    for part in _batches(rows.shape[0], batch_size):
        x, mask = _to_device(store, rows[part], device)
        out[part] = model(x, mask, k).clip_scores.float().cpu().numpy()
    return out


def fit(
    config: ModelConfig,
    train: ClipSet,
    class_emb: np.ndarray,
    *,
    val: ClipSet | None = None,
    val_class_emb: np.ndarray | None = None,
    options: TrainOptions | None = None,
    progress: bool | None = False,
    init: dict[str, np.ndarray] | None = None,
) -> FitResult:
    """Train a model on ``train`` (targets over the classes of ``class_emb [C, Ds]``).

    Parameters
    ----------
    config : ModelConfig
    train : ClipSet
        Training clips; ``train.targets`` columns follow the rows of ``class_emb``.
    class_emb : np.ndarray [C, Ds]
    val, val_class_emb : optional
        Validation clips and the embeddings of the classes they are scored on; early stopping keeps the
        epoch with the best validation mAP. Without them the model of the last epoch is returned.
    options : TrainOptions
    progress : bool or None
        Show a progress bar (None: only on a terminal).
    init : dict of str to np.ndarray, optional
        Starting values of some parameters or buffers by state-dict name, e.g. ``anchor_text`` (the embedded
        label texts of the anchor classes) of an anchored model, which it needs.
    """
    opts = options or TrainOptions()
    if train.targets.shape[1] != class_emb.shape[0]:
        raise ParameterError(
            f"train targets have {train.targets.shape[1]} classes but class_emb has {class_emb.shape[0]} rows"
        )
    if len(train) == 0:
        raise ParameterError("no training clips (after dropping clips of unseen classes?)")
    if (val is None) != (val_class_emb is None):
        raise ParameterError("val and val_class_emb are given together or not at all")
    device = resolve_device(opts.device)
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    model = ZeroShotModel(config)
    if init:
        state = model.state_dict()
        unknown = sorted(set(init) - set(state))
        if unknown:
            raise ParameterError(f"init names unknown parameter(s): {', '.join(unknown)}")
        for name, value in init.items():
            if tuple(np.shape(value)) != tuple(state[name].shape):
                raise ParameterError(f"init {name} is {list(np.shape(value))}, "
                                     f"the model needs {list(state[name].shape)}")
            state[name] = torch.as_tensor(np.asarray(value, dtype=np.float32))
        model.load_state_dict(state)
    if config.anchored and not (init and "anchor_text" in init):
        raise ParameterError("an anchored model needs the embedded texts of its anchor classes: "
                             "init={'anchor_text': ...}")
    if opts.normalize:
        mean, std = _input_statistics(train, seed=opts.seed)
        model.set_normalization(torch.from_numpy(mean[: config.audio_dim]), torch.from_numpy(std[: config.audio_dim]))
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if opts.optimizer == "adamw":
        optim: torch.optim.Optimizer = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)
    else:
        optim = torch.optim.SGD(params, lr=opts.lr, momentum=opts.momentum, weight_decay=opts.weight_decay)
    loss_fn = get_loss(opts.loss)
    loss_kwargs = {"margin": opts.margin} if opts.loss == "rank_hinge" else {}
    k_train = torch.as_tensor(np.asarray(class_emb, dtype=np.float32), device=device)
    targets = torch.from_numpy(train.targets)

    result = FitResult(model=model)
    best_state: dict[str, torch.Tensor] | None = None
    best_score = -math.inf
    since_best = 0
    start = time.perf_counter()
    bar = _progress(opts.epochs, progress)
    if config.anchored and val is not None and len(val):
        # an anchored model starts at the semantic transfer: training keeps a step only where the validation
        # classes improve on it, so epoch 0 (the untrained model) is a candidate too
        model.eval()
        val_map, _ = mean_average_precision(val.targets, predict(model, val.store, val.rows, val_class_emb,
                                                                 device=device))
        result.history.append({"epoch": 0, "val_map": val_map})
        if not math.isnan(val_map):
            best_score, result.best_epoch = val_map, 0
            best_state = copy.deepcopy(model.state_dict())
    for epoch in range(1, opts.epochs + 1):
        model.train()
        parts = list(_batches(len(train), opts.batch_size, rng.permutation(len(train))))
        total, n_batches = 0.0, 0
        for part, (x_np, mask_np) in zip(parts, _prefetched(train.store, [train.rows[p] for p in parts])):
            x = torch.from_numpy(np.ascontiguousarray(x_np, dtype=np.float32)).to(device)
            mask = torch.from_numpy(np.asarray(mask_np, dtype=bool)).to(device)
            y = targets[part].to(device)
            loss = loss_fn(model(x, mask, k_train).clip_scores, y, **loss_kwargs)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            total += float(loss.detach())
            n_batches += 1
        record = {"epoch": epoch, "loss": total / max(n_batches, 1)}
        if val is not None and len(val):
            scores = predict(model, val.store, val.rows, val_class_emb, device=device)
            val_map, _ = mean_average_precision(val.targets, scores)
            record["val_map"] = val_map
            score = val_map if not math.isnan(val_map) else -record["loss"]
        else:
            score = -record["loss"]
        result.history.append(record)
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
        if score > best_score:
            best_score, since_best, result.best_epoch = score, 0, epoch
            best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
            if val is not None and opts.patience and since_best >= opts.patience:
                break
    if bar is not None:
        bar.close()
    if val is not None and best_state is not None:
        model.load_state_dict(best_state)
        vm = next(r for r in result.history if r["epoch"] == result.best_epoch).get("val_map")
        result.best_val_map = None if vm is None or math.isnan(vm) else float(vm)
    model.eval()
    result.seconds = time.perf_counter() - start
    log.info("trained %s in %.1f s, best epoch %d", config.pooling, result.seconds, result.best_epoch)
    return result


def _progress(total: int, progress: bool | None):
    if progress is False:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="epochs", unit="ep", disable=None if progress is None else not progress)


@torch.no_grad()
def predict_segments(
    model: ZeroShotModel,
    store: Any,
    rows: np.ndarray,
    class_emb: np.ndarray,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per clip ``(segment_scores [T_i, C], attention [T_i, C], clip_scores [C])`` with padding removed."""
    device = torch.device(device)
    model.eval()
    rows = np.asarray(rows, dtype=np.int64)
    k = torch.as_tensor(np.asarray(class_emb, dtype=np.float32), device=device)
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for part in _batches(rows.shape[0], batch_size):
        x, mask = _to_device(store, rows[part], device)
        res = model(x, mask, k, return_segments=True)
        seg, att, clip = (t.float().cpu().numpy() for t in (res.segment_scores, res.attention, res.clip_scores))
        counts = mask.sum(dim=1).cpu().numpy()
        out.extend((seg[i, : counts[i]], att[i, : counts[i]], clip[i]) for i in range(len(part)))
    return out

"""The evaluation protocol: class folds, the systems compared, ZSL and GZSL scores, tables.

For each of ``K`` class folds (see :mod:`zeroshot_audio.data.folds`) every system is fitted on the
training clips with the seen classes only and evaluated on the test clips:

- **ZSL**: the unseen classes alone are scored.
- **GZSL**: seen and unseen classes are scored together; seen mAP, unseen mAP and their harmonic mean
  (reported as ``map``) and F1@k over both sets.

Systems: ``zero_rule`` (the label prior of the training clips, no audio), ``mean``, ``max`` and
``attention`` pooling (zero-shot), ``supervised`` (attention trained with every class seen: the upper
bound), and, with distillation data, ``semantic`` (training-free transfer of YAMNet's class scores through
label-embedding similarity), ``semantic_all`` (the same over all of YAMNet's classes), ``anchored_mean`` and
``anchored`` (the model anchored on YAMNet's class scores, :mod:`zeroshot_audio.model`). In the strict setting
(default) training clips that contain an unseen or a
validation class are dropped, so unseen sounds are never heard in training.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import ParameterError
from ..data.folds import SPLITS, class_folds, fold_roles
from ..model import ModelConfig
from ..train.options import TrainOptions
from ..train.recipes import dataset_clips
from .metrics import evaluate_scores, f1_at_k, mean_average_precision
from .systems import NEEDS_DISTILL, Fold, ZeroRule, get_system
from .systems import SYSTEMS as _SYSTEM_REGISTRY

__all__ = ["SYSTEMS", "ProtocolOptions", "ZeroRule", "run_protocol", "results_markdown"]

log = logging.getLogger(__name__)

#: Names of the compared systems, in the order of the tables (:data:`zeroshot_audio.evaluation.systems.SYSTEMS`).
SYSTEMS = tuple(_SYSTEM_REGISTRY)
#: Systems run by default (``semantic`` and the anchored ones need YAMNet's class scores: see
#: ``ProtocolOptions.distill``).
DEFAULT_SYSTEMS = tuple(s for s in SYSTEMS if s not in NEEDS_DISTILL)


@dataclass(frozen=True)
class ProtocolOptions:
    """Settings of one benchmark run.

    Parameters
    ----------
    folds : int
        Number of class folds ``K``.
    seed : int
        Seeds the class folds, the clip split (when the dataset has none) and training.
    strict : bool
        Drop training clips that contain an unseen or validation class.
    systems : tuple of str
    model : dict
        :class:`ModelConfig` fields shared by the learned systems (``dim``, ``projection``, ...).
    train : TrainOptions
    distill : bool
        Add YAMNet's own class knowledge as auxiliary training labels (:mod:`zeroshot_audio.train.distill`);
        the caller passes them to :func:`run_protocol` as ``aux``. Also enables the training-free
        ``semantic`` system.
    temporal : bool
        When the dataset has strong labels (``events.tsv``), also score when the unseen classes are detected:
        per-segment scores of the pooling systems on the test clips against the events
        (:mod:`zeroshot_audio.evaluation.detection`).
    """

    folds: int = 5
    seed: int = 0
    strict: bool = True
    systems: tuple[str, ...] = DEFAULT_SYSTEMS
    model: dict[str, Any] = field(default_factory=dict)
    train: TrainOptions = field(default_factory=TrainOptions)
    temporal: bool = True
    distill: bool = False

    def __post_init__(self) -> None:
        unknown = [s for s in self.systems if s not in SYSTEMS]
        needs = [s for s in self.systems if s in NEEDS_DISTILL]
        if needs and not self.distill:
            raise ParameterError(f"the {needs[0]} system uses YAMNet's class scores: it needs distill=True")
        if unknown or not self.systems:
            raise ParameterError(
                f"unknown system(s) {', '.join(unknown) or '(none given)'} (expected from: {', '.join(SYSTEMS)})"
            )
        allowed = {f.name for f in dataclasses.fields(ModelConfig)} - {"pooling", "audio_dim", "text_dim"}
        bad = sorted(set(self.model) - allowed)
        if bad:
            raise ParameterError(f"model option(s) not allowed here: {', '.join(bad)}")
        if self.folds < 3:
            raise ParameterError(f"folds must be >= 3, got {self.folds}")


def _harmonic(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b) or a + b == 0:
        return float("nan")
    return 2 * a * b / (a + b)


def _fold_scores(y: np.ndarray, scores: np.ndarray, classes: Sequence[str], idx: dict[str, np.ndarray]):
    """ZSL and GZSL figures of one system in one fold; ``y``/``scores`` are [N_test, C] over all classes."""
    u, s = idx["unseen"], idx["seen"]
    zsl = evaluate_scores(y[:, u], scores[:, u], [classes[i] for i in u])
    g = np.concatenate([s, u])
    map_seen, _ = mean_average_precision(y[:, s], scores[:, s])
    map_unseen = zsl["map"] if zsl["map"] is not None else float("nan")
    gzsl = {
        "map": _harmonic(map_seen, map_unseen),
        "map_seen": map_seen,
        "map_unseen": map_unseen,
        "f1@1": f1_at_k(y[:, g], scores[:, g], 1),
        "f1@3": f1_at_k(y[:, g], scores[:, g], 3),
    }
    return zsl, gzsl


_DETECTION_KEYS = ("segment_f1_best", "segment_ap", "segment_auroc")


def _ground_truth(dataset: Any) -> dict[str, list[tuple[float, float, str]]] | None:
    """Strong labels by clip, or None when the dataset has none or sed_scores_eval is missing."""
    if not getattr(dataset, "events", None):
        return None
    try:
        import sed_scores_eval  # noqa: F401
    except ImportError:
        log.warning("event detection is not scored: the package sed-scores-eval is not installed")
        return None
    gt: dict[str, list[tuple[float, float, str]]] = {}
    for e in dataset.events:
        gt.setdefault(e.filename, []).append((e.onset, e.offset, e.label))
    return gt


def _summarise(fold_values: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        vals = np.array([np.nan if f.get(key) is None else f[key] for f in fold_values], dtype=float)
        ok = vals[~np.isnan(vals)]
        out[key] = float(ok.mean()) if ok.size else None
        out[f"{key}_std"] = float(ok.std(ddof=1)) if ok.size > 1 else (0.0 if ok.size else None)
    return out


def run_protocol(
    dataset: Any,
    store: Any,
    class_embeddings: np.ndarray,
    *,
    options: ProtocolOptions | None = None,
    progress: bool | None = False,
    aux: Any = None,
    anchor: tuple[Any, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Run the protocol and return the results document (the layout of ``results.json``).

    Parameters
    ----------
    dataset : Dataset
    store : EmbeddingStore or MemoryStore
        Holds the segment embeddings of the dataset's clips (keys = filenames).
    class_embeddings : np.ndarray [C, Ds]
        Label embeddings, rows in ``dataset.classes`` order.
    options : ProtocolOptions
    progress : bool or None
        Show a progress bar over (fold, system) runs; None = only on a terminal.
    aux : AuxLabels, optional
        Auxiliary classes with pseudo-labels for every clip (:mod:`zeroshot_audio.train.distill`), added to the
        training classes of every learned system.
    anchor : (store, anchor_text), optional
        For the anchored systems: a store of YAMNet's embeddings and logits side by side, rows as ``store``
        (:class:`~zeroshot_audio.data.joined.JoinedStore`), and the embedded texts of YAMNet's classes ``[K, Ds]``.
    """
    from ..train.fit import resolve_device

    opts = options or ProtocolOptions()
    if opts.distill and aux is None:
        raise ParameterError("distill=True needs the auxiliary labels (aux=...)")
    if not opts.distill:
        aux = None
    started = time.perf_counter()
    classes = list(dataset.classes)
    class_embeddings = np.asarray(class_embeddings, dtype=np.float32)
    if class_embeddings.shape[0] != len(classes):
        raise ParameterError(f"{class_embeddings.shape[0]} class embeddings for {len(classes)} classes")
    clips = dataset_clips(dataset, store, classes=classes, seed=opts.seed)
    if clips.n_failed:
        log.warning("%d clip(s) failed to embed and are left out", clips.n_failed)
    aux_targets = None if aux is None else np.asarray(aux.targets, dtype=bool)
    if aux_targets is not None and aux_targets.shape[0] != len(dataset.filenames):
        raise ParameterError(f"aux targets have {aux_targets.shape[0]} rows for {len(dataset.filenames)} clips")
    present = clips.labels[~clips.failed].any(axis=0)
    if not present.all():  # a class without a single clip can be neither trained nor evaluated
        log.info("%d class(es) have no clip and are left out", int((~present).sum()))
        classes = [c for c, p in zip(classes, present) if p]
        class_embeddings = class_embeddings[present]
        clips = dataclasses.replace(clips, classes=classes, labels=clips.labels[:, present])
    y = clips.labels
    part = {name: clips.ids(name) for name in SPLITS}
    for name, ids in part.items():
        if ids.size == 0:
            raise ParameterError(f"the clip split leaves no {name} clips")
    folds = class_folds(classes, n_folds=opts.folds, seed=opts.seed)
    pos = {c: i for i, c in enumerate(classes)}
    device = resolve_device(opts.train.device)

    per_system: dict[str, dict[str, Any]] = {s: {"zsl": [], "gzsl": [], "per_class": {}, "temporal": {}}
                                             for s in opts.systems}
    temporal = _ground_truth(dataset) if opts.temporal else None
    fold_info = []
    bar = None
    if progress is not False:
        from tqdm.auto import tqdm

        bar = tqdm(total=opts.folds * len(opts.systems), desc="benchmark", unit="run",
                   disable=None if progress is None else not progress)
    for k in range(opts.folds):
        roles = fold_roles(folds, k, classes)
        idx = {r: np.array([pos[c] for c in getattr(roles, r)], dtype=np.int64) for r in ("seen", "val", "unseen")}
        held = np.concatenate([idx["unseen"], idx["val"]])
        zero_shot = clips.select(train_classes=idx["seen"], val_classes=idx["val"],
                                 unheard=held if opts.strict else None, extra_targets=aux_targets)
        train_ids, n_dropped = zero_shot.train_ids, zero_shot.n_dropped
        test_ids = part["test"]
        y_test = y[test_ids]
        fold_info.append({
            "fold": k, "seen": roles.seen, "val": roles.val, "unseen": roles.unseen,
            "n_train_clips": int(train_ids.size), "n_train_dropped": n_dropped,
            "n_val_clips": int(zero_shot.val_ids.size), "n_test_clips": int(test_ids.size),
        })
        fold = Fold(k=k, classes=classes, class_embeddings=class_embeddings, clips=clips, part=part, idx=idx,
                    zero_shot=zero_shot, store=store, model=opts.model, train=opts.train, aux=aux,
                    aux_targets=aux_targets, dataset=dataset, ground_truth=temporal, device=device,
                    anchor_store=None if anchor is None else anchor[0],
                    anchor_text=None if anchor is None else anchor[1])
        for system in opts.systems:
            fitted = get_system(system).fit(fold)
            scores = fitted.scores(fold)
            for kind, det in fitted.detection(fold).items():
                per_system[system]["temporal"].setdefault(kind, []).append({"fold": k, **det})
            extra = fitted.info_
            zsl, gzsl = _fold_scores(y_test, scores, classes, idx)
            per_system[system]["per_class"].update(zsl.pop("per_class"))
            per_system[system]["zsl"].append({"fold": k, **zsl, **extra})
            per_system[system]["gzsl"].append({"fold": k, **gzsl})
            if bar is not None:
                bar.update(1)
                bar.set_postfix(fold=k, system=system, zsl_map=round(zsl["map"] or float("nan"), 3))
    if bar is not None:
        bar.close()

    systems_out: dict[str, Any] = {}
    for system, runs in per_system.items():
        systems_out[system] = {
            "zsl": {**_summarise(runs["zsl"], ("map", "f1@1", "f1@3")), "folds": runs["zsl"],
                    "per_class": runs["per_class"]},
            "gzsl": {**_summarise(runs["gzsl"], ("map", "map_seen", "map_unseen", "f1@1", "f1@3")),
                     "folds": _clean(runs["gzsl"])},
        }
        if runs["temporal"]:
            systems_out[system]["temporal"] = {
                kind: {**_summarise(folds, _DETECTION_KEYS), "folds": folds} for kind, folds in runs["temporal"].items()
            }
    return {
        "dataset": str(getattr(dataset, "root", "")),
        "n_clips": int((~clips.failed).sum()),
        "n_classes": len(classes),
        "n_classes_without_clips": int((~present).sum()),
        "embedder": store.meta.identity(),
        "protocol": {"folds": opts.folds, "seed": opts.seed, "strict": opts.strict, "systems": list(opts.systems),
                     "split_counts": {k: int(v.size) for k, v in part.items()}},
        "model": opts.model,
        "train": opts.train.to_dict(),
        "distillation": None if aux is None else {"n_aux_classes": len(aux.names), "excluded": aux.excluded,
                                                  "positives_per_clip": float(np.asarray(aux.targets).sum(1).mean())},
        "systems": systems_out,
        "class_folds": fold_info,
        "seconds": round(time.perf_counter() - started, 2),
    }


def _clean(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]


def _fmt(value: float | None, std: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f} ± {std:.3f}" if std is not None else f"{value:.3f}"


def results_markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown table (mean ± std over folds)."""
    head = ("| system | ZSL mAP | ZSL F1@1 | ZSL F1@3 | GZSL mAP seen | GZSL mAP unseen | GZSL H | GZSL F1@1 |"
            " GZSL F1@3 |")
    lines = [head, "|" + "---|" * 9]
    for name, r in results["systems"].items():
        z, g = r["zsl"], r["gzsl"]
        cells = [_fmt(z["map"], z["map_std"]), _fmt(z["f1@1"], z["f1@1_std"]), _fmt(z["f1@3"], z["f1@3_std"]),
                 _fmt(g["map_seen"], g["map_seen_std"]), _fmt(g["map_unseen"], g["map_unseen_std"]),
                 _fmt(g["map"], g["map_std"]), _fmt(g["f1@1"], g["f1@1_std"]), _fmt(g["f1@3"], g["f1@3_std"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    temporal = [(name, kind, t) for name, r in results["systems"].items()
                for kind, t in r.get("temporal", {}).items()]
    if temporal:
        lines += ["", "Event detection of the unseen classes on the test clips (segment-based, 1 s segments; F1 at "
                  "the best threshold per class):", "",
                  "| system | detection score | segment F1 (best) | segment AP | segment AUROC |",
                  "|---|---|---|---|---|"]
        for name, kind, t in temporal:
            cells = [_fmt(t[k], t[f"{k}_std"]) for k in _DETECTION_KEYS]
            lines.append(f"| {name} | {kind} | " + " | ".join(cells) + " |")
    p = results["protocol"]
    lines.append("")
    lines.append(f"{results['n_clips']} clips, {results['n_classes']} classes, {p['folds']} class folds "
                 f"(seed {p['seed']}, {'strict' if p['strict'] else 'non-strict'}); mean ± std over folds.")
    return "\n".join(lines) + "\n"

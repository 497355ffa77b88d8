"""The systems the protocol compares, behind one interface.

A system is fitted on one class fold and then scores the fold's test clips for every class::

    system = get_system("attention")
    system.fit(fold)                      # fold: a Fold (training clips, classes, embeddings, options)
    scores = system.scores(fold)          # [N_test, C]
    system.detection(fold)                # {kind: metrics} of the unseen classes, where it applies
    system.info_                          # per-fold figures for results.json (best epoch, ...)

As in scikit-learn, constructors only store arguments and what fitting learns ends in ``_``. A new system is
one class registered in :data:`SYSTEMS`.

- ``zero_rule``: the label prior of the training clips (no audio): ``DummyClassifier(strategy="prior")``.
- ``mean``, ``max``, ``attention``: the pooled model trained on the seen classes (zero-shot).
- ``supervised``: the attention model trained with every class seen (the upper bound).
- ``semantic``: training-free transfer of YAMNet's class scores through label-embedding similarity (needs the
  distillation data).
- ``semantic_all``: the anchored model untrained: the semantic transfer over *all* of YAMNet's classes (the
  classes of the fold included, as for a user's label), pooled over time by attention.
- ``anchored_mean``, ``anchored``: the model anchored on YAMNet's class scores (:mod:`zeroshot_audio.model`),
  mean or attention pooling: it starts as the semantic transfer over all of YAMNet's classes, and training on
  the seen classes keeps a step only where the validation classes improve (needs the anchor: YAMNet's
  embeddings and logits side by side, and the embedded texts of its classes).
- ``yamnet_own``: the reference for labels that are AudioSet names: YAMNet's own score of the class, no text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import ParameterError
from ..model import ModelConfig

__all__ = ["Fold", "System", "ZeroRule", "PooledModel", "AnchoredModel", "SemanticTransfer", "YamnetOwn", "SYSTEMS",
           "ANCHOR_SYSTEMS", "NEEDS_DISTILL", "get_system"]


@dataclass(frozen=True)
class Fold:
    """What a system sees of one class fold.

    ``idx`` holds the class indices of the ``seen``, ``val`` and ``unseen`` roles; ``zero_shot`` is the clip
    selection of the zero-shot systems (seen classes, strict drop); ``part`` the clip ids of each split.
    """

    k: int
    classes: list[str]
    class_embeddings: np.ndarray
    clips: Any  # train.recipes.DatasetClips
    part: dict[str, np.ndarray]
    idx: dict[str, np.ndarray]
    zero_shot: Any  # train.recipes.Selection
    store: Any
    model: dict[str, Any]
    train: Any  # train.options.TrainOptions
    aux: Any = None
    aux_targets: np.ndarray | None = None
    dataset: Any = None
    ground_truth: dict[str, list[tuple[float, float, str]]] | None = None
    device: Any = None
    anchor_store: Any = None  # data.joined.JoinedStore: YAMNet embeddings then logits, rows as ``store``
    anchor_text: np.ndarray | None = None  # [K, Ds]: the embedded texts of the anchor classes

    @property
    def test_ids(self) -> np.ndarray:
        return self.part["test"]


class System:
    """Interface of a compared system (see the module docstring)."""

    name = "system"

    def fit(self, fold: Fold) -> System:
        return self

    def scores(self, fold: Fold) -> np.ndarray:  # pragma: no cover - the interface
        raise NotImplementedError

    def detection(self, fold: Fold) -> dict[str, dict[str, Any]]:
        """Event-detection metrics of the unseen classes by detection-score kind (none by default)."""
        return {}

    info_: dict[str, Any] = {}


class ZeroRule(System):
    """Scores every clip with the training label prior of each class: knows the labels, not the audio.

    Like ``sklearn.dummy.DummyClassifier(strategy="prior")``. Its AP for a class equals the class's
    prevalence among the test clips; its F1@k predicts the most frequent classes for every clip. Fitted
    directly on targets (``fit_targets``) or on a fold (the labels of all its training clips).
    """

    name = "zero_rule"

    def fit(self, fold: Fold) -> ZeroRule:
        return self.fit_targets(fold.clips.labels[fold.part["train"]])

    def fit_targets(self, targets: np.ndarray) -> ZeroRule:
        """``targets [N, C]``: multi-hot labels of the training clips."""
        targets = np.asarray(targets, dtype=bool)
        if targets.ndim != 2 or targets.shape[0] == 0:
            raise ParameterError(f"targets must be [N >= 1, C], got {targets.shape}")
        self.prior_ = targets.mean(axis=0)
        self.info_ = {}
        return self

    def predict_scores(self, n_clips: int) -> np.ndarray:
        """``[n_clips, C]``, every row the prior."""
        return np.broadcast_to(self.prior_, (n_clips, self.prior_.shape[0])).astype(np.float32)

    def scores(self, fold: Fold) -> np.ndarray:
        return self.predict_scores(fold.test_ids.size)


class SemanticTransfer(System):
    """Training-free: a label is scored by YAMNet's probabilities of its most similar AudioSet classes."""

    name = "semantic"

    def fit(self, fold: Fold) -> SemanticTransfer:
        if fold.aux is None:
            raise ParameterError("the semantic system needs YAMNet's class scores (distillation data)")
        self.info_ = {}
        return self

    def scores(self, fold: Fold) -> np.ndarray:
        return fold.aux.semantic_scores(fold.class_embeddings, fold.test_ids)


class PooledModel(System):
    """The paper's model with ``pooling`` (mean, max or attention), trained on the seen classes of the fold, or
    on every class with ``supervised=True`` (the upper bound)."""

    def __init__(self, pooling: str, *, supervised: bool = False, name: str | None = None):
        self.pooling = pooling
        self.supervised = supervised
        self.name = name or ("supervised" if supervised else pooling)

    def _store(self, fold: Fold) -> Any:
        return fold.store

    def _config(self, fold: Fold) -> ModelConfig:
        return ModelConfig(audio_dim=int(fold.store.meta.dim), text_dim=int(fold.class_embeddings.shape[1]),
                           pooling=self.pooling, **fold.model)

    def _init(self, fold: Fold) -> dict[str, np.ndarray] | None:
        return None

    def _uses_aux(self) -> bool:
        return True

    def fit(self, fold: Fold) -> PooledModel:
        from ..train.fit import fit

        classes = fold.classes
        config = self._config(fold)
        if self.supervised:
            tr_cls = va_cls = np.arange(len(classes))
            chosen = fold.clips.select(train_classes=tr_cls, val_classes=va_cls, extra_targets=fold.aux_targets)
        else:
            tr_cls, va_cls, chosen = fold.idx["seen"], fold.idx["val"], fold.zero_shot
        train_emb = fold.class_embeddings[tr_cls]
        train_set, val_set = chosen.train, chosen.val
        if fold.aux is not None and self._uses_aux():
            train_emb = np.concatenate([train_emb, fold.aux.embeddings], axis=0)
        elif fold.aux is not None:  # the selection carries the auxiliary targets: keep the dataset's own
            train_set = dataclasses.replace(train_set, targets=train_set.targets[:, : len(tr_cls)])
        store = self._store(fold)
        train_set = dataclasses.replace(train_set, store=store)
        if val_set is not None:
            val_set = dataclasses.replace(val_set, store=store)
        fitted = fit(config, train_set, train_emb, val=val_set, val_class_emb=fold.class_embeddings[va_cls],
                     options=dataclasses.replace(fold.train, seed=fold.train.seed + fold.k), init=self._init(fold))
        self.model_ = fitted.model
        self.history_ = fitted.history  # loss and validation mAP per epoch
        self.info_ = {"best_epoch": fitted.best_epoch, "val_map": fitted.best_val_map,
                      "train_seconds": round(fitted.seconds, 3), "n_train_clips": int(chosen.train_ids.size)}
        return self

    def scores(self, fold: Fold) -> np.ndarray:
        from ..train.fit import predict

        return predict(self.model_, self._store(fold), fold.clips.rows[fold.test_ids], fold.class_embeddings,
                       device=fold.device)

    def detection(self, fold: Fold) -> dict[str, dict[str, Any]]:
        """Segment-based detection of the unseen classes on the test clips (zero-shot systems only)."""
        if self.supervised or fold.ground_truth is None:
            return {}
        from ..events import detection_scores, frame_timestamps
        from ..train.fit import predict_segments
        from .detection import evaluate_detection

        unseen = fold.idx["unseen"]
        rows = fold.clips.rows[fold.test_ids]
        names = [fold.classes[i] for i in unseen]
        outputs = predict_segments(self.model_, self._store(fold), rows, fold.class_embeddings[unseen],
                                   device=fold.device)
        hop = float(fold.store.meta.hop)
        files = [fold.dataset.filenames[i] for i in fold.test_ids]
        durations = {f: float(fold.store.durations[r]) for f, r in zip(files, rows)}
        stamps = {f: frame_timestamps(len(o[0]), hop, durations[f]) for f, o in zip(files, outputs)}
        kinds = ("segment", "attention") if self.model_.config.pooling == "attention" else ("segment",)
        if self.model_.config.anchored:
            kinds = ("segment",)  # its segment scores are YAMNet's evidence for the label
        out = {}
        for kind in kinds:
            scores = {f: detection_scores(kind, *o) for f, o in zip(files, outputs)}
            det = evaluate_detection(scores, stamps, names, {f: fold.ground_truth.get(f, []) for f in files},
                                     durations)
            det.pop("per_class")
            out[kind] = det
        return out


class AnchoredModel(PooledModel):
    """The model anchored on YAMNet's class scores, trained on the seen classes of the fold (the dataset's own
    labels, not YAMNet's pseudo-labels: those would only teach it YAMNet's own scores back)."""

    #: Attention temperature of the anchored model (shared attention over its segment scores, in logits).
    TEMPERATURE = 0.25

    def __init__(self, pooling: str = "attention", *, trained: bool = True, name: str | None = None):
        super().__init__(pooling, name=name or ("anchored" if pooling == "attention" else f"anchored_{pooling}"))
        self.trained = trained

    def fit(self, fold: Fold) -> AnchoredModel:
        if self.trained:
            return super().fit(fold)
        from ..train.network import ZeroShotModel, numpy_to_state_dict

        model = ZeroShotModel(self._config(fold))
        state = model.state_dict()
        state.update(numpy_to_state_dict(self._init(fold)))
        model.load_state_dict(state)
        self.model_ = model.eval()
        self.info_ = {}
        return self

    def _store(self, fold: Fold) -> Any:
        if fold.anchor_store is None or fold.anchor_text is None:
            raise ParameterError(f"the {self.name} system needs YAMNet's embeddings and logits side by side and the "
                                 "texts of its classes (the distillation data)")
        return fold.anchor_store

    def _config(self, fold: Fold) -> ModelConfig:
        store = self._store(fold)
        audio_dim = int(fold.store.meta.dim)
        model = {k: v for k, v in fold.model.items() if k not in ("attention", "temperature")}
        return ModelConfig(audio_dim=audio_dim, text_dim=int(fold.class_embeddings.shape[1]), pooling=self.pooling,
                           attention="shared", temperature=self.TEMPERATURE,
                           anchor_dim=int(store.meta.dim) - audio_dim, **model)

    def _init(self, fold: Fold) -> dict[str, np.ndarray]:
        return {"anchor_text": np.asarray(fold.anchor_text, dtype=np.float32)}

    def _uses_aux(self) -> bool:
        return False


class YamnetOwn(System):
    """Training-free reference: YAMNet's own score for a class that is one of its AudioSet classes, the logit of
    its most confident segment (a class YAMNet lacks scores lowest). What a user gets from YAMNet's head alone
    when the label is an AudioSet name."""

    name = "yamnet_own"

    def fit(self, fold: Fold) -> YamnetOwn:
        if fold.anchor_store is None:
            raise ParameterError("the yamnet_own system needs YAMNet's logits (the distillation data)")
        self.info_ = {}
        return self

    def scores(self, fold: Fold) -> np.ndarray:
        from ..assets.fetch import yamnet_class_map_path
        from ..embedders.yamnet import read_yamnet_class_names
        from ..train.distill import yamnet_own_scores

        store = fold.anchor_store  # rows as fold.store's: YAMNet's embeddings, then its logits
        keys = [store.keys[i] for i in fold.clips.rows[fold.test_ids]]
        return yamnet_own_scores(store, keys, fold.classes, read_yamnet_class_names(yamnet_class_map_path()),
                                 column=slice(int(fold.store.meta.dim), None), missing=-1e9).astype(np.float32)


#: The systems of the protocol by name, in the order of its tables.
SYSTEMS: dict[str, Callable[[], System]] = {
    "zero_rule": ZeroRule,
    "mean": lambda: PooledModel("mean"),
    "max": lambda: PooledModel("max"),
    "attention": lambda: PooledModel("attention"),
    "supervised": lambda: PooledModel("attention", supervised=True),
    "semantic": SemanticTransfer,
    "semantic_all": lambda: AnchoredModel(trained=False, name="semantic_all"),
    "anchored_mean": lambda: AnchoredModel("mean"),
    "anchored": AnchoredModel,
    "yamnet_own": YamnetOwn,
}


#: The systems that read YAMNet's embeddings and logits side by side (``Fold.anchor_store``/``anchor_text``).
ANCHOR_SYSTEMS = frozenset({"semantic_all", "anchored_mean", "anchored", "yamnet_own"})
#: The systems that need YAMNet's class scores (the distillation data).
NEEDS_DISTILL = frozenset({"semantic"}) | ANCHOR_SYSTEMS


def get_system(name: str) -> System:
    """A new, unfitted system by name; an unknown name lists the valid ones."""
    make = SYSTEMS.get(name)
    if make is None:
        raise ParameterError(f"unknown system {name!r} (expected from: {', '.join(SYSTEMS)})")
    return make()

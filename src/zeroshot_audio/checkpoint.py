"""Model directories: a trained model that describes itself.

A model directory holds ``config.json`` (format version, model config, class list, the identity of the
embedder whose segment embeddings it reads and of the label encoder whose space its classes live in,
training information), ``weights.npz`` (the parameters by state-dict name, float32 arrays written with
``np.savez`` and read with ``allow_pickle=False``, so reading them never runs code) and
``class_embeddings.npy`` (the label embeddings of its classes, ``[C, Ds]``); a model adapted on example clips
(``zsa adapt``) also holds ``adapted.npz``, its per-label parameters (:class:`~zeroshot_audio.model.Adaptation`;
labels and provenance in ``info.adapted`` of ``config.json``). It is written to a temporary
directory and renamed, so a crash never leaves a partial model.

Directories written by older versions hold ``weights.pt`` (a torch state dict) instead of ``weights.npz``: they are
read through torch (``weights_only=True``) when torch is installed, and converted for good with
``python -m zeroshot_audio.train.convert DIR``. Reading a model and scoring with it never imports torch.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import CheckpointError, ParameterError, name_some, reads_user_data
from ._io import atomic_dir, read_npy_header, recover_dir
from .model import Adaptation, ModelConfig, NumpyModel, parameter_shapes, params_mismatch

__all__ = ["TrainedModel", "CHECKPOINT_FORMAT", "WEIGHTS", "OLD_WEIGHTS", "ADAPTED"]

log = logging.getLogger(__name__)

#: Bumped when the layout of a model directory changes incompatibly.
CHECKPOINT_FORMAT = 1
#: The weights of a model directory (numpy's .npz), and those of directories written before 0.2 (torch).
WEIGHTS, OLD_WEIGHTS = "weights.npz", "weights.pt"
#: The per-label parameters of a model adapted on example clips (``zsa adapt``).
ADAPTED = "adapted.npz"


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
            type(None): "null"}.get(type(value), type(value).__name__)


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_config_doc(doc: dict[str, Any], cfg_path: Path) -> None:
    """The JSON types of a model's ``config.json``: one line naming the file and the field when one is wrong."""

    def fail(field_name: str, expected: str, value: Any) -> CheckpointError:
        shown = repr(value) if not isinstance(value, (dict, list)) else _json_type(value)
        return CheckpointError(f"{cfg_path}: field {field_name}: expected {expected}, got {shown}")

    for key, kind, expected in (("model_config", dict, "an object"), ("classes", list, "a list of class names"),
                                ("embedder", dict, "an object"), ("label_encoder", dict, "an object")):
        if key not in doc:
            raise CheckpointError(f"{cfg_path}: field {key} is missing")
        if not isinstance(doc[key], kind):
            raise fail(key, expected, doc[key])
    if not isinstance(doc.get("info", {}), dict):
        raise fail("info", "an object", doc["info"])
    for i, c in enumerate(doc["classes"]):
        if not isinstance(c, str):
            raise fail(f"classes[{i}]", "a string", c)
    emb = doc["embedder"]
    if not isinstance(emb.get("embedder", ""), str):
        raise fail("embedder.embedder", "a string", emb["embedder"])
    if "hop" in emb and not (_finite_number(emb["hop"]) and emb["hop"] > 0):
        raise fail("embedder.hop", "a positive number of seconds", emb["hop"])
    cal = doc.get("info", {}).get("calibration")
    if cal is not None:
        if not isinstance(cal, dict):
            raise fail("info.calibration", "an object", cal)
        for key in ("scale", "bias"):
            if key in cal and not _finite_number(cal[key]):
                raise fail(f"info.calibration.{key}", "a finite number", cal[key])


@dataclass
class TrainedModel:
    """A fitted model with everything needed to use it on new data.

    Attributes
    ----------
    model : NumpyModel
        The parameters and the numpy forward. A torch ``ZeroShotModel`` (what training returns) is accepted
        too and converted to numpy parameters on creation; :meth:`torch_model` gives a torch module back.
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

    model: NumpyModel
    classes: list[str]
    class_embeddings: np.ndarray
    embedder: dict[str, Any]
    label_encoder: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.model, NumpyModel):
            if not callable(getattr(self.model, "state_dict", None)) or not isinstance(
                    getattr(self.model, "config", None), ModelConfig):
                raise ParameterError(f"model must be a NumpyModel or a ZeroShotModel, got {type(self.model).__name__}")
            from .train.network import state_dict_to_numpy

            self.model = NumpyModel(self.model.config, state_dict_to_numpy(self.model.state_dict()))
        self.class_embeddings = np.asarray(self.class_embeddings, dtype=np.float32)
        if self.class_embeddings.shape != (len(self.classes), self.model.config.text_dim):
            raise ParameterError(
                f"class_embeddings must be [{len(self.classes)}, {self.model.config.text_dim}], "
                f"got {self.class_embeddings.shape}"
            )

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def torch_model(self) -> Any:
        """A new torch :class:`~zeroshot_audio.train.network.ZeroShotModel` holding these parameters, in
        evaluation mode (to fine-tune or inspect it with torch; needs the ``[train]`` extra)."""
        try:
            from .train.network import ZeroShotModel, numpy_to_state_dict
        except ImportError as err:
            from ._errors import MissingDependencyError

            raise MissingDependencyError("TrainedModel.torch_model needs torch: pip install "
                                         "'zeroshot-audio[train]'") from err
        model = ZeroShotModel(self.config)
        model.load_state_dict(numpy_to_state_dict(self.model.params))
        return model.eval()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model directory at ``path`` (atomically replacing an existing model directory; any other
        non-empty directory is refused)."""
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
            with open(tmp / WEIGHTS, "wb") as f:
                np.savez(f, **self.model.params)
            np.save(tmp / "class_embeddings.npy", self.class_embeddings)
            adaptation = self.model.adaptation
            if adaptation is not None:
                if list((self.info.get("adapted") or {}).get("labels", [])) != list(adaptation.labels):
                    raise ParameterError("info['adapted']['labels'] must list the labels of the model's adaptation")
                with open(tmp / ADAPTED, "wb") as f:
                    np.savez(f, label_embeddings=adaptation.label_embeddings, weight=adaptation.weight,
                             bias=adaptation.bias)
            (tmp / "config.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    @reads_user_data("a model directory", CheckpointError)
    def load(cls, path: str | os.PathLike[str]) -> TrainedModel:
        """Read a model directory written by :meth:`save`.

        Every part is checked as it is read, and a problem is a :class:`CheckpointError` of one line naming the
        file (and the field of ``config.json``): wrong JSON types, weights that are not an archive of float
        arrays or do not fit the config, NaN or infinite weights, class embeddings or calibration parameters.
        A directory written by an older version (``weights.pt``) is read through torch when it is installed; without
        torch it is a :class:`CheckpointError` saying how to convert it.
        """
        path = Path(path)
        if recover_dir(path):  # a replacement of this model was killed half-way: the old model is back
            log.warning("%s: restored the model that an interrupted save had moved aside", path)
        if not path.is_dir():
            raise CheckpointError(f"{path}: not a model directory (it does not exist or is not a directory)")
        weights = path / WEIGHTS
        if not weights.is_file() and (path / OLD_WEIGHTS).is_file():
            weights = path / OLD_WEIGHTS
        for name in ("config.json", weights.name, "class_embeddings.npy"):
            if not (path / name).is_file():
                raise CheckpointError(f"{path}: incomplete model directory, {name} is missing")
        cfg_path, npy = path / "config.json", path / "class_embeddings.npy"
        try:
            doc = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{cfg_path}: unreadable ({err})") from None
        if not isinstance(doc, dict):
            raise CheckpointError(f"{cfg_path}: expected a JSON object, got {_json_type(doc)}")
        if doc.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{path}: model format {doc.get('format')!r}, this version of zeroshot-audio reads format "
                f"{CHECKPOINT_FORMAT}"
            )
        _check_config_doc(doc, cfg_path)
        try:
            config = ModelConfig.from_dict(doc["model_config"])
        except ParameterError as err:
            raise CheckpointError(f"{cfg_path}: field model_config: {err}") from None
        if weights.name == WEIGHTS:
            params = _read_npz(weights, config)  # names and shapes checked from the array headers
        else:
            params = _read_old_weights(weights)
            log.info("%s: read the weights.pt of an older zeroshot-audio through torch; convert it once with "
                     "`python -m zeroshot_audio.train.convert %s` to load it without torch", path, path)
            problem = params_mismatch(parameter_shapes(config), {k: v.shape for k, v in params.items()})
            if problem:
                raise CheckpointError(f"{weights}: the weights do not fit the model_config of {cfg_path.name} "
                                      f"({problem})")
        bad = [k for k, v in params.items() if not np.isfinite(v).all()]
        if bad:
            raise CheckpointError(f"{weights}: non-finite values (NaN or infinity) in {name_some(bad)}")
        model = NumpyModel(config, params, adaptation=_read_adaptation(path, doc, config))
        try:
            class_emb = np.load(npy, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            raise CheckpointError(f"{npy}: not a NumPy .npy array of class embeddings") from None
        if class_emb.dtype.kind not in "fiu":
            raise CheckpointError(f"{npy}: expected numbers, got an array of dtype {class_emb.dtype}")
        if class_emb.ndim == 2 and not np.isfinite(class_emb).all():
            row = int(np.flatnonzero(~np.isfinite(class_emb).all(axis=1))[0])
            raise CheckpointError(f"{npy}: non-finite values (NaN or infinity) in row {row}"
                                  + (f" (class {doc['classes'][row]!r})" if row < len(doc["classes"]) else ""))
        try:
            trained = cls(
                model=model,
                classes=list(doc["classes"]),
                class_embeddings=class_emb,
                embedder=dict(doc["embedder"]),
                label_encoder=dict(doc["label_encoder"]),
                info=dict(doc.get("info", {})),
            )
        except ParameterError as err:
            raise CheckpointError(f"{path}: damaged model directory ({err})") from None
        return trained

    def check_embedder(self, identity: dict[str, Any], *, name: str = "model") -> None:
        """Refuse an embedder (its ``identity()``) other than the one this model was trained on."""
        from .data.store import identity_mismatch

        problem = identity_mismatch(identity, self.embedder)
        if problem:
            raise CheckpointError(f"the embedder {problem} by {name}")

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
        settings), so that every label is represented the same way. A label with several wordings
        (``"dog barking|a dog barks"``, :data:`~zeroshot_audio.text.WORDING_SEPARATOR`) is the normalised mean of
        its wordings' embeddings.
        """
        from .text import average_wordings

        return average_wordings(labels, lambda texts: self._text_embeddings(texts, descriptions))

    def _text_embeddings(self, labels: list[str], descriptions: dict[str, str] | None) -> np.ndarray:
        known = dict(zip(self.classes, self.class_embeddings))
        if all(x in known for x in labels):
            return np.stack([known[x] for x in labels]) if labels else self.class_embeddings[:0]
        from .text import class_matrix, label_encoder_from_identity

        enc = self.label_encoder
        encoder = self.__dict__.get("_encoder")
        if encoder is None:  # built once per model (its graph is loaded once), not per batch of labels
            encoder = self.__dict__["_encoder"] = label_encoder_from_identity(enc)
        return class_matrix(encoder, labels, descriptions=descriptions, text=enc.get("text", "name"),
                            templates=enc.get("templates", "none"))

    def scores(self, store: Any, rows: np.ndarray, class_emb: np.ndarray | None = None, *, batch_size: int = 256,
               device: Any = None) -> np.ndarray:
        """Clip scores ``[N, C]`` of store rows for ``class_emb [C, Ds]`` (default: the model's own classes).

        Computed in numpy (:meth:`NumpyModel.scores`); ``device`` is accepted for compatibility and ignored.
        """
        emb = self.class_embeddings if class_emb is None else class_emb
        return self.model.scores(store, rows, emb, batch_size=batch_size)

    def segments(self, store: Any, rows: np.ndarray, class_emb: np.ndarray | None = None, *,
                 batch_size: int = 256) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per clip ``(segment_scores [T_i, C], attention [T_i, C], clip_scores [C])`` of store rows."""
        emb = self.class_embeddings if class_emb is None else class_emb
        return self.model.segments(store, rows, emb, batch_size=batch_size)


def _not_weights(weights: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{weights}: not a zeroshot-audio weights file ({why})")


def _read_npz(weights: Path, config: ModelConfig) -> dict[str, np.ndarray]:
    """The arrays of ``weights.npz`` (float32), read without pickle; names and shapes are checked from the array
    headers before any data is read, so a hostile file cannot make a large allocation."""
    import zipfile

    from ._errors import read_error_types

    expected = parameter_shapes(config)
    errors = (*read_error_types(), OSError, ValueError, KeyError)
    try:
        archive = np.load(weights, allow_pickle=False)
    except errors:
        raise _not_weights(weights, "not an .npz archive of arrays: empty, truncated or another kind of file") \
            from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _not_weights(weights, "a single array, not an .npz archive of named arrays")
    with archive:
        try:
            headers = {}
            for name in archive.files:
                if name not in expected:
                    continue
                with archive.zip.open(name + ".npy") as f:
                    headers[name] = read_npy_header(f)
            problem = params_mismatch(expected, {k: headers[k][0] if k in headers else () for k in archive.files})
            if problem:
                raise CheckpointError(f"{weights}: the weights do not fit the model_config of config.json ({problem})")
            for name, (_, dtype) in headers.items():
                if dtype.kind != "f":
                    raise _not_weights(weights, f"{name} holds {dtype} values, not floating-point numbers")
            return {name: np.asarray(archive[name], dtype=np.float32) for name in expected}
        except CheckpointError:
            raise
        except (*errors, zipfile.LargeZipFile) as err:
            from ._errors import describe_read_error

            raise _not_weights(weights, f"damaged archive: {describe_read_error(err)}") from None


def _read_adaptation(path: Path, doc: dict[str, Any], config: ModelConfig) -> Adaptation | None:
    """The :class:`~zeroshot_audio.model.Adaptation` of a model directory (``adapted.npz`` and the labels of
    ``info.adapted``), or None when it has none; a damaged one is a :class:`CheckpointError` naming the file."""
    file = path / ADAPTED
    meta = doc.get("info", {}).get("adapted")
    if not file.is_file():
        if meta is not None:
            raise CheckpointError(f"{path}: incomplete model directory, {ADAPTED} is missing (config.json records "
                                  "an adaptation)")
        return None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise CheckpointError(f"{path / 'config.json'}: field info.adapted.labels: expected a list of labels")
    n = len(labels)
    expected = {"label_embeddings": (n, config.text_dim), "weight": (n, config.input_dim), "bias": (n,)}
    try:
        with np.load(file, allow_pickle=False) as archive:
            shapes = {}
            for name in archive.files:
                with archive.zip.open(name + ".npy") as f:
                    shapes[name] = read_npy_header(f)
            problem = params_mismatch(expected, {k: v[0] for k, v in shapes.items()})
            if problem:
                raise CheckpointError(f"{file}: the adapted parameters do not fit {n} label(s) of this model "
                                      f"({problem})")
            if any(dtype.kind != "f" for _, dtype in shapes.values()):
                raise CheckpointError(f"{file}: expected floating-point arrays")
            arrays = {k: np.asarray(archive[k], dtype=np.float32) for k in expected}
    except CheckpointError:
        raise
    except Exception as err:  # numpy raises zip, value, OS and EOF errors for a file it cannot read
        from ._errors import describe_read_error

        raise CheckpointError(f"{file}: not an archive of adapted parameters ({describe_read_error(err)})") from None
    try:
        return Adaptation(labels=tuple(labels), **arrays)
    except ParameterError as err:
        raise CheckpointError(f"{file}: {err}") from None


def _read_old_weights(weights: Path) -> dict[str, np.ndarray]:
    """The state dict of a ``weights.pt`` written by an older version, through torch (``weights_only=True``)."""
    try:
        import torch
    except ImportError:
        path = weights.parent
        raise CheckpointError(
            f"{path}: written by an older version of zeroshot-audio (weights.pt, a torch file); converting it needs "
            f"torch once: pip install 'zeroshot-audio[train]', then python -m zeroshot_audio.train.convert {path}"
        ) from None
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of some garbage, over lines
            warnings.simplefilter("ignore")
            state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception:  # torch raises pickle, zip, EOF and runtime errors for a file it cannot read
        raise _not_weights(weights, "not a saved state dict of tensors: empty, truncated or another kind of file") \
            from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _not_weights(weights, f"it holds a {type(state).__name__}, not a state dict of tensors")
    return {str(k): v.detach().cpu().to(torch.float32).numpy() for k, v in state.items()}

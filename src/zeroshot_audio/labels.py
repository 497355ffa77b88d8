"""Label text -> embedding: the ``LabelEncoder`` interface, a disk cache, and the class matrix.

A label encoder turns texts into an L2-normalised matrix ``[N, D]``. Every class the model scores is seen
only through this matrix, which is why a label no model was trained on is scored like any other.

Encoders registered here:

- ``hashing``: bag-of-words hashing into fixed random word vectors (deterministic, no model). A lexical
  baseline and the encoder of the tests; it knows no meaning, so it is never a default.
- ``precomputed``: a fixed table ``text -> vector`` (planted data, or embeddings computed elsewhere).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ParameterError
from ._io import atomic_path

__all__ = [
    "LabelEncoder",
    "HashingLabelEncoder",
    "PrecomputedLabelEncoder",
    "CachedLabelEncoder",
    "available_label_encoders",
    "get_label_encoder",
    "class_texts",
    "class_matrix",
    "cache_dir",
    "TEMPLATES",
]

log = logging.getLogger(__name__)

#: Prompt template sets, as data: each ``{}`` receives the class text.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "none": ("{}",),
    "sound": ("the sound of {}", "a recording of {}", "{} can be heard", "this is the sound of {}"),
}


def cache_dir() -> Path:
    """The user cache directory: ``$ZSA_CACHE_DIR``, else ``$XDG_CACHE_HOME/zeroshot-audio``."""
    env = os.environ.get("ZSA_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "zeroshot-audio"


def _normalise_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return (m / np.maximum(norms, 1e-12)).astype(np.float32)


class LabelEncoder(ABC):
    """Turns label texts into an L2-normalised embedding matrix.

    Subclasses set ``name``, ``version`` and ``dim`` and implement :meth:`_encode`.
    """

    name: str = ""
    version: str = ""
    dim: int = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``.

        Returns
        -------
        np.ndarray [N, dim]
            float32, every row of unit norm.
        """
        if isinstance(texts, str):
            raise ParameterError("encode() takes a sequence of texts, got a single string")
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str) or not t.strip():
                raise ParameterError(f"label texts must be non-empty strings, got {t!r}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.asarray(self._encode(texts), dtype=np.float32)
        if out.shape != (len(texts), self.dim):
            raise RuntimeError(f"{self.name} returned shape {out.shape}, expected {(len(texts), self.dim)}")
        return _normalise_rows(out)

    @abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray: ...

    def identity(self) -> dict[str, Any]:
        """What identifies the embedding space: a model must be used with the encoder it was trained with."""
        return {"name": self.name, "version": self.version, "dim": int(self.dim)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, version={self.version!r}, dim={self.dim})"


_WORD = re.compile(r"[a-z0-9]+")


class HashingLabelEncoder(LabelEncoder):
    """Average of fixed pseudo-random word vectors (seeded by each word's SHA-256).

    Deterministic across machines and runs. Two texts are close only when they share words: a lexical
    baseline and the encoder used by tests, never a default.
    """

    name = "hashing"

    def __init__(self, dim: int = 64):
        if dim < 1:
            raise ParameterError(f"dim must be >= 1, got {dim}")
        self.dim = int(dim)
        self.version = "1"

    def _word_vector(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode("utf-8")).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(self.dim)

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim))
        for i, text in enumerate(texts):
            words = _WORD.findall(text.lower()) or [text]
            out[i] = np.mean([self._word_vector(w) for w in words], axis=0)
        return out


class PrecomputedLabelEncoder(LabelEncoder):
    """A fixed table of text embeddings; texts outside it raise :class:`ParameterError`."""

    name = "precomputed"

    def __init__(self, table: Mapping[str, np.ndarray], *, name: str = "precomputed"):
        if not table:
            raise ParameterError("a precomputed label encoder needs at least one entry")
        self._texts = list(table)
        self._matrix = np.stack([np.asarray(table[t], dtype=np.float32).ravel() for t in self._texts])
        self._row = {t: i for i, t in enumerate(self._texts)}
        self.name = name
        self.dim = int(self._matrix.shape[1])
        self.version = hashlib.sha256(self._matrix.tobytes() + "\0".join(self._texts).encode()).hexdigest()[:16]

    def _encode(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self._row]
        if missing:
            raise ParameterError(
                f"{len(missing)} text(s) have no precomputed embedding in {self.name!r}, e.g. {missing[0]!r}"
            )
        return self._matrix[[self._row[t] for t in texts]]


class CachedLabelEncoder(LabelEncoder):
    """Wraps an encoder with an on-disk cache keyed by encoder identity and text.

    Cached vectors live in ``directory`` (default ``cache_dir()/labels``), one ``.npy`` per text and
    encoder identity, each written atomically.
    """

    def __init__(self, encoder: LabelEncoder, directory: str | os.PathLike[str] | None = None):
        self.encoder = encoder
        self.name, self.version, self.dim = encoder.name, encoder.version, encoder.dim
        self.directory = Path(directory) if directory is not None else cache_dir() / "labels"
        self._prefix = json.dumps(encoder.identity(), sort_keys=True)

    def _path(self, text: str) -> Path:
        key = hashlib.sha256((self._prefix + "\0" + text).encode("utf-8")).hexdigest()
        return self.directory / key[:2] / f"{key}.npy"

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        todo: list[int] = []
        for i, text in enumerate(texts):
            path = self._path(text)
            try:
                vec = np.load(path)
                if vec.shape != (self.dim,):
                    raise ValueError(vec.shape)
                out[i] = vec
            except (OSError, ValueError):
                todo.append(i)
        if todo:
            unique = list(dict.fromkeys(texts[i] for i in todo))  # each missing text is encoded once
            fresh = dict(zip(unique, self.encoder.encode(unique)))
            for i in todo:
                out[i] = fresh[texts[i]]
            for text, vec in fresh.items():
                try:
                    with atomic_path(self._path(text)) as tmp:
                        with open(tmp, "wb") as f:
                            np.save(f, vec)
                except OSError as err:  # a read-only cache costs speed, not the run
                    log.warning("label cache %s not writable: %s", self.directory, err)
                    break
        return out


_REGISTRY: dict[str, Callable[..., LabelEncoder]] = {
    "hashing": HashingLabelEncoder,
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


def class_texts(
    labels: Sequence[str],
    *,
    descriptions: Mapping[str, str] | None = None,
    text: str = "name",
) -> list[str]:
    """The text that stands for each class.

    ``text="name"`` uses the label; ``"name+description"`` appends the class description when there is one.
    """
    if text not in ("name", "name+description"):
        raise ParameterError(f"unknown label text mode {text!r} (expected 'name' or 'name+description')")
    out = []
    for label in labels:
        desc = (descriptions or {}).get(label, "").strip()
        out.append(f"{label}. {desc}" if text == "name+description" and desc else label)
    return out


def class_matrix(
    encoder: LabelEncoder,
    labels: Sequence[str],
    *,
    descriptions: Mapping[str, str] | None = None,
    text: str = "name",
    templates: Sequence[str] | str = "none",
) -> np.ndarray:
    """The zero-shot class matrix: class texts x templates, embedded, averaged and normalised.

    Parameters
    ----------
    encoder : LabelEncoder
    labels : sequence of str
        Class names, ``C`` of them.
    descriptions : mapping, optional
        Class name -> description, used when ``text="name+description"``.
    text : {"name", "name+description"}
    templates : str or sequence of str
        A template set name from :data:`TEMPLATES` or templates with one ``{}`` each.

    Returns
    -------
    np.ndarray [C, D]
        float32, unit-norm rows.
    """
    if isinstance(templates, str):
        if templates not in TEMPLATES:
            raise ParameterError(f"unknown template set {templates!r} (available: {', '.join(TEMPLATES)})")
        templates = TEMPLATES[templates]
    templates = list(templates)
    if not templates or any("{}" not in t for t in templates):
        raise ParameterError("every template must contain '{}'")
    texts = class_texts(labels, descriptions=descriptions, text=text)
    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    flat = [t.format(x) for x in texts for t in templates]
    emb = encoder.encode(flat).reshape(len(texts), len(templates), encoder.dim).mean(axis=1)
    return _normalise_rows(emb)

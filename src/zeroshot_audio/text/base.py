"""The ``LabelEncoder`` interface, the lexical and fixed-table encoders, and the disk cache of label vectors.

A label encoder turns texts into an L2-normalised matrix ``[N, D]``. Every encoder's
:meth:`LabelEncoder.identity` holds its ``name``, ``version`` (which identifies the weights or the vector file),
``dim`` and the ``options`` it was built with; :class:`CachedLabelEncoder` keys its cache on that identity.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._cache import cache_dir
from .._errors import ParameterError
from .._io import atomic_path

__all__ = ["LabelEncoder", "HashingLabelEncoder", "PrecomputedLabelEncoder", "CachedLabelEncoder"]

log = logging.getLogger(__name__)


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

    def options(self) -> dict[str, Any]:
        """The keyword options (JSON-serialisable) that rebuild this encoder from the registry; ``{}`` here."""
        return {}

    def identity(self) -> dict[str, Any]:
        """What identifies the embedding space: a model must be used with the encoder it was trained with.

        ``{"name", "version", "dim", "options"}``; :func:`label_encoder_from_identity` rebuilds the encoder
        from it.
        """
        return {"name": self.name, "version": self.version, "dim": int(self.dim), "options": self.options()}

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

    def options(self) -> dict[str, Any]:
        """``{"dim": dim}``."""
        return {"dim": self.dim}

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
        self._directory = Path(directory) if directory is not None else None
        self._prefix = json.dumps(encoder.identity(), sort_keys=True)

    @property
    def directory(self) -> Path:
        """Where the vectors are cached: the given folder, else ``cache_dir()/labels`` as the environment says
        now (an encoder kept by a model follows a later change of ``$ZSA_CACHE_DIR``)."""
        return self._directory if self._directory is not None else cache_dir() / "labels"

    def options(self) -> dict[str, Any]:
        """The wrapped encoder's options."""
        return self.encoder.options()

    def identity(self) -> dict[str, Any]:
        """The wrapped encoder's identity: the cache changes no vector."""
        return self.encoder.identity()

    def _path(self, text: str) -> Path:
        key = hashlib.sha256((self._prefix + "\0" + text).encode("utf-8")).hexdigest()
        return self.directory / key[:2] / f"{key}.npy"

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        todo: list[int] = []
        for i, text in enumerate(texts):
            path = self._path(text)
            try:
                vec = np.load(path, allow_pickle=False)
                if vec.shape != (self.dim,) or vec.dtype.kind != "f":
                    raise ValueError(vec.shape)
            except (OSError, ValueError, EOFError):
                todo.append(i)
                continue
            if not np.isfinite(vec).all():
                log.warning("label cache entry %s of %r holds NaN or infinite values: discarded, encoded again",
                            path, text)
                todo.append(i)
                continue
            out[i] = vec
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


_DIGESTS: dict[tuple[str, int, int, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file, computed once per ``(path, inode, size, mtime, ctime)`` in this process."""
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    digest = _DIGESTS.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = _DIGESTS[key] = h.hexdigest()
    return digest

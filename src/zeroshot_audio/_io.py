"""Atomic file and directory writes: write under a temporary name, then rename.

A reader never sees a half-written results file, checkpoint or shard, and an interrupted run leaves
at most a stray temporary that the next run ignores.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


__all__ = [
    "atomic_path",
    "atomic_dir",
    "recover_dir",
    "write_text_atomic",
    "write_json_atomic",
    "sha256_file",
    "read_npy_header",
    "csv_text",
    "decode_text",
    "escape_surrogates",
    "unescape_surrogates",
]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    On an exception the temporary is removed and ``path`` is left as it was. With ``overwrite=False`` an
    existing ``path`` is never replaced: FileExistsError is raised instead (checked atomically with a hard
    link where the file system has them).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the user's usual mode
    try:
        yield tmp_path
        if overwrite:
            os.replace(tmp_path, path)
        else:
            _rename_noreplace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` unless ``dst`` exists (FileExistsError); atomic where hard links work."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError as e:  # no hard links on this file system: check, then rename (not atomic)
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "File exists", str(dst)) from None
        os.replace(src, dst)
        return
    src.unlink()


_OLD = ".old-"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is not inside a replacement while it recovers
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid > 0
    return True


def recover_dir(path: str | os.PathLike[str]) -> bool:
    """Finish or undo an :func:`atomic_dir` replacement of ``path`` that was interrupted.

    A replacement first renames the old directory to ``.NAME.old-PID`` and then the new one to ``NAME``;
    an interrupt (or a kill) between the two leaves no directory at ``path``. When ``path`` is missing
    and such an old directory of a process that no longer runs exists, it is renamed back; stale old
    directories beside an existing ``path`` are removed.

    Returns
    -------
    bool
        True when a directory was restored at ``path``.
    """
    path = Path(path)
    prefix = f".{path.name}{_OLD}"
    try:
        olds = [
            p
            for p in path.parent.iterdir()
            if p.name.startswith(prefix) and p.name[len(prefix) :].isdigit() and p.is_dir()
        ]
    except OSError:
        return False
    olds = [p for p in olds if not _pid_alive(int(p.name[len(prefix) :]))]
    if not olds:
        return False
    restored = False
    if not os.path.lexists(path):
        newest = max(olds, key=lambda p: p.stat().st_ctime)
        try:
            os.replace(newest, path)
            restored = True
            olds.remove(newest)
        except OSError:  # another process restored or replaced it meanwhile
            pass
    for p in olds:
        shutil.rmtree(p, ignore_errors=True)
    return restored


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``path``; on success it replaces ``path``.

    An existing directory at ``path`` is replaced only after the new one is complete. It is first renamed
    to ``.NAME.old-PID``: an exception between the two renames puts it back, and a replacement killed there
    is undone by :func:`recover_dir` (called here and where model directories are opened).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} exists")
            old = path.with_name(f".{path.name}{_OLD}{os.getpid()}")
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                if not os.path.lexists(path):
                    os.replace(old, path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def csv_text(rows) -> str:
    """Rows (sequences of values) as CSV text with ``\n`` line ends, quoting as the csv module does."""
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def decode_text(data: bytes, name: str) -> str:
    """The text of a file's bytes: UTF-8 (a leading BOM dropped), or UTF-16 when it starts with a UTF-16 BOM.

    Raises :class:`~zeroshot_audio.ParameterError` of one line naming ``name`` and the first line that is not
    UTF-8 (a Latin-1 file, say): ``"NAME: line 3 is not UTF-8 text; save it as UTF-8"``; a NUL byte (UTF-16
    without a byte order mark) is refused the same way.
    """
    import codecs

    from ._errors import ParameterError

    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as err:
            line = data[: err.start].decode("utf-16", errors="replace").count("\n") + 1
            raise ParameterError(f"{name}: line {line} is not UTF-16 text although the file starts with a "
                                 "UTF-16 byte order mark; save it as UTF-8") from None
    nul = data.find(b"\0")
    if nul >= 0:  # valid UTF-8, but no text file holds NUL: UTF-16 without its byte order mark, most likely
        line = data[:nul].count(b"\n") + 1
        raise ParameterError(f"{name}: line {line} holds a NUL byte (UTF-16 text without a byte order mark?); "
                             "save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ParameterError(f"{name}: line {line} is not UTF-8 text (byte 0x{data[err.start]:02x}); "
                             "save it as UTF-8") from None


_SURROGATE = re.compile("[\udc80-\udcff]")
_BACKSLASH_BEFORE_ESCAPE = re.compile(r"\\(?=x[0-9a-fA-F]{2})")
_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


def escape_surrogates(text: str) -> str:
    """``text`` printable and valid UTF-8: the undecodable bytes of a file name written as ``\\xNN``.

    A file name that is not valid UTF-8 reaches Python with each undecodable byte as a surrogate escape
    (U+DC80..U+DCFF, :func:`os.fsdecode`); such text cannot be written as UTF-8. Each one becomes ``\\xNN``
    (its byte in hex, as Python shows bytes), and a backslash that would read as such an escape becomes
    ``\\x5c``, so :func:`unescape_surrogates` gives back exactly the original. Other text is unchanged.
    """
    if "\\" not in text and not _SURROGATE.search(text):
        return text
    text = _BACKSLASH_BEFORE_ESCAPE.sub(r"\\x5c", text)
    return _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)


def unescape_surrogates(text: str) -> str:
    """The inverse of :func:`escape_surrogates`."""
    if "\\x" not in text:
        return text

    def back(m: re.Match) -> str:
        byte = int(m.group(1), 16)
        if byte == 0x5C:
            return "\\"
        return chr(0xDC00 + byte) if byte >= 0x80 else m.group()

    return _ESCAPE.sub(back, text)


def read_npy_header(f: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` from the header of a ``.npy`` stream at its start, leaving ``f`` at the data: the
    array is not read, so a hostile header cannot cause a large allocation. Raises ``ValueError`` for a format
    version other than 1.0 or 2.0 (what ``np.save`` writes)."""
    from numpy.lib import format as npy

    version = npy.read_magic(f)
    read = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}.get(version)
    if read is None:
        raise ValueError(f"unsupported .npy format version {version}")
    shape, _, dtype = read(f)
    return tuple(shape), dtype

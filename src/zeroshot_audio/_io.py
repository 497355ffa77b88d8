"""Atomic file and directory writes: write under a temporary name, then rename.

A reader never sees a half-written results file, checkpoint or shard, and an interrupted run leaves
at most a stray temporary that the next run ignores.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


__all__ = ["atomic_path", "atomic_dir", "write_text_atomic", "write_json_atomic", "sha256_file", "csv_text",
           "escape_surrogates", "unescape_surrogates"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    On an exception the temporary is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the user's usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``path``; on success it replaces ``path``.

    An existing directory at ``path`` is replaced only after the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} exists")
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
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

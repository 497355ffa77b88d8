"""The on-disk format of an embedding store: its meta, index files and their checks, shard headers, the
failures list and the writer lock (read by :mod:`zeroshot_audio.data.store` and
:mod:`zeroshot_audio.data.store_writer`)."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ParameterError, StoreError
from .._io import escape_surrogates, read_npy_header, unescape_surrogates, write_text_atomic

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: no writer lock
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("zeroshot_audio.data.store")

#: Version of the on-disk layout written by :class:`StoreWriter`.
STORE_FORMAT_VERSION = 1

_META = "meta.json"
_SHARDS = "shards"
_FAILURES = "failures.csv"
_LOCK = "writer.lock"
_DTYPES = ("float16", "float32")
_HOP_TOL = 1e-6
_SHARD_RE = re.compile(r"^(\d{5,})\.index\.json$")
_NPY_RE = re.compile(r"^(\d{5,})\.npy$")
#: Most shards kept memory-mapped at once by a reader (each holds a file descriptor).
_MAX_OPEN_SHARDS = 256
#: Largest offset or count an index may hold (far above any real shard; keeps sums exact in int64).
_MAX_ROWS = 1 << 48


@dataclass(frozen=True)
class StoreMeta:
    """What produced the embeddings of a store.

    Attributes
    ----------
    embedder : str
        Embedder name, e.g. ``"yamnet"``.
    embedder_version : str
        Embedder version or checksum.
    dim : int
        Embedding dimension D.
    hop : float
        Seconds between the starts of consecutive segments.
    sample_rate : int
        Sample rate (Hz) the embedder consumes.
    window : float or None
        Seconds covered by one segment (None: equal to ``hop``).
    dtype : str
        On-disk dtype, ``"float16"`` or ``"float32"``.
    extra : dict
        Free-form JSON-serialisable information (e.g. the embedder checksum).
    """

    embedder: str
    embedder_version: str
    dim: int
    hop: float
    sample_rate: int = 16000
    window: float | None = None
    dtype: str = "float16"
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.embedder, str) or not self.embedder:
            raise ParameterError(f"StoreMeta: embedder must be a non-empty string (got {self.embedder!r})")
        if not isinstance(self.embedder_version, str):
            raise ParameterError(
                f"StoreMeta: embedder_version must be a string (got {self.embedder_version!r})"
            )
        if isinstance(self.dim, bool) or not isinstance(self.dim, (int, np.integer)) or self.dim < 1:
            raise ParameterError(f"StoreMeta: dim must be a positive integer (got {self.dim!r})")
        if not _is_positive(self.hop):
            raise ParameterError(f"StoreMeta: hop must be a positive number of seconds (got {self.hop!r})")
        if (
            isinstance(self.sample_rate, bool)
            or not isinstance(self.sample_rate, (int, np.integer))
            or self.sample_rate < 1
        ):
            raise ParameterError(
                f"StoreMeta: sample_rate must be a positive integer (got {self.sample_rate!r})"
            )
        if self.window is not None and not _is_positive(self.window):
            raise ParameterError(
                f"StoreMeta: window must be None or a positive number of seconds (got {self.window!r})"
            )
        if self.dtype not in _DTYPES:
            raise ParameterError(
                f"StoreMeta: dtype {self.dtype!r} is not supported (expected one of: {', '.join(_DTYPES)})"
            )
        if not isinstance(self.extra, dict):
            raise ParameterError(f"StoreMeta: extra must be a dict (got {type(self.extra).__name__})")
        object.__setattr__(self, "dim", int(self.dim))
        object.__setattr__(self, "hop", float(self.hop))
        object.__setattr__(self, "sample_rate", int(self.sample_rate))
        if self.window is not None:
            object.__setattr__(self, "window", float(self.window))

    @property
    def segment_window(self) -> float:
        """Seconds covered by one segment (``window``, or ``hop`` when None)."""
        return self.hop if self.window is None else self.window

    def identity(self) -> dict[str, Any]:
        """Return what must match between a store and a model: ``{embedder, embedder_version, dim, hop}``."""
        return {
            "embedder": self.embedder,
            "embedder_version": self.embedder_version,
            "dim": self.dim,
            "hop": self.hop,
        }

    def to_json(self) -> dict[str, Any]:
        """Return the ``meta.json`` content (format version first, then the fields)."""
        return {"format_version": STORE_FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, obj: Any, *, source: str = "meta.json") -> StoreMeta:
        """Build from ``meta.json`` content; StoreError naming ``source`` when it is not valid."""
        if not isinstance(obj, dict):
            raise StoreError(f"{source}: expected a JSON object (got {type(obj).__name__})")
        version = obj.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise StoreError(f"{source}: missing or invalid format_version {version!r}")
        if version > STORE_FORMAT_VERSION:
            raise StoreError(
                f"{source}: store format version {version} is newer than this library supports"
                f" ({STORE_FORMAT_VERSION}); upgrade zeroshot-audio"
            )
        missing = [k for k in ("embedder", "embedder_version", "dim", "hop") if k not in obj]
        if missing:
            raise StoreError(f"{source}: missing field(s) {', '.join(missing)}")
        kwargs = {
            k: obj[k]
            for k in ("embedder", "embedder_version", "dim", "hop", "sample_rate", "window", "dtype", "extra")
            if k in obj
        }
        try:
            return cls(**kwargs)
        except ParameterError as e:
            raise StoreError(f"{source}: {e}") from None


def _is_positive(x: object) -> bool:
    return (
        not isinstance(x, bool)
        and isinstance(x, (int, float, np.integer, np.floating))
        and math.isfinite(float(x))
        and float(x) > 0
    )


def _describe(identity: dict[str, Any]) -> str:
    return (
        f"embedder {identity.get('embedder')} v{identity.get('embedder_version')}"
        f" (dim {identity.get('dim')}, hop {identity.get('hop')})"
    )


def _identity_differs(a: dict[str, Any], b: dict[str, Any]) -> bool:
    try:
        hop_differs = abs(float(a["hop"]) - float(b["hop"])) > _HOP_TOL
    except (KeyError, TypeError, ValueError):
        return True
    return (
        hop_differs
        or a.get("embedder") != b.get("embedder")
        or str(a.get("embedder_version")) != str(b.get("embedder_version"))
        or a.get("dim") != b.get("dim")
    )


def identity_mismatch(have: dict[str, Any], want: dict[str, Any]) -> str | None:
    """Compare two embedder identities (``{embedder, embedder_version, dim, hop}``; hop within 1e-6).

    Returns
    -------
    str or None
        None when they match, else ``"was made by <have> but <want> is expected"`` (one line).
    """
    if not _identity_differs(have, want):
        return None
    return f"was made by {_describe(have)} but {_describe(want)} is expected"


def _read_meta(root: Path) -> StoreMeta:
    path = root / _META
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{root}: not an embedding store (no {_META})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StoreError(f"{path}: cannot be read ({e})") from None
    return StoreMeta.from_json(obj, source=str(path))


def _shard_name(number: int) -> str:
    return f"{number:05d}"


def _list_shards(shard_dir: Path) -> list[tuple[int, Path]]:
    """Return ``(number, index path)`` of the completed shards, in shard order."""
    if not shard_dir.is_dir():
        return []
    found = []
    for p in shard_dir.iterdir():
        m = _SHARD_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def _index_field(obj: dict[str, Any], name: str, path: Path, what: str) -> list:
    value = obj.get(name)
    if not isinstance(value, list):
        got = "missing" if name not in obj else f"a JSON {_JSON_TYPES.get(type(value), 'null')}"
        raise StoreError(f"{path}: malformed shard index: field {name!r} must be a list of {what} (got {got})")
    return value


def _bad_entry(path: Path, name: str, what: str, values: list, i: int) -> StoreError:
    return StoreError(
        f"{path}: malformed shard index: field {name!r} must hold {what} (got {values[i]!r} at position {i})"
    )


def _index_ints(obj: dict[str, Any], name: str, path: Path, minimum: int) -> np.ndarray:
    values = _index_field(obj, name, path, "integers")
    if set(map(type, values)) <= {int}:  # exact ints (no bools or floats): range checked on the array
        try:
            arr = np.asarray(values, dtype=np.int64).reshape(len(values))
        except OverflowError:
            arr = None
        if arr is not None and (not arr.size or (arr.min() >= minimum and arr.max() <= _MAX_ROWS)):
            return arr
    what = f"integers >= {minimum}"
    bad = next(i for i, x in enumerate(values) if type(x) is not int or not minimum <= x <= _MAX_ROWS)
    raise _bad_entry(path, name, what, values, bad)


def _index_durations(obj: dict[str, Any], path: Path) -> np.ndarray:
    values = _index_field(obj, "durations", path, "numbers")
    if set(map(type, values)) <= {int, float}:
        try:
            arr = np.asarray(values, dtype=np.float64).reshape(len(values))
        except OverflowError:
            arr = None
        if arr is not None and (not arr.size or (np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 1e15)):
            return arr
    bad = next(
        i for i, x in enumerate(values) if type(x) not in (int, float) or not math.isfinite(x) or not 0 <= x <= 1e15
    )
    raise _bad_entry(path, "durations", "finite numbers of seconds >= 0", values, bad)


def _read_index(path: Path) -> dict[str, Any]:
    """Read and check one shard index; StoreError naming it and the field when malformed."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise StoreError(f"{path}: cannot be read ({e})") from None
    if not isinstance(obj, dict):
        raise StoreError(f"{path}: malformed shard index (expected a JSON object, got {type(obj).__name__})")
    version = obj.get("format_version", 1)
    if type(version) is int and version > STORE_FORMAT_VERSION:
        raise StoreError(
            f"{path}: shard format version {version} is newer than this library supports"
            f" ({STORE_FORMAT_VERSION}); upgrade zeroshot-audio"
        )
    keys = _index_field(obj, "keys", path, "strings")
    if not set(map(type, keys)) <= {str} or "" in keys:
        bad = next(i for i, k in enumerate(keys) if not isinstance(k, str) or not k)
        raise _bad_entry(path, "keys", "non-empty strings", keys, bad)
    offsets = _index_ints(obj, "offsets", path, 0)
    counts = _index_ints(obj, "counts", path, 1)
    durations = _index_durations(obj, path)
    n = len(keys)
    if not (len(offsets) == len(counts) == len(durations) == n):
        raise StoreError(
            f"{path}: malformed shard index (keys, offsets, counts, durations have lengths {n}, {len(offsets)},"
            f" {len(counts)}, {len(durations)}; expected equal)"
        )
    return {"keys": keys, "offsets": offsets, "counts": counts, "durations": durations}


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int, int]:
    """``(shape, dtype, data offset, file size)`` of a ``.npy`` file, reading only its header."""
    with open(path, "rb") as f:
        shape, dtype = read_npy_header(f)
        return shape, dtype, f.tell(), os.fstat(f.fileno()).st_size


def _shard_problem(npy_path: Path, index_path: Path, index: dict[str, Any], meta: StoreMeta) -> str | None:
    """Why shard ``npy_path`` cannot serve ``index`` (missing, unreadable, wrong dtype or shape, truncated,
    fewer rows than the index refers to), or None when it can. Reads only the ``.npy`` header."""
    if not npy_path.is_file():
        return f"{npy_path}: shard is missing (its index {index_path.name} exists)"
    try:
        shape, dtype, start, size = _npy_header(npy_path)
    except (OSError, ValueError, EOFError, SyntaxError) as e:
        if npy_path.stat().st_size == 0:
            return f"{npy_path}: shard is an empty file (0 bytes)"
        return f"{npy_path}: shard is not a readable .npy file ({e})"
    want = np.dtype(meta.dtype)
    if len(shape) != 2 or shape[1] != meta.dim or dtype != want:
        return f"{npy_path}: shard holds {dtype} {list(shape)} (expected {want} [rows, {meta.dim}])"
    expected = start + shape[0] * shape[1] * dtype.itemsize
    if size < expected:
        return f"{npy_path}: shard is truncated ({size} of {expected} bytes)"
    need = int((index["offsets"] + index["counts"]).max()) if index["keys"] else 0
    if shape[0] < need:
        return f"{npy_path}: shard has {shape[0]} rows but its index {index_path.name} refers to row {need - 1}"
    return None


def _foreign_entries(path: Path) -> list[str]:
    """Names in directory ``path`` that a store writer did not put there (its lock, temporaries, shards)."""
    return sorted(
        p.name
        for p in path.iterdir()
        if p.name not in (_LOCK, _SHARDS) and not (p.name.startswith(f".{_META}.") and p.name.endswith(".tmp"))
    )


def _lock_store(path: Path) -> Any:
    """Take the exclusive writer lock of store ``path``; return the open lock file (closing it unlocks).

    StoreError naming the holder's pid when another process holds it.
    """
    if fcntl is None:  # pragma: no cover
        return None
    lock_path = path / _LOCK
    f = open(lock_path, "a+", encoding="ascii")  # held open for the writer's lifetime
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read(32).strip()
        f.close()
        pid = holder if holder.isdigit() else "unknown"
        raise StoreError(
            f"store {path} is being written by another zsa process (pid {pid}, lock {lock_path});"
            " wait for it or use another --out"
        ) from None
    except OSError as e:  # a file system without locks: go on, as before locks existed
        logger.warning("%s: cannot lock the store (%s); make sure no other process writes it", lock_path, e)
        return f
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def _read_failures(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise StoreError(f"{path}: cannot be read ({e})") from None
    failures: dict[str, str] = {}
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for i, row in enumerate(reader):
            if i == 0 and row[:1] == ["key"]:
                continue
            if row:  # file names that are not UTF-8 were written escaped (see _write_failures)
                failures[unescape_surrogates(row[0])] = unescape_surrogates(row[1]) if len(row) > 1 else ""
    except csv.Error as e:
        raise StoreError(f"{path}:{reader.line_num}: malformed CSV ({e})") from None
    return failures


def _write_failures(path: Path, failures: dict[str, str]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["key", "reason"])
    # keys of files whose names are not valid UTF-8 hold surrogate escapes: written as \xNN, read back exactly
    writer.writerows((escape_surrogates(k), escape_surrogates(r)) for k, r in sorted(failures.items()))
    write_text_atomic(path, buf.getvalue())


# ---------------------------------------------------------------------------------------------- writer

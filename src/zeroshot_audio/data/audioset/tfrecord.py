"""The AudioSet released-features file format, without TensorFlow or protobuf.

TFRecord framing (``uint64`` length, masked CRC-32C of the length, data, masked CRC-32C of the data) and the
few ``tensorflow.SequenceExample`` protobuf messages of the release (context ``video_id``,
``start_time_seconds``, ``end_time_seconds``, ``labels``; feature list ``audio_embedding`` of 128 uint8 bytes
per 0.96 s frame) are decoded and encoded here. :func:`encode_sequence_example` and :func:`write_tfrecord`
write the same format (for tests and small hand-made data sets).
"""

from __future__ import annotations

import functools
import logging
import os
import stat
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..._errors import DataError, ParameterError
from ..._io import atomic_path

__all__ = [
    "EMBEDDING_BYTES",
    "AudioSetExample",
    "crc32c",
    "masked_crc32c",
    "read_tfrecord",
    "write_tfrecord",
    "encode_sequence_example",
    "decode_sequence_example",
    "dequantize",
    "clip_key",
]

logger = logging.getLogger(__name__)

#: Bytes per quantised embedding frame of the released features.
EMBEDDING_BYTES = 128


# ------------------------------------------------------------------------------------------------ CRC32C

_CRC_POLY = 0x82F63B78  # Castagnoli, reflected
_MASK_DELTA = 0xA282EAD8


@functools.lru_cache(maxsize=1)
def _crc_tables() -> tuple[list[int], list[int], list[int]]:
    """Byte table, and two 16-bit tables advancing the low / high half of the register by 32 bits."""

    def advance(values: np.ndarray, bits: int) -> list[int]:
        c = values.astype(np.uint32)
        poly = np.uint32(_CRC_POLY)
        for _ in range(bits):
            c = (c >> np.uint32(1)) ^ (poly * (c & np.uint32(1)))
        return c.tolist()

    x16 = np.arange(1 << 16, dtype=np.uint32)
    return advance(np.arange(256, dtype=np.uint32), 8), advance(x16, 32), advance(x16 << np.uint32(16), 32)


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-32C (Castagnoli) of ``data``, as used by TFRecord; ``crc`` continues an earlier value.

    Pure Python, four bytes per step with two 16-bit tables (built on first use).
    """
    byte_t, lo_t, hi_t = _crc_tables()
    mv = memoryview(data).cast("B")
    c = ~crc & 0xFFFFFFFF
    n4 = len(mv) // 4 * 4
    if n4:
        for w in np.frombuffer(mv[:n4], dtype="<u4").tolist():
            c ^= w
            c = lo_t[c & 0xFFFF] ^ hi_t[c >> 16]
    for b in mv[n4:]:
        c = byte_t[(c ^ b) & 0xFF] ^ (c >> 8)
    return ~c & 0xFFFFFFFF


def _mask(c: int) -> int:
    return (((c >> 15) | (c << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@functools.lru_cache(maxsize=1)
def _crc_tables_np() -> tuple[np.ndarray, np.ndarray]:
    _, lo_t, hi_t = _crc_tables()
    return np.array(lo_t, dtype=np.uint32), np.array(hi_t, dtype=np.uint32)


def _crc32c_many(items: Sequence[bytes], *, group: int = 256) -> list[int]:
    """CRC-32C of many byte strings, vectorised across them with numpy (same values as :func:`crc32c`).

    Strings of similar length are processed side by side, four bytes per step. Each is left-padded with
    zeros to a common width: zeros leave a zero register unchanged, and the initial ``0xffffffff`` is
    applied by complementing the string's first four bytes (equivalent for a linear CRC).
    """
    out = [0] * len(items)
    lo_t, hi_t = _crc_tables_np()
    order = sorted(range(len(items)), key=lambda i: len(items[i]))
    short = [i for i in order if len(items[i]) < 4]
    for i in short:
        out[i] = crc32c(items[i])
    order = order[len(short) :]
    for start in range(0, len(order), group):
        rows = order[start : start + group]
        width = -(-len(items[rows[-1]]) // 4) * 4
        buf = np.zeros((len(rows), width), dtype=np.uint8)
        for r, i in enumerate(rows):
            data = np.frombuffer(items[i], dtype=np.uint8)
            buf[r, width - data.size :] = data
            buf[r, width - data.size : width - data.size + 4] ^= np.uint8(0xFF)
        words = buf.view("<u4")
        c = np.zeros(len(rows), dtype=np.uint32)
        for j in range(words.shape[1]):
            c ^= words[:, j]
            c = lo_t[c & 0xFFFF] ^ hi_t[c >> 16]
        for r, value in zip(rows, c.tolist()):
            out[r] = value ^ 0xFFFFFFFF
    return out


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """The TFRecord masked CRC: ``rotate_right(crc32c(data), 15) + 0xa282ead8`` modulo 2**32."""
    return _mask(crc32c(data))


# ---------------------------------------------------------------------------------------------- TFRecord


@dataclass(frozen=True)
class _Record:
    number: int  # 0-based record number in the file
    offset: int  # byte offset of its header
    data: bytes | None  # None when the record is unusable
    error: str | None = None  # why; with data None
    fatal: bool = False  # the rest of the file cannot be read


def _iter_records(path: Path, *, verify: bool = True, batch: int = 256) -> Iterator[_Record]:
    """Yield the records of a TFRecord file, streaming; problems are yielded as records with an error.

    A bad data CRC skips that record (the framing is intact); truncation or a bad length CRC ends the file.
    Data CRCs are checked ``batch`` records at a time (vectorised), so memory stays bounded.
    """
    pending: list[tuple[int, int, bytes, int]] = []  # number, offset, data, stored masked CRC

    def flush() -> Iterator[_Record]:
        crcs = _crc32c_many([p[2] for p in pending]) if verify else []
        for k, (number, offset, data, stored) in enumerate(pending):
            if verify and _mask(crcs[k]) != stored:
                yield _Record(number, offset, None, "data CRC mismatch (corrupt record)")
            else:
                yield _Record(number, offset, data)
        pending.clear()

    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        file_size = st.st_size if stat.S_ISREG(st.st_mode) else None
        number = offset = size = 0
        while True:
            header = f.read(12)
            if not header:
                break
            if len(header) < 12:
                yield from flush()
                yield _Record(number, offset, None, f"truncated: {len(header)} of 12 header bytes", True)
                return
            length, length_crc = struct.unpack("<QI", header)
            if verify and masked_crc32c(header[:8]) != length_crc:
                yield from flush()
                yield _Record(number, offset, None, "length CRC mismatch (corrupt framing)", True)
                return
            remaining = None if file_size is None else file_size - offset - 12
            if remaining is not None and length + 4 > remaining:  # never allocate what the file cannot hold
                yield from flush()
                yield _Record(number, offset, None, f"truncated: {remaining} of {length + 4} data bytes", True)
                return
            data = f.read(length)
            footer = f.read(4) if len(data) == length else b""
            if len(footer) < 4:
                yield from flush()
                got = len(data) + len(footer)
                yield _Record(number, offset, None, f"truncated: {got} of {length + 4} data bytes", True)
                return
            pending.append((number, offset, data, struct.unpack("<I", footer)[0]))
            size += length
            number += 1
            offset += 16 + length
            if len(pending) >= batch or size >= 1 << 22:
                yield from flush()
                size = 0
    yield from flush()


def read_tfrecord(path: str | os.PathLike[str], *, verify: bool = True) -> Iterator[bytes]:
    """Yield the records of a TFRecord file, streaming.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.tfrecord`` file (uncompressed).
    verify : bool, default True
        Check the CRC32C of every length and record.

    Raises
    ------
    DataError
        At the first truncated or corrupt record (the message names file, record number and byte offset).
    """
    path = Path(path)
    for rec in _iter_records(path, verify=verify):
        if rec.data is None:
            raise DataError(f"{path}: record {rec.number} (byte {rec.offset}): {rec.error}")
        yield rec.data


def _frame(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def write_tfrecord(path: str | os.PathLike[str], records: Iterable[bytes]) -> int:
    """Write serialised records (e.g. from :func:`encode_sequence_example`) as an uncompressed TFRecord file.

    The file is written atomically; TensorFlow's ``tf.data.TFRecordDataset`` reads it.

    Returns
    -------
    int
        Number of records written.
    """
    n = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        for data in records:
            f.write(_frame(bytes(data)))
            n += 1
    return n


# ---------------------------------------------------------------------------------------------- protobuf
# Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 (3/4, groups, are not used by these messages).


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise DataError("protobuf: varint runs past the end of its message")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise DataError("protobuf: varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(field number, wire type, value)``: an int for varints, bytes otherwise."""
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise DataError("protobuf: field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
            continue
        if wire == 2:
            size, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
        else:
            raise DataError(f"protobuf: unsupported wire type {wire} (field {number})")
        if pos + size > end:
            raise DataError(f"protobuf: field {number} runs past the end of its message")
        yield number, wire, buf[pos : pos + size]
        pos += size


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_feature(buf: bytes) -> tuple[str, list]:
    """Decode a ``tf.train.Feature``: ``('bytes'|'float'|'int64', values)`` (an empty Feature: bytes, [])."""
    kind, values = "bytes", []  # a repeated occurrence of the same member merges: its values append
    for number, wire, value in _fields(buf):
        if wire != 2 or number not in (1, 2, 3):
            continue  # unknown field: skipped, as protobuf does
        if ("bytes", "float", "int64")[number - 1] != kind:  # oneof: setting another member clears it
            kind, values = ("bytes", "float", "int64")[number - 1], []
        for n, w, v in _fields(value):
            if n != 1:
                continue
            if kind == "bytes" and w == 2:
                values.append(bytes(v))
            elif kind == "float" and w == 2:  # packed
                if len(v) % 4:
                    raise DataError("protobuf: packed float list length is not a multiple of 4")
                values.extend(np.frombuffer(v, dtype="<f4").tolist())
            elif kind == "float" and w == 5:
                values.append(struct.unpack("<f", v)[0])
            elif kind == "int64" and w == 2:  # packed
                pos = 0
                while pos < len(v):
                    x, pos = _varint(v, pos)
                    values.append(_int64(x))
            elif kind == "int64" and w == 0:
                values.append(_int64(v))
            else:
                raise DataError(f"protobuf: wire type {w} is invalid in a {kind} list")
    return kind, values


def _decode_map(buf: bytes) -> dict[str, bytes]:
    """Decode ``map<string, Message>`` field 1 of ``buf`` (Features, FeatureLists): key -> value bytes."""
    out: dict[str, bytes] = {}
    for number, wire, entry in _fields(buf):
        if number != 1 or wire != 2:
            continue
        key, value = "", b""
        for n, w, v in _fields(entry):
            if n == 1 and w == 2:
                try:
                    key = bytes(v).decode("utf-8")
                except UnicodeDecodeError:
                    raise DataError("protobuf: a feature name is not UTF-8") from None
            elif n == 2 and w == 2:
                value = bytes(v)
        out[key] = value  # later entries win, as in protobuf map parsing
    return out


@dataclass
class AudioSetExample:
    """One clip of the AudioSet released features.

    Attributes
    ----------
    video_id : str
        YouTube id.
    start, end : float or None
        Segment start and end in seconds within the video (None when the record lacks them).
    labels : tuple of int
        Indices into the 527 classes.
    embeddings : numpy.ndarray
        ``[T, 128]`` uint8 quantised embeddings, one per 0.96 s.
    """

    video_id: str
    start: float | None
    end: float | None
    labels: tuple[int, ...]
    embeddings: np.ndarray = field(repr=False)


def _context(buf: bytes) -> tuple[str, float | None, float | None, tuple[int, ...], bytes | None]:
    # A message field that occurs twice is merged, which is what parsing the concatenation does.
    context, lists = b"", None
    for number, wire, value in _fields(buf):
        if wire == 2 and number == 1:
            context += value
        elif wire == 2 and number == 2:
            lists = (lists or b"") + value
    features = _decode_map(context)

    def get(name: str, kind: str) -> list:
        if name not in features:
            return []
        got, values = _decode_feature(features[name])
        if got != kind and values:
            raise DataError(f"context feature {name!r} is a {got} list (expected {kind})")
        return values

    ids = get("video_id", "bytes")
    try:
        video_id = ids[0].decode("utf-8") if ids else ""
    except UnicodeDecodeError:
        raise DataError("video_id is not UTF-8") from None
    start, end = get("start_time_seconds", "float"), get("end_time_seconds", "float")
    labels = tuple(int(x) for x in get("labels", "int64"))
    return video_id, (start[0] if start else None), (end[0] if end else None), labels, lists


def _embeddings(lists: bytes | None) -> np.ndarray:
    if lists is None:
        return np.zeros((0, EMBEDDING_BYTES), dtype=np.uint8)
    frames = _decode_map(lists).get("audio_embedding")
    if frames is None:
        return np.zeros((0, EMBEDDING_BYTES), dtype=np.uint8)
    rows: list[bytes] = []
    for number, wire, value in _fields(frames):
        if number != 1 or wire != 2:
            continue
        kind, values = _decode_feature(value)
        if kind != "bytes" or len(values) != 1 or len(values[0]) != EMBEDDING_BYTES:
            what = f"{len(values[0])} bytes" if kind == "bytes" and len(values) == 1 else f"{len(values)} {kind}s"
            raise DataError(
                f"audio_embedding frame {len(rows)} holds {what} (expected one {EMBEDDING_BYTES}-byte string)"
            )
        rows.append(values[0])
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), EMBEDDING_BYTES)


def decode_sequence_example(data: bytes) -> AudioSetExample:
    """Decode a serialised ``tensorflow.SequenceExample`` of the AudioSet released features.

    Reads the context features ``video_id``, ``start_time_seconds``, ``end_time_seconds``, ``labels`` and the
    feature list ``audio_embedding``; other features are ignored. Packed and unpacked repeated fields are
    both accepted.

    Raises
    ------
    DataError
        The bytes are not a well-formed message, or a feature has an unexpected type or size.
    """
    video_id, start, end, labels, lists = _context(bytes(data))
    return AudioSetExample(video_id, start, end, labels, _embeddings(lists))


def _key_value(key: str, value: bytes) -> bytes:
    k = key.encode("utf-8")
    return _ld(1, k) + _ld(2, value)


def _tag(number: int, wire: int) -> bytes:
    return _enc_varint(number << 3 | wire)


def _enc_varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64: ten-byte two's complement
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _ld(number: int, payload: bytes) -> bytes:
    return _tag(number, 2) + _enc_varint(len(payload)) + payload


def _feature_bytes(values: Sequence[bytes]) -> bytes:
    return _ld(1, b"".join(_ld(1, bytes(v)) for v in values))  # Feature{bytes_list{value}}


def _feature_floats(values: Sequence[float]) -> bytes:
    packed = np.asarray(values, dtype="<f4").tobytes()
    return _ld(2, _ld(1, packed) if packed else b"")


def _feature_int64(values: Sequence[int]) -> bytes:
    packed = b"".join(_enc_varint(int(v)) for v in values)
    return _ld(3, _ld(1, packed) if packed else b"")


def encode_sequence_example(
    video_id: str,
    start: float,
    end: float,
    labels: Sequence[int],
    embeddings_uint8: np.ndarray,
) -> bytes:
    """Serialise one clip as a ``tensorflow.SequenceExample`` in the layout of the AudioSet release.

    Parameters
    ----------
    video_id : str
        YouTube id.
    start, end : float
        Segment start and end in seconds (stored as float32).
    labels : sequence of int
        Class indices (int64, packed).
    embeddings_uint8 : numpy.ndarray
        ``[T, 128]`` uint8; each row becomes one ``audio_embedding`` frame (T may be 0).

    Returns
    -------
    bytes
        The message, with the standard field numbers, packed encoding and sorted map keys: the same bytes
        as protobuf's deterministic serialisation.

    Raises
    ------
    ParameterError
        ``embeddings_uint8`` is not ``[T, 128]`` uint8.
    """
    emb = np.asarray(embeddings_uint8)
    if emb.dtype != np.uint8 or emb.ndim != 2 or emb.shape[1] != EMBEDDING_BYTES:
        raise ParameterError(
            f"encode_sequence_example: embeddings_uint8 has dtype {emb.dtype}, shape {emb.shape}"
            f" (expected uint8 [T, {EMBEDDING_BYTES}])"
        )
    features = {
        "video_id": _feature_bytes([video_id.encode("utf-8")]),
        "start_time_seconds": _feature_floats([start]),
        "end_time_seconds": _feature_floats([end]),
        "labels": _feature_int64(labels),
    }
    # map entries sorted by key, as protobuf's deterministic serialisation writes them
    context = b"".join(_ld(1, _key_value(k, features[k])) for k in sorted(features))
    frames = b"".join(_ld(1, _feature_bytes([row.tobytes()])) for row in emb)
    lists = _ld(1, _key_value("audio_embedding", frames))
    return _ld(1, context) + _ld(2, lists)


def dequantize(q: np.ndarray) -> np.ndarray:
    """Invert the AudioSet/VGGish uint8 quantisation: ``x = q * 4 / 255 - 2`` (float32).

    The release quantised the PCA-whitened VGGish embeddings as ``uint8((clip(x, -2, 2) + 2) * 255 / 4)``;
    this undoes that step only (values clipped to [-2, 2] stay clipped, the rounding error is at most
    4/255). The result is still the PCA-whitened 128-d embedding the release contains; the PCA is not
    undone.
    """
    return np.asarray(q, dtype=np.float32) * np.float32(4.0 / 255.0) - np.float32(2.0)


def clip_key(video_id: str, start: float) -> str:
    """Store key and dataset filename of a clip: ``f"{video_id}_{start in whole milliseconds}"``.

    The start is rounded to the nearest millisecond (the release stores it as float32).
    """
    return f"{video_id}_{int(round(start * 1000))}"

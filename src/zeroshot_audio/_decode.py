"""Decoding files with soundfile (libsndfile) for :mod:`zeroshot_audio.audio`: opening a file (with the reason
when it cannot be), reading it in mono blocks, salvaging a cut FLAC file, and the decoders' stderr chatter turned
into one logged warning. soundfile is imported only when a file is opened."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._errors import AudioError

if TYPE_CHECKING:
    import soundfile

logger = logging.getLogger("zeroshot_audio.audio")


def _one_line(err: BaseException) -> str:
    """The libsndfile reason of ``err`` (or its message) on one line."""
    text = getattr(err, "error_string", None) or str(err) or type(err).__name__
    return " ".join(text.split())


_STDERR_LOCK = threading.Lock()
#: What the decoders (libmpg123 through libsndfile) write to stderr when they skip damaged data.
_DECODER_NOISE = re.compile(r"^(Note|Warning|Error): |^\[src/libmpg123/|^\[.*mpg123.*\] |\b(error|warning): ")


@contextlib.contextmanager
def _native_stderr(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Capture what native code writes to file descriptor 2 meanwhile; report the decoder's chatter as one warning.

    libmpg123 (MP3 through libsndfile) prints notes such as ``Note: Illegal Audio-MPEG-Header ... Trying to
    resync...`` straight to fd 2, around our output and progress bar. They become one logged warning naming
    the file; other captured text is written back to stderr unchanged.
    """
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all: nothing to capture
            yield
            return
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
    if not text:
        return
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    noise = [ln for ln in lines if _DECODER_NOISE.search(ln)]
    other = [ln for ln in lines if not _DECODER_NOISE.search(ln)]
    if noise:
        first = noise[0].removeprefix("Note: ").removeprefix("Warning: ")
        logger.warning("%s: the decoder reported %d problem(s) while %s, the first: %s",
                       path, len(noise), what, first)
    if other:
        try:
            sys.stderr.write("\n".join(other) + "\n")
        except (AttributeError, OSError, ValueError):
            pass


def os_reason(err: OSError) -> str:
    """A short lower-case reason for a failed file system call (``"permission denied"``, ``"symlink loop"``)."""
    import errno

    if err.errno == errno.ELOOP:
        return "symlink loop (too many levels of symbolic links)"
    if err.errno:
        return os.strerror(err.errno).lower()
    return _one_line(err)


def _file_kind(mode: int) -> str:
    import stat

    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return kind
    return "not a regular file"


def _open(path: str | os.PathLike[str]) -> soundfile.SoundFile:
    """Open ``path`` for reading; AudioError when it is missing, not a regular file, or not readable audio."""
    import stat

    import soundfile as sf

    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise AudioError(f"audio file {path}: no such file") from None
    except OSError as err:
        raise AudioError(f"audio file {path}: cannot be read ({os_reason(err)})") from None
    if stat.S_ISDIR(mode):
        raise AudioError(f"audio file {path}: is a directory, not an audio file")
    if not stat.S_ISREG(mode):  # opening a FIFO would wait for a writer forever
        raise AudioError(f"audio file {path}: is {_file_kind(mode)}, not a regular file")
    try:
        with _native_stderr(path, "opening it"):
            return sf.SoundFile(os.fsencode(p))  # bytes: names that are not valid UTF-8 open too
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError) as err:
        try:  # libsndfile says "System error." when the OS refused: name the OS's reason instead
            with open(p, "rb"):
                pass
        except OSError as os_err:
            raise AudioError(f"audio file {path}: cannot be read ({os_reason(os_err)})") from None
        raise AudioError(f"audio file {path}: not an audio file or unreadable header ({_one_line(err)})") from None


def _downmix(frames: np.ndarray) -> np.ndarray:
    """``[frames, channels]`` samples -> float32 mono ``[frames]``: the mean of the channels (the one mixdown)."""
    if frames.shape[1] == 1:
        return np.array(frames[:, 0], dtype=np.float32)
    return frames.mean(axis=1, dtype=np.float32)


def _read_mono(f: soundfile.SoundFile, path: str | os.PathLike[str], block_frames: int,
               limit: int | None = None) -> Iterator[np.ndarray]:
    """Decode ``f`` from its current position in reads of ``block_frames``, yielding mono blocks.

    Yields float32 arrays ``[m]`` (``m <= block_frames``, the mean of the channels) at the file's rate.
    Stops after ``limit`` frames when given. Raises AudioError on a decode error, on NaN/inf samples and
    when nothing at all could be decoded.
    """
    import soundfile as sf

    rate = f.samplerate
    announced = f.frames
    pos = 0
    warned_range = False
    chatty = str(f.format) == "MP3"  # libmpg123 writes its notes on damaged frames to stderr
    while limit is None or pos < limit:
        want = block_frames if limit is None else min(block_frames, limit - pos)
        cut = False
        try:
            if chatty:
                with _native_stderr(path, f"decoding {pos / rate:.2f} s to {(pos + want) / rate:.2f} s"):
                    block = f.read(want, dtype="float32", always_2d=True)
            else:
                block = f.read(want, dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError, OSError, ValueError) as err:
            block = _salvage_truncated(path, announced, pos, want) if f.format == "FLAC" else None
            if block is None:
                raise AudioError(f"audio file {path}: decode error between {pos / rate:.2f} s and "
                                 f"{(pos + want) / rate:.2f} s ({_one_line(err)})") from None
            cut = True
        n = block.shape[0]
        if n == 0:
            break  # (a cut file whose last read salvaged nothing ends here too)
        mono = _downmix(block)
        del block
        finite = np.isfinite(mono)
        if not finite.all():
            first = pos + int(np.argmin(finite))
            raise AudioError(f"audio file {path}: contains NaN/inf samples (first at {first / rate:.3f} s)")
        if not warned_range:
            peak = float(np.max(np.abs(mono)))
            if peak > 1.0:
                logger.warning("%s: samples beyond full scale (peak %.3g) are clipped to [-1, 1]", path, peak)
                warned_range = True
        pos += n
        yield mono
        if n < want or cut:  # a short read: the decoder has no more data
            break
    if pos == 0:
        raise AudioError(f"audio file {path}: zero length (nothing decodable; the header announces "
                         f"{announced} frames)")
    if (limit is None or pos < limit) and pos < announced:
        logger.warning("%s: decoded %d of the %d frames the header announces (truncated file?)",
                       path, pos, announced)


def _salvage_truncated(path: str | os.PathLike[str], frames: int, pos: int, want: int) -> np.ndarray | None:
    """After a decode error at frame ``pos``: the frames that still decode from ``pos`` on, when the file was
    cut short (``[m, channels]``, possibly ``m == 0``); None when it is damaged inside instead.

    A FLAC file whose end is missing fails to decode at the cut (WAV, OGG and MP3 give a short read
    instead), and libsndfile's read loses the whole request. The file counts as cut when its last frames
    cannot be reached (a damaged body decodes again after the damage); the frames before the cut are then
    re-read in small pieces from a fresh handle.
    """
    import soundfile as sf

    errors = (sf.SoundFileError, RuntimeError, OSError, ValueError)
    try:
        with sf.SoundFile(str(path)) as g:
            g.seek(max(pos + 1, frames - 1024))
            if g.read(1024, dtype="float32", always_2d=True).shape[0] > 0:
                return None
    except errors:
        pass  # the end is unreachable: the file was cut short
    pieces: list[np.ndarray] = []
    got = 0
    try:
        with sf.SoundFile(str(path)) as g:
            g.seek(pos)
            while got < want:
                piece = g.read(min(1024, want - got), dtype="float32", always_2d=True)
                if piece.shape[0] == 0:
                    break
                pieces.append(piece)
                got += piece.shape[0]
    except errors:
        pass  # the cut: keep what was read before it
    return np.concatenate(pieces) if pieces else np.zeros((0, 1), np.float32)


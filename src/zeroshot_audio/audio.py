"""Audio decoding: any file libsndfile reads, as a float32 mono waveform at the embedder's sample rate.

Every function returns what :meth:`zeroshot_audio.embedders.base.Embedder.embed` takes: a 1-D float32
array at ``sample_rate`` (16 kHz by default) with values in [-1, 1].

* Decoding is done by ``soundfile`` (libsndfile: WAV, FLAC, OGG Vorbis/Opus, MP3, AIFF, ...). Integer PCM
  (8/16/24/32-bit) is scaled to [-1, 1] by libsndfile; float files are read as they are.
* Multichannel audio is mixed down to mono as the mean of the channels (one helper for files and for arrays;
  arrays passed to the API are ``[samples]`` or ``[samples, channels]``, see :func:`mono_waveform`).
* When the file's rate differs from ``sample_rate`` the signal is resampled with ``soxr`` (quality
  ``"HQ"``); otherwise samples are passed through untouched.
* The result is clipped to [-1, 1]: resampling can overshoot full-scale content slightly, and a float file
  can hold values beyond full scale (logged as a warning, once per file).

:func:`stream_audio` yields the same signal in fixed-size blocks while holding at most about two blocks in
memory, so a long recording is never decoded whole. ``soxr.ResampleStream`` and ``soxr.resample`` give
bit-identical output here (soxr 1.1: maximum difference 0.0 for 8, 22.05, 44.1 and 48 kHz inputs and any
block size), so the concatenated blocks equal :func:`load_audio` exactly, length included.

Errors
------
:class:`~zeroshot_audio.AudioError` (one line, naming the file) for: a missing file; a file that is not audio
or whose header cannot be read; a file with zero frames or nothing decodable; NaN/inf samples; a decode error
inside the file (corrupt FLAC/MP3 body). A file whose data stops before the length its header announces (a
truncated download) is not an error: what is there is decoded (WAV: the header length is corrected on
open; MP3: decoding stops early; FLAC: the frames before the cut are re-read when the file's end cannot be
reached, which tells a cut file from a damaged body) and a warning naming the file is logged. A silent file
is valid audio: see :func:`is_silent` for callers that want to warn.

Where things are: this module holds the API on files and arrays (:func:`load_audio`, :func:`stream_audio`,
:func:`audio_info`, :func:`waveform_at`, :func:`mono_waveform`, :func:`is_silent`) and resampling;
:mod:`zeroshot_audio._decode` opens and reads files (native stderr capture, salvage of cut files);
:mod:`zeroshot_audio.audio_files` finds audio files in folders (:func:`find_audio_files`, re-exported here).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._decode import _downmix, _open, _read_mono
from ._decode import os_reason as os_reason
from ._errors import AudioError, ParameterError
from .audio_files import AUDIO_EXTENSIONS, find_audio_files

if TYPE_CHECKING:
    import soundfile

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioInfo",
    "audio_info",
    "load_audio",
    "stream_audio",
    "find_audio_files",
    "is_silent",
    "mono_waveform",
    "waveform_at",
]

logger = logging.getLogger(__name__)

#: Frames read from the file at a time by :func:`load_audio` (memory per read: frames * channels * 4 bytes).
_READ_FRAMES = 1 << 18

_RESAMPLE_QUALITY = "HQ"


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file's header says.

    Attributes
    ----------
    path : Path
        The file.
    sample_rate : int
        Frames per second in the file.
    channels : int
        Number of channels.
    frames : int
        Number of frames (samples per channel) the header announces.
    duration : float
        ``frames / sample_rate`` in seconds.
    format : str
        libsndfile container name ("WAV", "FLAC", "OGG", "MP3", ...).
    subtype : str or None
        libsndfile sample encoding ("PCM_16", "FLOAT", "VORBIS", "MPEG_LAYER_III", ...), None when unknown.
    """

    path: Path
    sample_rate: int
    channels: int
    frames: int
    duration: float
    format: str
    subtype: str | None


# ---------------------------------------------------------------------------------------------- helpers


def _check_rate(sample_rate: int) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ParameterError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    return int(sample_rate)


def _check_seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ParameterError(f"{name} must be a positive number of seconds, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ParameterError(f"{name} must be a positive number of seconds, got {value!r}")
    return value


def waveform_at(waveform: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """A waveform array as an embedder takes it: checked and mixed down (:func:`mono_waveform`), then resampled
    from ``sample_rate`` to ``target_rate`` with soxr, as :func:`load_audio` resamples files.

    Raises
    ------
    ParameterError
        A bad rate or array (see :func:`mono_waveform`), or no sample left at ``target_rate``.
    """
    sample_rate = _check_rate(sample_rate)
    wav = mono_waveform(waveform)
    if sample_rate != target_rate:
        import soxr

        wav = soxr.resample(wav, sample_rate, target_rate, quality=_RESAMPLE_QUALITY).astype(np.float32)
    if wav.size == 0:
        raise ParameterError(f"the waveform is empty at {target_rate} Hz "
                             f"({np.shape(waveform)[0]} sample(s) at {sample_rate} Hz)")
    return wav


def mono_waveform(waveform: np.ndarray) -> np.ndarray:
    """A waveform passed as an array, checked and mixed down to float32 mono.

    The layout is soundfile's: ``[samples]`` (mono) or ``[samples, channels]``, channels averaged. Nothing is
    guessed: a 2-D array with more channels than samples (which looks like ``[channels, samples]``, the
    layout of torchaudio and librosa) is refused; pass its transpose.

    Parameters
    ----------
    waveform : np.ndarray [samples] or [samples, channels]
        Real samples with full scale 1.0.

    Returns
    -------
    np.ndarray [samples]
        float32.

    Raises
    ------
    ParameterError
        Any other shape (the message gives it), no samples, non-numeric values, NaN or infinite samples.
    """
    arr = np.asarray(waveform)
    if arr.dtype.kind not in "biuf":
        raise ParameterError(f"the waveform must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise ParameterError(f"the waveform must be [samples] or [samples, channels], got shape {arr.shape}")
    if arr.ndim == 2 and (arr.shape[1] == 0 or arr.shape[1] > arr.shape[0]):
        raise ParameterError(
            f"the waveform must be [samples] or [samples, channels] (like soundfile), got shape {arr.shape}"
            + (" (more channels than samples: for a [channels, samples] array pass its transpose, waveform.T)"
               if arr.shape[1] > arr.shape[0] > 0 else ""))
    if arr.size == 0:
        raise ParameterError(f"the waveform is empty (shape {arr.shape})")
    wav = _downmix(arr.astype(np.float32, copy=False)) if arr.ndim == 2 else arr.astype(np.float32)
    if not np.isfinite(wav).all():
        raise ParameterError("the waveform contains NaN or infinite samples")
    return wav


def _info(f: soundfile.SoundFile, path: str | os.PathLike[str]) -> AudioInfo:
    if f.frames <= 0:
        raise AudioError(f"audio file {path}: zero length (the file holds 0 frames)")
    return AudioInfo(path=Path(path), sample_rate=int(f.samplerate), channels=int(f.channels),
                     frames=int(f.frames), duration=f.frames / f.samplerate, format=str(f.format),
                     subtype=str(f.subtype) if f.subtype else None)



# -------------------------------------------------------------------------------------------------- API


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Read the header of an audio file (no samples are decoded).

    Parameters
    ----------
    path : str or PathLike
        The audio file.

    Returns
    -------
    AudioInfo

    Raises
    ------
    AudioError
        The file does not exist, is not audio, its header cannot be read, or it holds zero frames.
    """
    with _open(path) as f:
        return _info(f, path)


def load_audio(path: str | os.PathLike[str], *, sample_rate: int = 16000,
               max_seconds: float | None = None) -> np.ndarray:
    """Decode a whole audio file to a mono waveform.

    Parameters
    ----------
    path : str or PathLike
        The audio file (any format libsndfile reads; the extension does not matter).
    sample_rate : int
        Output sample rate in Hz; the signal is resampled with soxr ("HQ") when the file's rate differs.
    max_seconds : float, optional
        Decode only the first ``max_seconds`` of the file (the output then has at most
        ``round(max_seconds * sample_rate)`` samples).

    Returns
    -------
    np.ndarray [n]
        float32 mono waveform at ``sample_rate``, values in [-1, 1]; ``n`` is about
        ``duration * sample_rate`` (``round(frames * sample_rate / file_rate)``). Short clips are returned
        as they are.

    Raises
    ------
    AudioError
        Missing file, not audio, unreadable header, zero length, NaN/inf samples, decode error.
    ParameterError
        ``sample_rate`` or ``max_seconds`` is not positive.
    """
    sample_rate = _check_rate(sample_rate)
    if max_seconds is not None:
        max_seconds = _check_seconds("max_seconds", max_seconds)
        if round(max_seconds * sample_rate) < 1:
            raise ParameterError(f"max_seconds={max_seconds!r} gives no sample at {sample_rate} Hz")
    with _open(path) as f:
        info = _info(f, path)
        limit = None if max_seconds is None else max(1, math.ceil(max_seconds * info.sample_rate))
        # filled in place: peak memory is one mono copy at the file's rate (plus the resampled output)
        wav = np.empty(info.frames if limit is None else min(limit, info.frames), dtype=np.float32)
        pos = 0
        for mono in _read_mono(f, path, _READ_FRAMES, limit):  # never more than the header's frames
            wav[pos:pos + mono.shape[0]] = mono
            pos += mono.shape[0]
    wav = wav[:pos]
    if info.sample_rate != sample_rate:
        import soxr

        wav = soxr.resample(wav, info.sample_rate, sample_rate, quality=_RESAMPLE_QUALITY)
    if max_seconds is not None:
        wav = wav[: int(round(max_seconds * sample_rate))]
    if wav.shape[0] == 0:
        raise AudioError(f"audio file {path}: zero length (no sample left at {sample_rate} Hz)")
    wav = np.ascontiguousarray(wav, dtype=np.float32)
    np.clip(wav, -1.0, 1.0, out=wav)
    logger.debug("decoded %s: %d Hz x %d ch -> %d samples at %d Hz", path, info.sample_rate, info.channels,
                 wav.shape[0], sample_rate)
    return wav


def stream_audio(path: str | os.PathLike[str], *, sample_rate: int = 16000,
                 block_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """Decode an audio file block by block, with memory bounded by the block size.

    The file is read ``block_seconds`` at a time, mixed down to mono and resampled with a
    ``soxr.ResampleStream`` ("HQ"), so no more than about two blocks of samples are held at once whatever
    the file's length. Concatenating the blocks gives exactly :func:`load_audio` ``(path,
    sample_rate=sample_rate)`` (the streaming and one-shot soxr resamplers agree bit for bit; there is no
    discontinuity at block boundaries).

    Parameters
    ----------
    path : str or PathLike
        The audio file.
    sample_rate : int
        Output sample rate in Hz.
    block_seconds : float
        Output block length in seconds.

    Returns
    -------
    Iterator of np.ndarray [b]
        float32 mono blocks at ``sample_rate`` with values in [-1, 1]. Every block has exactly
        ``b = round(block_seconds * sample_rate)`` samples except the last, which has ``1..b``.

    Raises
    ------
    AudioError
        Raised by this call (before iterating) for a missing file, a file that is not audio or has an
        unreadable header, or zero frames; raised during iteration, when reached, for a decode error, NaN/inf
        samples, or nothing decodable. Blocks yielded before a decode error are valid; the caller decides
        whether to keep them.
    ParameterError
        ``sample_rate`` or ``block_seconds`` is not positive, or a block would hold no sample.
    """
    sample_rate = _check_rate(sample_rate)
    block_seconds = _check_seconds("block_seconds", block_seconds)
    block_out = int(round(block_seconds * sample_rate))
    if block_out < 1:
        raise ParameterError(f"block_seconds={block_seconds!r} gives no sample at {sample_rate} Hz")
    info = audio_info(path)  # file errors surface here, not at the first next()
    return _stream(path, info, sample_rate, block_out)


def _stream(path: str | os.PathLike[str], info: AudioInfo, sample_rate: int, block_out: int) -> Iterator[np.ndarray]:
    """The generator behind :func:`stream_audio`: fixed ``block_out``-sample output blocks."""
    # input frames per read, so that one read gives about one output block
    read_frames = max(1, math.ceil(block_out * info.sample_rate / sample_rate))
    with _open(path) as f:
        resampler = None
        if f.samplerate != sample_rate:
            import soxr

            resampler = soxr.ResampleStream(f.samplerate, sample_rate, 1, dtype="float32",
                                            quality=_RESAMPLE_QUALITY)
        pending = np.zeros(0, dtype=np.float32)  # resampled samples not yet yielded (< block_out)
        yielded = False
        for mono in _read_mono(f, path, read_frames):
            out = mono if resampler is None else resampler.resample_chunk(mono, last=False)
            pending = np.concatenate([pending, out]) if pending.shape[0] else out
            del mono, out
            while pending.shape[0] >= block_out:
                block = np.clip(pending[:block_out], -1.0, 1.0)  # a new array: no view on the buffer
                pending = pending[block_out:].copy()
                yielded = True
                yield block
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            pending = np.concatenate([pending, tail])
        if not yielded and pending.shape[0] == 0:
            raise AudioError(f"audio file {path}: zero length (no sample left at {sample_rate} Hz)")
        for start in range(0, pending.shape[0], block_out):
            yield np.clip(pending[start:start + block_out], -1.0, 1.0)


def is_silent(waveform: np.ndarray, *, threshold_db: float = -90.0) -> bool:
    """Whether a waveform is digitally silent: its peak is below ``threshold_db`` dBFS.

    Silent audio is valid input (the embedders embed it); this is for callers that want to warn.

    Parameters
    ----------
    waveform : np.ndarray [n] (or any shape)
        Samples with full scale 1.0.
    threshold_db : float
        Peak level in dB relative to full scale at or below which the waveform counts as silent
        (the default, -90 dBFS, is about one 16-bit quantisation step: 1/32768 = -90.3 dBFS).

    Returns
    -------
    bool
        True when ``max |waveform| <= 10 ** (threshold_db / 20)``, and for an empty waveform.
    """
    wav = np.asarray(waveform)
    if wav.size == 0:
        return True
    peak = float(np.max(np.abs(wav)))
    return peak <= 10.0 ** (float(threshold_db) / 20.0)

"""Tests of zeroshot_audio.audio: decoding, mixdown, resampling, streaming, errors and file discovery.

Every audio file is written into tmp_path with soundfile from seeded numpy signals.
"""

from __future__ import annotations

import logging
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

from zeroshot_audio._errors import AudioError, ParameterError  # noqa: E402
from zeroshot_audio.audio import (  # noqa: E402
    AUDIO_EXTENSIONS,
    AudioInfo,
    audio_info,
    find_audio_files,
    is_silent,
    load_audio,
    stream_audio,
)

SR = 16000


def sine(freq: float, seconds: float, rate: int, amp: float = 0.5, phase: float = 0.0) -> np.ndarray:
    """``[round(seconds * rate)]`` float64 sine."""
    t = np.arange(int(round(seconds * rate))) / rate
    return amp * np.sin(2 * np.pi * freq * t + phase)


def dominant_freq(wav: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(wav * np.hanning(len(wav))))
    return float(np.fft.rfftfreq(len(wav), 1 / rate)[np.argmax(spec)])


def write(path: Path, data: np.ndarray, rate: int, **kw) -> Path:
    sf.write(str(path), data, rate, **kw)
    return path


def assert_waveform(wav: np.ndarray, n_expected: int, tol: int = 1) -> None:
    assert isinstance(wav, np.ndarray)
    assert wav.dtype == np.float32
    assert wav.ndim == 1
    assert abs(wav.shape[0] - n_expected) <= tol, (wav.shape, n_expected)
    assert np.isfinite(wav).all()
    assert wav.min() >= -1.0 and wav.max() <= 1.0


def assert_names_file(err: pytest.ExceptionInfo, path: Path | str) -> None:
    msg = str(err.value)
    assert str(path) in msg, msg
    assert "\n" not in msg


# ------------------------------------------------------------------------------------------ decoding


def test_sine_44k1_stereo_to_16k_mono(tmp_path):
    duration = 2.5
    x = sine(1000, duration, 44100, amp=0.5)
    path = write(tmp_path / "sine.wav", np.stack([x, x], axis=1), 44100, subtype="PCM_16")
    wav = load_audio(path)
    assert_waveform(wav, round(duration * SR))
    assert abs(dominant_freq(wav, SR) - 1000.0) < 1.0
    middle = wav[SR // 4: -SR // 4].astype(np.float64)  # away from the resampler's file edges
    amplitude = np.sqrt(2 * np.mean(middle ** 2))
    assert amplitude == pytest.approx(0.5, rel=0.01)
    assert np.abs(middle).max() == pytest.approx(0.5, rel=0.01)


def test_mixdown_is_channel_mean_and_same_rate_is_untouched(tmp_path, rng):
    data = (0.3 * rng.standard_normal((SR, 2))).clip(-1, 1).astype(np.float32)
    path = write(tmp_path / "stereo16k.wav", data, SR, subtype="FLOAT")
    wav = load_audio(path)
    np.testing.assert_array_equal(wav, data.mean(axis=1, dtype=np.float32))
    # integer PCM at the target rate: exactly soundfile's float32 scaling, no resampling
    pcm = write(tmp_path / "mono16k.wav", data[:, 0], SR, subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(pcm), sf.read(str(pcm), dtype="float32")[0])


ODD_FORMATS = [
    # name, format, subtype, rate, channels
    ("u8_8k.wav", "WAV", "PCM_U8", 8000, 1),
    ("pcm24_48k.wav", "WAV", "PCM_24", 48000, 2),
    ("pcm32_44k.wav", "WAV", "PCM_32", 44100, 1),
    ("float_44k.wav", "WAV", "FLOAT", 44100, 2),
    ("surround51_48k.wav", "WAV", "PCM_16", 48000, 6),
    ("clip.flac", "FLAC", "PCM_24", 44100, 2),
    ("clip.ogg", "OGG", "VORBIS", 48000, 2),
    ("clip.opus", "OGG", "OPUS", 48000, 1),
    ("clip.mp3", "MP3", "MPEG_LAYER_III", 44100, 2),
    ("clip.aiff", "AIFF", "PCM_16", 22050, 1),
]


@pytest.mark.parametrize("name,fmt,subtype,rate,channels", ODD_FORMATS, ids=[f[0] for f in ODD_FORMATS])
def test_odd_formats_decode_to_float32_mono_16k(tmp_path, name, fmt, subtype, rate, channels):
    duration = 1.0
    x = sine(440, duration, rate, amp=0.6)
    data = np.repeat(x[:, None], channels, axis=1) if channels > 1 else x
    path = write(tmp_path / name, data.astype(np.float32), rate, format=fmt, subtype=subtype)

    info = audio_info(path)
    assert isinstance(info, AudioInfo)
    assert (info.sample_rate, info.channels, info.format) == (rate, channels, fmt)
    assert info.subtype == subtype
    assert info.frames == len(x) and info.duration == pytest.approx(duration)
    assert info.path == path

    wav = load_audio(path)
    assert_waveform(wav, round(duration * SR))
    assert abs(dominant_freq(wav, SR) - 440.0) < 2.0
    middle = wav[SR // 4: -SR // 4]
    assert np.abs(middle).max() == pytest.approx(0.6, rel=0.05)  # lossy codecs and 8-bit: 5 %


def test_short_clip_returned_as_is(tmp_path):
    path = write(tmp_path / "short.wav", sine(440, 0.01, 44100).astype(np.float32), 44100)
    assert_waveform(load_audio(path), 160)  # 10 ms: no padding here, the embedder pads


def test_max_seconds(tmp_path, rng):
    data = (0.2 * rng.standard_normal(3 * 44100)).astype(np.float32)
    path = write(tmp_path / "three.wav", data, 44100, subtype="FLOAT")
    whole = load_audio(path)
    head = load_audio(path, max_seconds=1.0)
    assert_waveform(head, SR, tol=0)
    # equal to the whole decode except near the cut, where the resampler sees the end of its input
    np.testing.assert_allclose(head[: SR - 200], whole[: SR - 200], atol=1e-5)
    assert load_audio(path, max_seconds=10.0).shape == whole.shape


def test_silent_file_is_valid(tmp_path):
    path = write(tmp_path / "silence.wav", np.zeros(SR, dtype=np.float32), SR, subtype="PCM_16")
    wav = load_audio(path)
    assert_waveform(wav, SR, tol=0)
    assert is_silent(wav)
    assert not is_silent(sine(440, 0.1, SR, amp=0.01))
    one_lsb = np.full(100, 1 / 32768)  # -90.3 dBFS
    assert is_silent(one_lsb) and not is_silent(one_lsb, threshold_db=-100.0)
    assert is_silent(np.zeros(0, dtype=np.float32))


def test_float_beyond_full_scale_is_clipped_with_warning(tmp_path, caplog):
    path = write(tmp_path / "hot.wav", sine(440, 0.5, SR, amp=2.0).astype(np.float32), SR, subtype="FLOAT")
    with caplog.at_level(logging.WARNING, logger="zeroshot_audio.audio"):
        wav = load_audio(path)
    assert wav.max() == 1.0 and wav.min() == -1.0
    assert "hot.wav" in caplog.text and "clipped" in caplog.text


# ----------------------------------------------------------------------------------------- streaming


def test_stream_three_minutes_matches_load_with_bounded_memory(tmp_path, rng):
    rate, seconds, block_seconds = 44100, 180.0, 5.0
    n = int(rate * seconds)
    t = np.arange(n) / rate
    left = 0.3 * np.sin(2 * np.pi * (200 + 5 * t) * t) + 0.05 * rng.standard_normal(n)  # chirp + noise
    right = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(n)
    path = write(tmp_path / "long.wav", np.stack([left, right], axis=1).astype(np.float32), rate, subtype="PCM_16")
    del t, left, right

    whole = load_audio(path)
    assert_waveform(whole, round(seconds * SR))

    block = round(block_seconds * SR)
    blocks = list(stream_audio(path, block_seconds=block_seconds))
    lengths = [len(b) for b in blocks]
    # every block has exactly `block` samples except the last: what the generator hands out is bounded
    assert all(n_b == block for n_b in lengths[:-1]) and 0 < lengths[-1] <= block
    assert len(lengths) == int(np.ceil(seconds / block_seconds))
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    streamed = np.concatenate(blocks)
    del blocks
    assert streamed.shape == whole.shape
    # soxr's streaming and one-shot resamplers agree bit for bit (measured max |diff| = 0.0)
    assert np.abs(streamed - whole).max() <= 1e-6

    # what the generator itself holds while streaming (numpy buffers are traced by tracemalloc)
    del streamed, whole

    def stream_peak(block_s: float) -> int:
        tracemalloc.start()
        try:
            base, _ = tracemalloc.get_traced_memory()
            for _ in stream_audio(path, block_seconds=block_s):
                pass
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return peak - base

    peak5, peak1 = stream_peak(block_seconds), stream_peak(1.0)
    # the whole file decoded would be 180 s * 44100 * 2 ch * 4 B = 63.5 MB (11.5 MB mono at 16 kHz); the
    # stream holds one 5 s read (1.8 MB stereo + 0.9 MB mono) and about two output blocks (measured 4.5 MB)
    assert peak5 < 6e6, peak5
    assert peak1 < 0.4 * peak5, (peak1, peak5)  # the footprint follows the block size, not the file


@pytest.mark.parametrize("rate", [8000, 22050, 48000])
def test_stream_across_block_boundaries_has_no_clicks(tmp_path, rate):
    seconds = 6.0
    path = write(tmp_path / f"tone{rate}.wav", sine(440, seconds, rate).astype(np.float32), rate, subtype="FLOAT")
    blocks = list(stream_audio(path, block_seconds=0.37))  # odd block size: boundaries fall anywhere
    b = round(0.37 * SR)
    assert all(len(x) == b for x in blocks[:-1]) and 0 < len(blocks[-1]) <= b
    streamed = np.concatenate(blocks)
    whole = load_audio(path)
    assert streamed.shape == whole.shape == (round(seconds * SR),)
    assert np.abs(streamed - whole).max() <= 1e-6
    # against the exact tone, away from the file's own start and end: no discontinuity anywhere
    ref = sine(440, seconds, SR)
    middle = slice(SR // 10, -SR // 10)
    assert np.abs(streamed[middle] - ref[middle]).max() < 1e-4


def test_stream_same_rate_and_short_file(tmp_path, rng):
    data = (0.1 * rng.standard_normal(SR * 2 + 5)).astype(np.float32)
    path = write(tmp_path / "same.wav", data, SR, subtype="FLOAT")
    blocks = list(stream_audio(path, block_seconds=0.5))
    assert [len(x) for x in blocks] == [8000, 8000, 8000, 8000, 5]
    np.testing.assert_array_equal(np.concatenate(blocks), data)
    short = write(tmp_path / "short.wav", data[:100], 44100, subtype="FLOAT")
    (only,) = list(stream_audio(short, block_seconds=30.0))
    np.testing.assert_array_equal(only, load_audio(short))


# -------------------------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    for call in (audio_info, load_audio, stream_audio):
        with pytest.raises(AudioError, match="no such file") as err:
            call(path)
        assert_names_file(err, path)


def test_text_file_renamed_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 20)
    for call in (audio_info, load_audio, stream_audio):  # stream_audio raises at the call, not at next()
        with pytest.raises(AudioError, match="not an audio file") as err:
            call(path)
        assert_names_file(err, path)


def test_directory_is_not_audio(tmp_path):
    with pytest.raises(AudioError, match="directory") as err:
        load_audio(tmp_path)
    assert_names_file(err, tmp_path)


def test_zero_frame_wav(tmp_path):
    path = write(tmp_path / "empty.wav", np.zeros((0, 1), dtype=np.float32), SR)
    for call in (audio_info, load_audio, stream_audio):
        with pytest.raises(AudioError, match="zero length") as err:
            call(path)
        assert_names_file(err, path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_wav_with_nan_or_inf(tmp_path, bad):
    data = sine(440, 2.0, 44100).astype(np.float32)
    data[int(1.5 * 44100)] = bad
    path = write(tmp_path / "nan.wav", data, 44100, subtype="FLOAT")
    with pytest.raises(AudioError, match="contains NaN/inf samples") as err:
        load_audio(path)
    assert_names_file(err, path)
    assert "1.500 s" in str(err.value)
    got = []
    with pytest.raises(AudioError, match="contains NaN/inf samples") as err:
        for b in stream_audio(path, block_seconds=0.5):
            got.append(b)
    assert_names_file(err, path)
    assert len(got) >= 1  # blocks before the bad sample were delivered; the error comes when it is reached


def _corrupt(path: Path, at: float, n: int = 2000) -> Path:
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    data[start:start + n] = np.random.default_rng(1).integers(0, 256, n, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("ext,fmt", [("flac", "FLAC"), ("mp3", "MP3")])
def test_decode_error_in_the_body(tmp_path, ext, fmt, rng):
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(10 * 44100) / 44100)
         + 0.05 * rng.standard_normal(10 * 44100)).astype(np.float32)
    path = _corrupt(write(tmp_path / f"broken.{ext}", x, 44100, format=fmt), at=0.7)
    assert audio_info(path).frames == len(x)  # the header is intact
    with pytest.raises(AudioError, match="decode error") as err:
        load_audio(path)
    assert_names_file(err, path)
    got = []
    with pytest.raises(AudioError, match="decode error") as err:
        for b in stream_audio(path, block_seconds=1.0):
            got.append(b)
    assert_names_file(err, path)
    assert len(got) >= 3  # raised when reached, after the good blocks before the damage


def test_truncated_wav_decodes_what_is_there(tmp_path):
    """libsndfile corrects a WAV header that announces more data than the file holds: no error."""
    x = sine(440, 2.0, 44100).astype(np.float32)
    path = write(tmp_path / "cut.wav", x, 44100, subtype="PCM_16")
    raw = path.read_bytes()
    path.write_bytes(raw[: 44 + 2 * 44100])  # header + 1 s of 16-bit samples
    assert audio_info(path).frames == 44100
    assert_waveform(load_audio(path), SR)


def test_truncated_mp3_warns(tmp_path, caplog):
    x = sine(440, 4.0, 44100).astype(np.float32)
    path = write(tmp_path / "cut.mp3", x, 44100, format="MP3")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with caplog.at_level(logging.WARNING, logger="zeroshot_audio.audio"):
        wav = load_audio(path)
    assert 0.3 * 4 * SR < len(wav) < 0.7 * 4 * SR
    assert "cut.mp3" in caplog.text and "truncated" in caplog.text


def test_bad_parameters(tmp_path):
    path = write(tmp_path / "ok.wav", sine(440, 0.5, SR).astype(np.float32), SR)
    for kwargs in ({"sample_rate": 0}, {"sample_rate": 16000.5}, {"max_seconds": -1.0}, {"max_seconds": 0.0}):
        with pytest.raises(ParameterError):
            load_audio(path, **kwargs)
    for kwargs in ({"block_seconds": 0.0}, {"block_seconds": float("nan")}, {"block_seconds": 1e-6}):
        with pytest.raises(ParameterError):
            stream_audio(path, **kwargs)


# ---------------------------------------------------------------------------------------- discovery


def test_find_audio_files(tmp_path):
    root = tmp_path / "data"
    for rel in ["b.wav", "a.FLAC", "sub/c.mp3", "sub/deeper/d.ogg", "sub/e.aif", "notes.txt", "image.png",
                ".hidden.wav", ".git/x.wav", "sub/.cache/y.flac"]:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    extra = tmp_path / "odd_name.dat"
    extra.write_bytes(b"")

    found = find_audio_files([root])
    assert [p.relative_to(root).as_posix() for p in found] == [
        "a.FLAC", "b.wav", "sub/c.mp3", "sub/deeper/d.ogg", "sub/e.aif"]
    flat = find_audio_files([str(root)], recursive=False)
    assert [p.name for p in flat] == ["a.FLAC", "b.wav"]
    # explicit files are kept whatever their extension, in the order given; duplicates listed once
    mixed = find_audio_files([extra, root / "b.wav", root])
    assert mixed[:2] == [extra, root / "b.wav"]
    assert len(mixed) == 6
    assert find_audio_files(root / "sub" / "c.mp3") == [root / "sub" / "c.mp3"]  # a single path
    assert find_audio_files([tmp_path / "data" / "sub" / "deeper"]) == [root / "sub" / "deeper" / "d.ogg"]
    assert {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif"} <= set(AUDIO_EXTENSIONS)

    missing = tmp_path / "missing_dir"
    with pytest.raises(ParameterError) as err:
        find_audio_files([root, missing])
    assert str(missing) in str(err.value)

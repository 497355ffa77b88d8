"""Calibration (train/calibration.py) and how ``zsa train`` fits it on classes the model did not train on."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from zeroshot_audio import ParameterError
from zeroshot_audio.cli import main
from zeroshot_audio.data.dataset import read_dataset, write_dataset
from zeroshot_audio.data.store import open_store
from zeroshot_audio.data.synthetic import make_synthetic
from zeroshot_audio.train.calibration import (
    MIN_CLASSES,
    Calibration,
    calibration_problem,
    choose_heldout_classes,
    ece,
    fit_platt,
)

sys.path.insert(0, str(Path(__file__).parent))
from test_cli import write_class_file, write_store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
_MODEL_CACHE = os.environ.get("ZSA_CACHE_DIR")  # where YAMNet is set up (the planted fixture moves the cache)


def reference_ece(prob: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE written out plainly: per equal-width bin, |mean probability - positive rate| weighted by its share."""
    prob, y = prob.ravel(), y.ravel().astype(float)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (prob >= lo) & ((prob < hi) if b < bins - 1 else (prob <= hi))
        if inside.any():
            total += inside.mean() * abs(prob[inside].mean() - y[inside].mean())
    return total


# ----------------------------------------------------------------------------------------------- library


def test_fit_platt_recovers_the_logistic_that_made_the_labels():
    rng = np.random.default_rng(0)
    scores = rng.normal(2.0, 3.0, size=(4000, 5))
    y = rng.random(scores.shape) < 1 / (1 + np.exp(-(0.7 * scores - 1.5)))
    scale, bias = fit_platt(scores, y)
    assert abs(scale - 0.7) < 0.05 and abs(bias + 1.5) < 0.1, (scale, bias)
    # the fit is the maximum of the (slightly ridge-penalised) likelihood: a nudge of either parameter lowers it
    def nll(a, b):
        z = a * scores + b
        return np.mean(np.logaddexp(0, z) - y * z) + 1e-3 * (a * scores.std()) ** 2
    best = nll(scale, bias)
    for da, db in ((0.02, 0), (-0.02, 0), (0, 0.05), (0, -0.05)):
        assert nll(scale + da, bias + db) > best


def test_ece_equals_the_plain_definition_and_ranks_calibration():
    rng = np.random.default_rng(1)
    p = rng.random(5000)
    y = rng.random(5000) < p  # calibrated by construction
    assert ece(p, y) == pytest.approx(reference_ece(p, y), abs=1e-12)
    skewed = p ** 0.3  # overconfident
    assert ece(p, y) < 0.03 < ece(skewed, y)
    assert ece(skewed, y) == pytest.approx(reference_ece(skewed, y), abs=1e-12)


def test_calibration_fit_lowers_the_error_on_other_clips():
    rng = np.random.default_rng(2)
    make = lambda n: (s := rng.normal(-4, 4, (n, 3)), rng.random(s.shape) < 1 / (1 + np.exp(-(0.4 * s + 0.5))))  # noqa: E731
    (fs, fy), (es, ey) = make(500), make(500)
    cal = Calibration.fit(fs, fy, fitted_on="train", classes=["a", "b", "c"], eval_scores=es, eval_targets=ey,
                          eval_on="other clips")
    assert cal.ece_calibrated < cal.ece_raw_sigmoid
    assert cal.ece_raw_sigmoid == pytest.approx(reference_ece(1 / (1 + np.exp(-es)), ey), abs=1e-9)
    np.testing.assert_allclose(cal.probability(es), 1 / (1 + np.exp(-(cal.scale * es + cal.bias))), rtol=1e-12)
    d = cal.to_dict()
    assert d["fitted"] is True and d["classes"] == ["a", "b", "c"] and d["n_scores"] == 1500
    assert d["n_positives"] == int(fy.sum()) and d["ece_measured_on"] == "other clips"


def test_heldout_classes_are_a_seeded_share_or_named():
    classes = [f"c{i}" for i in range(15)]
    a = choose_heldout_classes(classes, 0.2, seed=0)
    assert len(a) == 3 and a == choose_heldout_classes(classes, 0.2, seed=0)
    assert a == [c for c in classes if c in a]  # in the order of the classes
    assert a != choose_heldout_classes(classes, 0.2, seed=1)
    assert len(choose_heldout_classes(classes, 0.01, seed=0)) == 1  # at least one
    assert choose_heldout_classes(classes, ["c9", "c2"]) == ["c2", "c9"]
    with pytest.raises(ParameterError, match="'zz'"):
        choose_heldout_classes(classes, ["c1", "zz"])
    with pytest.raises(ParameterError, match=r"\(0, 1\)"):
        choose_heldout_classes(classes, 1.5)


def test_calibration_problem_says_why():
    ok = np.zeros((100, 2), bool)
    ok[:20] = True
    assert calibration_problem(10, ["a", "b"], ok) is None
    assert "too few classes" in calibration_problem(MIN_CLASSES - 1, ["a"], ok)
    assert "leaves 2 to train on" in calibration_problem(6, ["a", "b", "c", "d"], ok)
    assert "no val clips" in calibration_problem(10, ["a"], ok[:0])
    assert "6 positive" in calibration_problem(10, ["a", "b"], ok[17:])


# ------------------------------------------------------------------------------------------- zsa train


def opts(root: Path) -> list[str]:
    """Quick training settings, with the planted label vectors of ``root`` as the label encoder."""
    return ["--label-encoder", "word2vec", "--word-vectors", str(root / "vectors.txt"), "--epochs", "8", "--lr", "1e-2",
            "--dim", "16", "--quiet"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Planted data on disk whose class names are words with the planted label vectors (a word2vec file), so
    that zero-shot transfer works through the command line; and a model trained on it by ``zsa train``."""
    root = tmp_path_factory.mktemp("calibration")
    syn = make_synthetic(n_classes=15, n_clips=600, audio_dim=32, text_dim=16, seed=0)
    ds = syn.dataset
    write_dataset(root / "data", filenames=ds.filenames, labels=ds.labels, splits=ds.splits)
    write_store(root / "store", ds.filenames, syn.store.segments)
    (root / "vectors.txt").write_text("".join(f"{c} {' '.join(f'{x:.6f}' for x in v)}\n"
                                              for c, v in zip(ds.classes, syn.class_embeddings)), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZSA_CACHE_DIR", str(root / "cache"))
        assert main(["train", str(root / "data"), "--store", str(root / "store"), "--out", str(root / "model"),
                     *opts(root)]) == 0
        yield root


def _config(model: Path) -> dict:
    return json.loads((model / "config.json").read_text(encoding="utf-8"))


def _scores(model: Path, data: Path, store_path: Path, classes, split: str):
    """Clip scores of ``classes`` on the clips of ``split`` from the saved model, and their labels."""
    from zeroshot_audio.checkpoint import TrainedModel

    trained = TrainedModel.load(model)
    ds, store = read_dataset(data), open_store(store_path)
    ids = [i for i, s in enumerate(ds.splits) if s == split]
    emb = trained.class_embeddings[[trained.classes.index(c) for c in classes]]
    scores = trained.scores(store, store.index_of([ds.filenames[i] for i in ids]), emb)
    return scores, ds.label_matrix(classes)[ids]


def test_zsa_train_calibrates_on_classes_it_did_not_train_on(planted):
    info = _config(planted / "model")["info"]
    cal = info["calibration"]
    held = cal["classes"]
    assert cal["fitted"] is True and len(held) == 3  # 0.2 of 15 classes
    assert not set(held) & set(info["trained_classes"])
    assert sorted(held + info["trained_classes"]) == sorted(read_dataset(planted / "data").classes)
    assert cal["scale"] > 0
    assert "val clips" in cal["fitted_on"] and cal["ece_measured_on"] == "test clips of the held-out classes"
    # on the test clips of the held-out classes the calibrated probabilities beat the plain sigmoid
    scores, y = _scores(planted / "model", planted / "data", planted / "store", held, "test")
    raw = reference_ece(1 / (1 + np.exp(-scores)), y)
    calibrated = reference_ece(1 / (1 + np.exp(-(cal["scale"] * scores + cal["bias"]))), y)
    assert calibrated < raw, (calibrated, raw)
    assert cal["ece_raw_sigmoid"] == pytest.approx(raw, abs=1e-6)
    assert cal["ece_calibrated"] == pytest.approx(calibrated, abs=1e-6)
    # the fit used the val clips of those classes: refitting them gives the recorded parameters
    val_scores, val_y = _scores(planted / "model", planted / "data", planted / "store", held, "val")
    assert fit_platt(val_scores, val_y) == pytest.approx((cal["scale"], cal["bias"]), rel=1e-4)
    assert cal["n_scores"] == val_y.size and cal["n_positives"] == int(val_y.sum())


def test_early_stopping_watched_the_heldout_classes(planted):
    from zeroshot_audio.evaluation.metrics import mean_average_precision

    info = _config(planted / "model")["info"]
    scores, y = _scores(planted / "model", planted / "data", planted / "store", info["calibration"]["classes"], "val")
    value, _ = mean_average_precision(y, scores)
    assert info["best_val_map"] == pytest.approx(value, abs=1e-6)
    assert value > 2 * y.mean(axis=0).mean()  # the planted label vectors make zero-shot transfer work


def test_a_fit_against_the_scores_is_refused():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(400, 2))
    y = rng.random(scores.shape) < 1 / (1 + np.exp(2 * scores + 1))  # labels fall as the scores rise
    cal = Calibration.fit(scores, y, fitted_on="x")
    assert cal.scale < 0 and "do not rise with their labels" in cal.problem()
    assert Calibration.fit(scores, ~y, fitted_on="x").problem() is None


def test_strict_keeps_the_heldout_classes_unheard(planted, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", str(planted / "data"), "--store", str(planted / "store"), "--out", str(out),
                 "--strict", *opts(planted), "--epochs", "2"]) == 0
    info = _config(out)["info"]
    ds = read_dataset(planted / "data")
    y = ds.label_matrix(info["calibration"]["classes"])
    train = np.array([s == "train" for s in ds.splits])
    assert info["n_train_clips"] == int((train & ~y.any(axis=1)).sum())
    assert info["n_train_dropped"] == int((train & y.any(axis=1)).sum()) > 0


def test_calibration_classes_from_a_file_and_no_calibration(planted, tmp_path, capsys):
    wanted = ["class004", "class001", "class009"]
    out = tmp_path / "m"
    assert main(["train", str(planted / "data"), "--store", str(planted / "store"), "--out", str(out),
                 "--calibration-classes", str(write_class_file(tmp_path / "held.txt", wanted)), *opts(planted),
                 "--epochs", "2"]) == 0
    classes = read_dataset(planted / "data").classes
    info = _config(out)["info"]
    assert info["trained_classes"] == [c for c in classes if c not in wanted]
    cal = info["calibration"] if info["calibration"]["fitted"] else info["calibration"]["rejected_fit"]
    assert cal["classes"] == [c for c in classes if c in wanted]  # in the dataset's class order
    capsys.readouterr()
    assert main(["train", str(planted / "data"), "--store", str(planted / "store"), "--out", str(out),
                 "--no-calibration", *opts(planted), "--epochs", "2"]) == 0
    stdout = capsys.readouterr().out
    info = _config(out)["info"]
    assert info["calibration"] == {"fitted": False, "reason": "trained with --no-calibration"}
    assert info["trained_classes"] == list(read_dataset(planted / "data").classes)
    assert "calibration:" not in stdout and "held out" not in stdout


def test_too_few_classes_says_so_and_trains_uncalibrated(planted, tmp_path, capsys):
    four = ["class000", "class001", "class002", "class003"]
    classes = write_class_file(tmp_path / "four.txt", four)
    out = tmp_path / "m"
    capsys.readouterr()
    code = main(["train", str(planted / "data"), "--store", str(planted / "store"), "--out", str(out),
                 "--classes", str(classes), *opts(planted), "--epochs", "2"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "zsa: note: no calibration: too few classes" in err and "uncalibrated" in err
    info = _config(out)["info"]
    assert info["calibration"]["fitted"] is False and "too few classes" in info["calibration"]["reason"]
    assert "this model has 4" in info["calibration"]["reason"]
    assert info["trained_classes"] == four
    # asked for explicitly, the same impossibility is a usage error naming the option
    code = main(["train", str(planted / "data"), "--store", str(planted / "store"), "--out", str(tmp_path / "m2"),
                 "--classes", str(classes), "--calibration-classes", "0.5", *opts(planted), "--epochs", "2"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("zsa: error: --calibration-classes: cannot calibrate: too few classes")
    assert not (tmp_path / "m2").exists()
    code = main(["train", str(planted / "data"), "--store", str(planted / "store"), "--out", str(tmp_path / "m3"),
                 "--calibration-classes", "1.5", *opts(planted)])
    assert code == 2 and "(0, 1)" in capsys.readouterr().err


def test_tagging_says_when_a_model_is_uncalibrated(tmp_path, capsys, monkeypatch):
    """``zsa tag`` with a model that records no calibration says so; the shipped (calibrated) model does not."""
    if _MODEL_CACHE is None:
        monkeypatch.delenv("ZSA_CACHE_DIR", raising=False)
    else:
        monkeypatch.setenv("ZSA_CACHE_DIR", _MODEL_CACHE)
    model = tmp_path / "model"
    shutil.copytree(ROOT / "src" / "zeroshot_audio" / "assets" / "default", model)
    doc = json.loads((model / "config.json").read_text(encoding="utf-8"))
    doc["info"]["calibration"] = {"fitted": False, "reason": "trained with --no-calibration"}
    (model / "config.json").write_text(json.dumps(doc), encoding="utf-8")
    clip = ROOT / "examples" / "dog.flac"
    capsys.readouterr()
    assert main(["tag", str(clip), "--labels", "dog;rain", "--model", str(model), "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert f"zsa: note: model {model} is not calibrated (trained with --no-calibration)" in captured.err
    plain = {row.split(",")[1]: row.split(",") for row in captured.out.splitlines()[1:]}
    assert main(["tag", str(clip), "--labels", "dog;rain", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert "not calibrated" not in captured.err
    calibrated = {row.split(",")[1]: row.split(",") for row in captured.out.splitlines()[1:]}
    for label, (_, _, score, prob) in plain.items():  # same scores; the probability is the plain sigmoid
        assert score == calibrated[label][2]
        assert float(prob) == pytest.approx(1 / (1 + np.exp(-float(score))), abs=1e-3)

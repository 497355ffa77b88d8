"""Tests of the ``zsa`` command line (``zeroshot_audio.cli.main``) on a real on-disk dataset and store.

The module fixtures write planted data (``make_synthetic``) as a dataset directory and an embedding store
once, and train one model on it; each test then runs commands through ``main(argv)`` and checks the exit
code, the files written and the one-line ``zsa: error:`` message on stderr.

Contract checked: exit 0 on success, 1 on data errors (bad dataset / store contents), 2 on usage or
configuration errors; every error is one stderr line ``zsa: error: ...`` naming the offending file, column
or option; a failing command leaves no partial results file or model directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zeroshot_audio
from zeroshot_audio.cli import main
from zeroshot_audio.data.dataset import read_dataset, write_dataset
from zeroshot_audio.data.store import StoreMeta, StoreWriter
from zeroshot_audio.data.synthetic import make_synthetic

# 15 distinct multi-word class names, so that the hashing label encoder gives distinct embeddings.
NAMES = [
    "dog bark", "car horn", "church bell", "door knock", "baby cry",
    "glass break", "rain drops", "bird song", "engine idle", "phone ring",
    "water tap", "wind gust", "foot steps", "keyboard typing", "siren wail",
]
# Training settings that are quick and clearly learn the planted data (test mAP ~0.78 vs prior ~0.11).
TRAIN_OPTS = ["--label-encoder", "hashing", "--epochs", "20", "--lr", "1e-2", "--dim", "16", "--quiet"]
# Classes of the second model: it never sees the last five names.
SUBSET = NAMES[:10]
UNSEEN = NAMES[12]


# --------------------------------------------------------------------------------------------- helpers


def run(capsys, *argv) -> tuple[int, str, str]:
    """Run ``zsa argv`` in-process; return (exit code, stdout, stderr)."""
    capsys.readouterr()  # drop anything printed before
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str, *, usage: bool = False) -> str:
    """The single ``zsa: error:`` line of ``err``.

    Errors raised by the commands are the whole of stderr. argparse errors (``usage=True``) print the
    usage first; the error line is then the last line.
    """
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("zsa: error:")]
    assert len(errors) == 1, f"expected exactly one 'zsa: error:' line on stderr, got:\n{err}"
    if usage:
        assert lines[-1] == errors[0], f"the error should be the last stderr line:\n{err}"
        assert all(line.startswith(("usage:", " ")) for line in lines[:-1]), err
    else:
        assert lines == errors, f"stderr should hold only the one error line:\n{err}"
    return errors[0]


def write_store(path: Path, keys, segments, *, embedder: str = "synthetic") -> Path:
    meta = StoreMeta(embedder=embedder, embedder_version="0", dim=32, hop=1.0)
    with StoreWriter(path, meta) as writer:
        for key, seg in zip(keys, segments):
            writer.add(key, seg)
    return path


def write_class_file(path: Path, classes) -> Path:
    path.write_text("\n".join(classes) + "\n", encoding="utf-8")
    return path


def tree_snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def _label_cache(tmp_path_factory):
    """Keep the label-embedding cache of the hashing encoder out of the user's cache directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZSA_CACHE_DIR", str(tmp_path_factory.mktemp("label-cache")))
        yield


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Planted data written to disk: ``data`` (dataset dir), ``store`` (embedding store) and more."""
    root = tmp_path_factory.mktemp("cli")
    syn = make_synthetic(n_classes=15, n_clips=600, audio_dim=32, text_dim=16, seed=0)
    ds = syn.dataset
    name = dict(zip(ds.classes, NAMES))
    write_dataset(
        root / "data",
        filenames=ds.filenames,
        labels=[[name[c] for c in labels] for labels in ds.labels],
        splits=ds.splits,
        events=[(e.filename, e.onset, e.offset, name[e.label]) for e in ds.events],
    )
    write_store(root / "store", ds.filenames, syn.store.segments)

    class Planted:
        pass

    p = Planted()
    p.root, p.syn = root, syn
    p.data, p.store = root / "data", root / "store"
    p.filenames = list(ds.filenames)
    return p


@pytest.fixture(scope="module")
def model_dir(planted, _label_cache):
    """A model trained on all 15 classes of the planted dataset."""
    out = planted.root / "model"
    code = main(["train", str(planted.data), "--store", str(planted.store), "--out", str(out), *TRAIN_OPTS])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def subset_model_dir(planted, _label_cache):
    """A model trained on the classes of SUBSET only (it never sees UNSEEN)."""
    classes = write_class_file(planted.root / "subset.txt", SUBSET)
    out = planted.root / "model-subset"
    code = main(["train", str(planted.data), "--store", str(planted.store), "--out", str(out),
                 "--classes", str(classes), *TRAIN_OPTS])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def partial_store(planted):
    """A store of the right embedder that lacks the last 100 clips of the dataset."""
    return write_store(planted.root / "store-partial", planted.filenames[:500], planted.syn.store.segments[:500])


@pytest.fixture(scope="module")
def other_store(planted):
    """A store with the same keys and shapes, made by another embedder."""
    return write_store(planted.root / "store-other", planted.filenames, planted.syn.store.segments,
                       embedder="other")


@pytest.fixture
def model_copy(model_dir, tmp_path):
    """A private copy of the trained model (for tests that damage or overwrite it)."""
    dst = tmp_path / "model"
    shutil.copytree(model_dir, dst)
    return dst


def small_dataset(path: Path, clips_csv: str, events_tsv: str | None = None) -> Path:
    """A hand-written dataset directory (for malformed-input tests)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "clips.csv").write_text(clips_csv, encoding="utf-8")
    if events_tsv is not None:
        (path / "events.tsv").write_text(events_tsv, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ 1. train


def test_train_writes_model_directory(planted, model_dir):
    for name in ("config.json", "weights.npz", "class_embeddings.npy"):
        assert (model_dir / name).is_file(), name
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    dataset = read_dataset(planted.data)
    assert config["classes"] == list(dataset.classes)
    assert sorted(config["classes"]) == sorted(NAMES)
    assert config["embedder"] == {"embedder": "synthetic", "embedder_version": "0", "dim": 32, "hop": 1.0}
    assert config["label_encoder"]["name"] == "hashing"
    assert config["model_config"]["audio_dim"] == 32
    assert config["model_config"]["dim"] == 16
    emb = np.load(model_dir / "class_embeddings.npy")
    assert emb.shape == (15, config["model_config"]["text_dim"])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # distinct names -> distinct label embeddings
    assert np.abs(emb @ emb.T - np.eye(15)).max() < 0.99
    # no temporary directories left beside the model
    assert not [p.name for p in model_dir.parent.iterdir() if p.name.startswith(".model")]


def test_train_prints_summary(planted, tmp_path, capsys):
    out = tmp_path / "m"
    code, stdout, err = run(capsys, "train", planted.data, "--store", planted.store, "--out", out,
                            "--label-encoder", "hashing", "--epochs", "2", "--dim", "8", "--quiet")
    assert code == 0, err
    assert f"wrote {out}: 15 classes" in stdout
    assert (out / "config.json").is_file()


# --------------------------------------------------------------------------------------- 2. evaluate


def zero_rule_level(data: Path, classes, split: str = "test") -> float:
    """Mean prevalence of ``classes`` among the clips of ``split`` (classes with a positive only): the mAP
    of a scorer that knows the label prior but not the audio."""
    ds = read_dataset(data)
    rows = np.array([s == split for s in ds.splits])
    prevalence = ds.label_matrix(list(classes))[rows].mean(axis=0)
    return float(prevalence[prevalence > 0].mean())


def test_evaluate_writes_metrics(planted, model_dir, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    code, stdout, err = run(capsys, "evaluate", model_dir, planted.data, "--store", planted.store, "--json", out)
    assert code == 0, err
    result = json.loads(out.read_text(encoding="utf-8"))
    for key in ("map", "f1@1", "f1@3", "per_class", "n_clips"):
        assert key in result, key
    dataset = read_dataset(planted.data)
    assert result["n_clips"] == sum(s == "test" for s in dataset.splits)
    assert result["split"] == "test"
    assert sorted(result["per_class"]) == sorted(NAMES)
    assert isinstance(result["map"], float)
    # F1@k of the model beats that of the label prior: the k classes most frequent in the training clips,
    # predicted for every test clip (computed here, by hand)
    y_all = dataset.label_matrix(list(dataset.classes))
    splits = np.array(dataset.splits)
    train_rank = np.argsort(-y_all[splits == "train"].sum(axis=0), kind="stable")
    y_test = y_all[splits == "test"]
    for k in (1, 3):
        tp = y_test[:, train_rank[:k]].sum()
        precision, recall = tp / (len(y_test) * k), tp / y_test.sum()
        prior_f1 = 2 * precision * recall / (precision + recall)
        assert result[f"f1@{k}"] > prior_f1 + 0.2, (k, result[f"f1@{k}"], prior_f1)
    level = zero_rule_level(planted.data, dataset.classes)
    assert 0.05 < level < 0.3  # sanity of the planted data
    assert result["map"] > level + 0.2, (result["map"], level)
    assert result["map"] > 2 * level, (result["map"], level)
    # stdout (not a terminal) is the same metrics as JSON, without per_class
    shown = json.loads(stdout)
    assert shown == {k: v for k, v in result.items() if k != "per_class"}


def test_evaluate_other_split(planted, model_dir, tmp_path, capsys):
    out = tmp_path / "val.json"
    code, _, err = run(capsys, "evaluate", model_dir, planted.data, "--store", planted.store, "--split", "val",
                       "--json", out)
    assert code == 0, err
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["split"] == "val"
    assert result["n_clips"] == sum(s == "val" for s in read_dataset(planted.data).splits)


def test_evaluate_numbers_equal_those_of_the_torch_forward(planted, model_dir, tmp_path, capsys):
    """`zsa evaluate` scores in numpy; its metrics are those of the torch module (the training form of the same
    weights) scoring the same clips."""
    from zeroshot_audio.checkpoint import TrainedModel
    from zeroshot_audio.data import open_store
    from zeroshot_audio.evaluation.metrics import evaluate_scores
    from zeroshot_audio.train.fit import predict

    out = tmp_path / "metrics.json"
    code, _, err = run(capsys, "evaluate", model_dir, planted.data, "--store", planted.store, "--split", "all",
                       "--json", out)
    assert code == 0, err
    result = json.loads(out.read_text(encoding="utf-8"))
    trained, dataset, store = TrainedModel.load(model_dir), read_dataset(planted.data), open_store(planted.store)
    rows = store.index_of(list(dataset.filenames))
    ref_scores = predict(trained.torch_model(), store, rows, trained.class_embeddings)
    np.testing.assert_allclose(trained.scores(store, rows), ref_scores, rtol=0, atol=1e-5)
    ref = json.loads(json.dumps(evaluate_scores(dataset.label_matrix(trained.classes), ref_scores, trained.classes)))
    assert result["n_clips"] == ref["n_clips"] == len(dataset.filenames)
    assert 0.3 < result["map"] < 1.0  # planted classes are found: the comparison below is not between noise
    for key, value in ref.items():
        if isinstance(value, float):
            assert result[key] == pytest.approx(value, abs=1e-6), key
    assert result["per_class"] == pytest.approx(ref["per_class"], abs=1e-6)


def test_evaluate_phrasings_per_kind(planted, model_dir, tmp_path, capsys):
    """--phrasings: each kind's mAP (classes with >= 2 positive test clips) and top-1/top-3 accuracy are those
    computed here from the model's scores; a wording that names another class (a cyclic shift of the names)
    is worse than the names, and the free figures are the mean of their two variants."""
    from zeroshot_audio.checkpoint import TrainedModel
    from zeroshot_audio.data import open_store
    from zeroshot_audio.evaluation.metrics import average_precision

    dataset = read_dataset(planted.data)
    classes = list(dataset.classes)
    shifted = classes[1:] + classes[:1]
    rows = ["label,phrasing,kind"]
    for c, other in zip(classes, shifted):
        rows += [f"{c},{c},free", f"{c},{other},free", f"{c},{c},short"]
    table = tmp_path / "phrasings.csv"
    table.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "metrics.json"
    code, stdout, err = run(capsys, "evaluate", model_dir, planted.data, "--store", planted.store,
                            "--phrasings", table, "--json", out)
    assert code == 0, err
    result = json.loads(out.read_text(encoding="utf-8"))
    lines = [json.loads(line) for line in stdout.splitlines()]
    # the first line is the default output; then one line per kind
    assert lines[0] == {k: v for k, v in result.items() if k not in ("per_class", "phrasings")}
    # free has two phrasings per class: also scored as one label of both wordings ("c|other", embeddings averaged)
    assert [x["phrasing"] for x in lines[1:]] == ["name", "free", "free+ensemble", "short"]
    ph = result["phrasings"]

    test = [i for i, s in enumerate(dataset.splits) if s == "test"]
    trained, store = TrainedModel.load(model_dir), open_store(planted.store)
    scores = trained.scores(store, store.index_of([dataset.filenames[i] for i in test]),
                            trained.label_embeddings(classes))
    y = dataset.label_matrix(classes)[test]
    col = {c: j for j, c in enumerate(classes)}

    def by_hand(wording):
        s = scores[:, [col[w] for w in wording]]  # a class worded by another class's name gets its scores
        keep = [j for j in range(len(classes)) if y[:, j].sum() >= 2]
        order = np.argsort(-s, axis=1, kind="stable")
        has = y.any(axis=1)
        hit = [np.mean([y[i, order[i, :k]].any() for i in np.flatnonzero(has)]) for k in (1, 3)]
        return np.mean([average_precision(y[:, j], s[:, j]) for j in keep]), hit[0], hit[1], len(keep)

    name, shift = by_hand(classes), by_hand(shifted)
    assert name[0] > shift[0] + 0.3 and name[1] > shift[1] + 0.3
    for key, i in (("map", 0), ("top1", 1), ("top3", 2)):
        assert ph["name"][key] == pytest.approx(name[i], abs=1e-9)
        assert ph["short"][key] == pytest.approx(name[i], abs=1e-9)
        assert ph["free"][key] == pytest.approx((name[i] + shift[i]) / 2, abs=1e-9)
    assert ph["name"]["n_classes_map"] == name[3] and ph["free"]["variants"] == 2
    both = [f"{c}|{o}" for c, o in zip(classes, shifted)]
    assert ph["free+ensemble"]["per_variant"][0]["texts"] == both
    s_both = trained.scores(store, store.index_of([dataset.filenames[i] for i in test]),
                            trained.label_embeddings(both))
    keep = [j for j in range(len(classes)) if y[:, j].sum() >= 2]
    assert ph["free+ensemble"]["map"] == pytest.approx(np.mean([average_precision(y[:, j], s_both[:, j])
                                                                for j in keep]), abs=1e-9)
    # the name kind scores exactly what the default output scores
    assert result["map"] == pytest.approx(np.mean([v for v in result["per_class"].values() if v is not None]))


def test_evaluate_phrasings_missing_file(planted, model_dir, tmp_path, capsys):
    code, _, err = run(capsys, "evaluate", model_dir, planted.data, "--store", planted.store,
                       "--phrasings", tmp_path / "none.csv")
    assert code == 2
    assert "--phrasings" in error_line(err) and "no such file" in error_line(err)


# ---------------------------------------------------------------------------- 3. evaluate --classes


def test_evaluate_classes_with_unseen_class(planted, subset_model_dir, tmp_path, capsys):
    config = json.loads((subset_model_dir / "config.json").read_text(encoding="utf-8"))
    assert config["classes"] == SUBSET
    assert UNSEEN not in config["classes"]
    wanted = [SUBSET[0], SUBSET[3], SUBSET[7], UNSEEN]
    classes = write_class_file(tmp_path / "classes.txt", wanted)
    out = tmp_path / "metrics.json"
    code, _, err = run(capsys, "evaluate", subset_model_dir, planted.data, "--store", planted.store,
                       "--classes", classes, "--json", out)
    assert code == 0, err
    result = json.loads(out.read_text(encoding="utf-8"))
    assert set(result["per_class"]) == set(wanted)
    assert len(result["per_class"]) == len(wanted)
    assert result["n_classes"] == len(wanted)
    # the never-seen class has positives in the test split, so it gets a real AP: scikit-learn's, on the scores
    # of the model for these clips and labels
    from sklearn.metrics import average_precision_score

    from zeroshot_audio.checkpoint import TrainedModel
    from zeroshot_audio.data import open_store

    dataset = read_dataset(planted.data)
    test = [i for i, s in enumerate(dataset.splits) if s == "test"]
    trained, store = TrainedModel.load(subset_model_dir), open_store(planted.store)
    scores = trained.scores(store, store.index_of([dataset.filenames[i] for i in test]),
                            trained.label_embeddings(wanted))
    y = dataset.label_matrix(wanted)[test]
    for j, name in enumerate(wanted):
        assert result["per_class"][name] == pytest.approx(average_precision_score(y[:, j], scores[:, j]), abs=1e-9)
    # trained classes rank their clips far above their prevalence (the AP of a scorer without audio); the class
    # the model never saw, named through a hashing encoder that carries no meaning, ranks below all of them
    prevalence = y.mean(axis=0)
    seen_ap = [result["per_class"][name] for name in wanted[:3]]
    assert all(ap > 3 * p for ap, p in zip(seen_ap, prevalence[:3])), (seen_ap, prevalence)
    assert result["per_class"][UNSEEN] < min(seen_ap)


def test_evaluate_classes_all_seen(planted, subset_model_dir, tmp_path, capsys):
    wanted = [SUBSET[5], SUBSET[1]]
    classes = write_class_file(tmp_path / "classes.txt", wanted)
    out = tmp_path / "metrics.json"
    code, _, err = run(capsys, "evaluate", subset_model_dir, planted.data, "--store", planted.store,
                       "--classes", classes, "--json", out)
    assert code == 0, err
    result = json.loads(out.read_text(encoding="utf-8"))
    assert list(result["per_class"]) == wanted


# -------------------------------------------------------------------------------------- 4. benchmark


def test_benchmark_on_dataset(planted, tmp_path, capsys):
    out = tmp_path / "bench"
    code, stdout, err = run(capsys, "benchmark", planted.data, "--store", planted.store, "--folds", "3",
                            "--systems", "zero_rule,mean", "--epochs", "3", "--out", out,
                            "--label-encoder", "hashing", "--quiet")
    assert code == 0, err
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert set(results["systems"]) == {"zero_rule", "mean"}
    for system in ("zero_rule", "mean"):
        for setting in ("zsl", "gzsl"):
            block = results["systems"][system][setting]
            for key in ("map", "map_std", "f1@1", "f1@3"):
                assert key in block, (system, setting, key)
        zsl = results["systems"][system]["zsl"]
        fold_maps = [f["map"] for f in zsl["folds"]]
        assert len(fold_maps) == 3
        assert zsl["map"] == pytest.approx(np.mean(fold_maps))
        assert zsl["map_std"] == pytest.approx(np.std(fold_maps, ddof=1))
    # the zero rule scores a class by its training prior, the same for every clip: its AP is the class's share of
    # the test clips, computed here from the dataset
    dataset = read_dataset(planted.data)
    test = np.array([s == "test" for s in dataset.splits])
    prevalence = dict(zip(dataset.classes, dataset.label_matrix(list(dataset.classes))[test].mean(axis=0)))
    zero = results["systems"]["zero_rule"]["zsl"]["per_class"]
    assert sorted(zero) == sorted(NAMES)
    assert zero == pytest.approx(prevalence, abs=1e-9)
    # on the classes it was trained on, a model of the audio beats the prior
    gzsl = {s: results["systems"][s]["gzsl"] for s in ("zero_rule", "mean")}
    assert gzsl["mean"]["map_seen"] > gzsl["zero_rule"]["map_seen"] + 0.02, gzsl
    assert results["protocol"]["folds"] == 3
    assert results["n_clips"] == 600 and results["n_classes"] == 15
    assert results["label_encoder"]["name"] == "hashing"
    assert results["embedder"]["embedder"] == "synthetic"
    table = (out / "results.md").read_text(encoding="utf-8")
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert any(line.startswith("| zero_rule |") for line in rows)
    assert any(line.startswith("| mean |") for line in rows)
    assert "ZSL mAP" in table
    assert table in stdout
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------- 5. synthetic benchmark


def test_benchmark_synthetic(capsys):
    code, stdout, err = run(capsys, "benchmark", "--synthetic", "--folds", "3", "--systems", "zero_rule,attention",
                            "--epochs", "3", "--quiet")
    assert code == 0, err
    assert "| zero_rule |" in stdout
    assert "| attention |" in stdout


def test_benchmark_synthetic_refuses_data(planted, capsys):
    code, _, err = run(capsys, "benchmark", "--synthetic", planted.data, "--folds", "3", "--quiet")
    assert code == 2
    assert "--synthetic" in error_line(err)


# ----------------------------------------------------------------------------- 6. bad dataset input


@pytest.mark.parametrize("command", ["train", "evaluate", "benchmark"])
def test_missing_data_directory(command, planted, model_dir, tmp_path, capsys):
    missing = tmp_path / "no-such-dataset"
    argv = {
        "train": ["train", missing, "--store", planted.store, "--out", tmp_path / "m", "--label-encoder", "hashing"],
        "evaluate": ["evaluate", model_dir, missing, "--store", planted.store],
        "benchmark": ["benchmark", missing, "--store", planted.store, "--label-encoder", "hashing", "--folds", "3",
                      "--out", tmp_path / "bench"],
    }[command]
    code, _, err = run(capsys, *argv)
    assert code == 2  # a missing path on the command line is a usage error
    assert str(missing) in error_line(err)
    assert not (tmp_path / "m").exists()
    assert not (tmp_path / "bench").exists()


def test_malformed_label_field(planted, tmp_path, capsys):
    data = small_dataset(tmp_path / "data", "filename,labels,split\n"
                                            "clip00000.wav,dog bark,train\n"
                                            "clip00001.wav,dog;;cat,train\n")
    code, _, err = run(capsys, "train", data, "--store", planted.store, "--out", tmp_path / "m",
                       "--label-encoder", "hashing")
    assert code == 1
    line = error_line(err)
    assert f"{data / 'clips.csv'}:3" in line
    assert "dog;;cat" in line
    assert not (tmp_path / "m").exists()


def test_duplicate_filename(planted, tmp_path, capsys):
    data = small_dataset(tmp_path / "data", "filename,labels,split\n"
                                            "clip00000.wav,dog bark,train\n"
                                            "clip00001.wav,car horn,train\n"
                                            "clip00000.wav,car horn,test\n")
    code, _, err = run(capsys, "train", data, "--store", planted.store, "--out", tmp_path / "m",
                       "--label-encoder", "hashing")
    assert code == 1
    line = error_line(err)
    assert f"{data / 'clips.csv'}:4" in line
    assert "duplicate filename" in line and "clip00000.wav" in line


def test_unknown_split_value(planted, tmp_path, capsys):
    data = small_dataset(tmp_path / "data", "filename,labels,split\n"
                                            "clip00000.wav,dog bark,train\n"
                                            "clip00001.wav,car horn,training\n")
    code, _, err = run(capsys, "train", data, "--store", planted.store, "--out", tmp_path / "m",
                       "--label-encoder", "hashing")
    assert code == 1
    line = error_line(err)
    assert f"{data / 'clips.csv'}:3" in line
    assert "'training'" in line and "split" in line


def test_event_label_not_a_class(planted, model_dir, tmp_path, capsys):
    data = small_dataset(
        tmp_path / "data",
        "filename,labels,split\nclip00000.wav,dog bark,test\nclip00001.wav,car horn,test\n",
        "filename\tonset\toffset\tevent_label\nclip00000.wav\t0.0\t1.0\tdog bark\nclip00001.wav\t1.0\t2.0\tunicorn\n",
    )
    code, _, err = run(capsys, "evaluate", model_dir, data, "--store", planted.store)
    assert code == 1
    line = error_line(err)
    assert f"{data / 'events.tsv'}:3" in line
    assert "'unicorn'" in line


# ------------------------------------------------------------------------------------- bad store input


@pytest.mark.parametrize("command", ["train", "evaluate", "benchmark"])
def test_missing_store_directory(command, planted, model_dir, tmp_path, capsys):
    missing = tmp_path / "no-such-store"
    argv = {
        "train": ["train", planted.data, "--store", missing, "--out", tmp_path / "m", "--label-encoder", "hashing"],
        "evaluate": ["evaluate", model_dir, planted.data, "--store", missing, "--json", tmp_path / "m.json"],
        "benchmark": ["benchmark", planted.data, "--store", missing, "--label-encoder", "hashing", "--folds", "3",
                      "--out", tmp_path / "bench"],
    }[command]
    code, _, err = run(capsys, *argv)
    assert code == 2  # a missing path given as an option is a usage error
    assert str(missing) in error_line(err)
    assert not (tmp_path / "m").exists()
    assert not (tmp_path / "m.json").exists()
    assert not (tmp_path / "bench").exists()


def test_missing_store_directory_is_usage_error(planted, tmp_path, capsys):
    code, _, err = run(capsys, "train", planted.data, "--store", tmp_path / "no-such-store", "--out", tmp_path / "m",
                       "--label-encoder", "hashing")
    assert code == 2, err


def test_missing_classes_file_is_usage_error(planted, model_dir, tmp_path, capsys):
    code, _, err = run(capsys, "evaluate", model_dir, planted.data, "--store", planted.store,
                       "--classes", tmp_path / "no-such-classes.txt")
    assert code == 2, err


def test_missing_classes_file_message(planted, model_dir, tmp_path, capsys):
    missing = tmp_path / "no-such-classes.txt"
    code, _, err = run(capsys, "evaluate", model_dir, planted.data, "--store", planted.store, "--classes", missing)
    assert code != 0
    assert str(missing) in error_line(err)


@pytest.mark.parametrize("command", ["train", "evaluate", "benchmark"])
def test_store_missing_clips(command, planted, model_dir, partial_store, tmp_path, capsys):
    argv = {
        "train": ["train", planted.data, "--store", partial_store, "--out", tmp_path / "m",
                  "--label-encoder", "hashing", "--epochs", "1"],
        "evaluate": ["evaluate", model_dir, planted.data, "--store", partial_store, "--json", tmp_path / "m.json"],
        "benchmark": ["benchmark", planted.data, "--store", partial_store, "--label-encoder", "hashing",
                      "--folds", "3", "--systems", "zero_rule", "--out", tmp_path / "bench"],
    }[command]
    code, _, err = run(capsys, *argv)
    assert code == 1
    line = error_line(err)
    assert str(partial_store) in line
    # names (some of) the missing clips: they are clip00500.wav .. clip00599.wav
    named = [f"clip{n:05d}.wav" for n in range(500, 600) if f"'clip{n:05d}.wav'" in line]
    assert named, line
    assert not any(f"'clip{n:05d}.wav'" in line for n in range(500))
    assert not (tmp_path / "m").exists()
    assert not (tmp_path / "m.json").exists()
    assert not (tmp_path / "bench").exists()


# ------------------------------------------------------------------------------------- bad model input


def test_evaluate_missing_model_directory(planted, tmp_path, capsys):
    missing = tmp_path / "no-such-model"
    code, _, err = run(capsys, "evaluate", missing, planted.data, "--store", planted.store)
    assert code == 2
    assert str(missing) in error_line(err)


def test_evaluate_model_without_weights(planted, model_copy, tmp_path, capsys):
    (model_copy / "weights.npz").unlink()
    out = tmp_path / "metrics.json"
    code, _, err = run(capsys, "evaluate", model_copy, planted.data, "--store", planted.store, "--json", out)
    assert code == 2
    line = error_line(err)
    assert "weights.npz is missing" in line
    assert str(model_copy) in line
    assert not out.exists()


def test_evaluate_store_of_other_embedder(planted, model_dir, other_store, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    code, _, err = run(capsys, "evaluate", model_dir, planted.data, "--store", other_store, "--json", out)
    assert code == 2  # an incompatible model is a configuration error
    line = error_line(err)
    assert "embedder other" in line
    assert "embedder synthetic" in line
    assert str(other_store) in line
    assert not out.exists()


def test_evaluate_label_encoder_mismatch(planted, model_copy, tmp_path, capsys):
    """Scoring a class the model never saw needs the label encoder the model was trained with."""
    config_path = model_copy / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["label_encoder"]["version"] = "999"
    # the full model knows every class; rename one in the model so that it must be encoded afresh
    renamed = config["classes"][0]
    config["classes"][0] = "not a dataset class"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    classes = write_class_file(tmp_path / "classes.txt", [renamed, config["classes"][1]])
    code, _, err = run(capsys, "evaluate", model_copy, planted.data, "--store", planted.store, "--classes", classes)
    assert code == 2
    line = error_line(err)
    assert "label encoder" in line and "999" in line


# ------------------------------------------------------------------------------------------ bad options


def test_unknown_pooling(planted, tmp_path, capsys):
    code, _, err = run(capsys, "train", planted.data, "--store", planted.store, "--out", tmp_path / "m",
                       "--pooling", "foo")
    assert code == 2
    line = error_line(err, usage=True)
    assert "--pooling" in line and "'foo'" in line
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("command", ["train", "benchmark"])
def test_zero_epochs(command, planted, tmp_path, capsys):
    argv = ["train", planted.data, "--store", planted.store, "--out", tmp_path / "m"] if command == "train" \
        else ["benchmark", "--synthetic"]
    code, _, err = run(capsys, *argv, "--epochs", "0")
    assert code == 2
    line = error_line(err, usage=True)
    assert "--epochs" in line and "'0'" in line


def test_unknown_label_encoder(planted, tmp_path, capsys):
    code, _, err = run(capsys, "train", planted.data, "--store", planted.store, "--out", tmp_path / "m",
                       "--label-encoder", "nope", "--epochs", "1")
    assert code == 2
    line = error_line(err)
    assert "'nope'" in line and "label encoder" in line
    assert "available: hashing" in line
    assert not (tmp_path / "m").exists()


def test_unknown_system(capsys):
    code, _, err = run(capsys, "benchmark", "--synthetic", "--folds", "3", "--systems", "zero_rule,bogus", "--quiet")
    assert code == 2
    line = error_line(err)
    assert "bogus" in line
    assert "zero_rule" in line  # lists the valid systems


def test_benchmark_needs_data_or_synthetic(capsys):
    code, _, err = run(capsys, "benchmark", "--folds", "3", "--quiet")
    assert code == 2
    line = error_line(err)
    assert "DATA" in line and "--synthetic" in line


def test_benchmark_data_needs_store(planted, capsys):
    code, _, err = run(capsys, "benchmark", planted.data, "--folds", "3", "--quiet")
    assert code == 2
    assert "--store" in error_line(err)


def test_train_requires_store_and_out(planted, capsys):
    code, _, err = run(capsys, "train", planted.data)
    assert code == 2
    line = error_line(err, usage=True)
    assert "--store" in line and "--out" in line


def test_unknown_command(capsys):
    code, _, err = run(capsys, "bogus-command")
    assert code == 2
    assert "bogus-command" in error_line(err, usage=True)


def test_no_command_is_reported_as_error(capsys):
    code, _, err = run(capsys)
    assert code == 2
    assert "a command is required" in error_line(err, usage=True)


# ------------------------------------------------------------------------------------ no partial output


def test_benchmark_failing_after_parse_writes_nothing(planted, tmp_path, capsys):
    out = tmp_path / "bench"
    code, stdout, err = run(capsys, "benchmark", planted.data, "--store", planted.store, "--folds", "3",
                            "--systems", "zero_rule", "--out", out, "--label-encoder", "nope", "--quiet")
    assert code == 2
    assert "'nope'" in error_line(err)
    assert not (out / "results.json").exists()
    assert not (out / "results.md").exists()
    assert "| zero_rule |" not in stdout


def test_benchmark_failing_in_protocol_writes_nothing(planted, tmp_path, capsys):
    out = tmp_path / "bench"
    out.mkdir()
    code, _, err = run(capsys, "benchmark", planted.data, "--store", planted.store, "--folds", "20",
                       "--systems", "zero_rule", "--out", out, "--label-encoder", "hashing", "--quiet")
    assert code == 2
    assert "20 folds" in error_line(err)
    assert list(out.iterdir()) == []


def test_evaluate_failing_writes_no_json(planted, model_dir, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    classes = write_class_file(tmp_path / "classes.txt", ["not a dataset class"])
    code, _, err = run(capsys, "evaluate", model_dir, planted.data, "--store", planted.store, "--classes", classes,
                       "--json", out)
    assert code != 0
    assert "not a dataset class" in error_line(err)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [classes]


@pytest.mark.parametrize("failure", ["label-encoder", "classes", "device"])
def test_failed_train_keeps_existing_model(failure, planted, model_copy, tmp_path, capsys):
    if failure == "device":
        import torch

        if torch.cuda.is_available():
            pytest.skip("needs a machine without CUDA")
    before = tree_snapshot(model_copy)
    if failure == "label-encoder":
        extra = ["--label-encoder", "nope"]
    elif failure == "classes":
        classes = write_class_file(tmp_path / "classes.txt", [NAMES[0], "not a dataset class"])
        extra = ["--label-encoder", "hashing", "--classes", classes]
    else:
        extra = ["--label-encoder", "hashing", "--device", "cuda"]  # fails inside training
    code, _, err = run(capsys, "train", planted.data, "--store", planted.store, "--out", model_copy,
                       "--epochs", "2", "--dim", "8", "--quiet", *extra)
    assert code == 2
    error_line(err)
    assert tree_snapshot(model_copy) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["model", *(["classes.txt"] if failure == "classes" else [])]
    )


def test_train_replaces_existing_model(planted, model_copy, tmp_path, capsys):
    """A successful train into an existing model directory replaces it whole (and leaves no temporaries)."""
    code, _, err = run(capsys, "train", planted.data, "--store", planted.store, "--out", model_copy,
                       "--label-encoder", "hashing", "--epochs", "1", "--dim", "8", "--quiet")
    assert code == 0, err
    config = json.loads((model_copy / "config.json").read_text(encoding="utf-8"))
    assert config["model_config"]["dim"] == 8
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


# ------------------------------------------------------------ errors the CLI lets escape as tracebacks


def test_evaluate_json_out_is_directory(planted, model_dir, tmp_path, capsys):
    out = tmp_path / "a-directory"
    out.mkdir()
    code, _, err = run(capsys, "evaluate", model_dir, planted.data, "--store", planted.store, "--json", out)
    assert code == 2
    assert str(out) in error_line(err)


def test_train_out_under_a_file(planted, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    code, _, err = run(capsys, "train", planted.data, "--store", planted.store, "--out", blocker / "model",
                       "--label-encoder", "hashing", "--epochs", "1", "--dim", "8", "--quiet")
    assert code == 2
    assert str(blocker) in error_line(err)


def test_benchmark_out_is_a_file(planted, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    code, _, err = run(capsys, "benchmark", planted.data, "--store", planted.store, "--folds", "3",
                       "--systems", "zero_rule", "--out", blocker, "--label-encoder", "hashing", "--quiet")
    assert code == 2
    assert str(blocker) in error_line(err)


def test_train_refuses_to_overwrite_non_model_directory(planted, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(planted.data, data)
    code, _, err = run(capsys, "train", data, "--store", planted.store, "--out", data,
                       "--label-encoder", "hashing", "--epochs", "1", "--dim", "8", "--quiet")
    assert (data / "clips.csv").is_file(), "the dataset directory was replaced by the model"
    assert code == 2
    error_line(err)


# ---------------------------------------------------------------------------------- 7. entry points


def test_python_m_help():
    proc = subprocess.run([sys.executable, "-m", "zeroshot_audio", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage: zsa" in proc.stdout
    for command in ("train", "evaluate", "benchmark"):
        assert command in proc.stdout


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"zsa {zeroshot_audio.__version__}"


def test_console_script_version():
    script = Path(sys.executable).parent / "zsa"
    if not script.exists():
        pytest.skip("the zsa console script is not installed beside this interpreter")
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"zsa {zeroshot_audio.__version__}"


def test_console_script_error_exit_code(tmp_path):
    """The exit code of main() reaches the shell, with the one-line error on stderr."""
    script = Path(sys.executable).parent / "zsa"
    if not script.exists():
        pytest.skip("the zsa console script is not installed beside this interpreter")
    missing = tmp_path / "no-such-model"
    proc = subprocess.run([str(script), "evaluate", str(missing), str(tmp_path), "--store", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("zsa: error:")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert str(missing) in proc.stderr

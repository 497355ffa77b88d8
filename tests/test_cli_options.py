"""Flags derived from the option dataclasses (cli/options.py): every option reachable, defaults not retyped."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from zeroshot_audio.cli import build_parser, main
from zeroshot_audio.data.dataset import write_dataset
from zeroshot_audio.data.synthetic import make_synthetic
from zeroshot_audio.evaluation.protocol import ProtocolOptions
from zeroshot_audio.model import ATTENTIONS, POOLINGS, PROJECTIONS, ModelConfig
from zeroshot_audio.train.options import DEVICES, LOSS_NAMES, OPTIMIZERS, TrainOptions

sys.path.insert(0, str(Path(__file__).parent))
from test_cli import error_line, write_store  # noqa: E402

MODEL_FIELDS = [f.name for f in dataclasses.fields(ModelConfig)
                if f.name not in ("audio_dim", "text_dim", "anchor_dim")]
TRAIN_FIELDS = [f.name for f in dataclasses.fields(TrainOptions)]


def _subparser(command: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub.choices[command]
    parser.format_help()  # adds the flags whose definition is deferred
    return parser


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings}


def test_every_option_is_a_flag_with_the_dataclass_default():
    train = build_parser().parse_args(["train", "DATA", "--store", "S", "--out", "O"])
    bench = build_parser().parse_args(["benchmark", "--synthetic"])
    for cls, names in ((ModelConfig, MODEL_FIELDS), (TrainOptions, TRAIN_FIELDS)):
        for f in dataclasses.fields(cls):
            if f.name in names:
                assert getattr(train, f.name) == f.default, f.name
                if f.name != "pooling":  # each benchmark system sets its own pooling
                    assert getattr(bench, f.name) == f.default, f.name
    assert not hasattr(bench, "pooling")
    for name in ("folds", "strict", "temporal", "distill"):
        assert getattr(bench, name) == getattr(ProtocolOptions(), name), name
    flags = _flags(_subparser("train"))
    for name in MODEL_FIELDS + TRAIN_FIELDS:
        assert "--" + name.replace("_", "-") in flags, name
        assert flags["--" + name.replace("_", "-")].help, name
    # the flag names of before are all still there
    for old in ("--pooling", "--dim", "--projection", "--hidden", "--attention", "--temperature", "--epochs",
                "--batch-size", "--lr", "--weight-decay", "--optimizer", "--loss", "--patience", "--seed", "--device"):
        assert old in flags, old
    bench_flags = _flags(_subparser("benchmark"))
    for old in ("--folds", "--no-strict", "--no-temporal", "--distill", "--dropout", "--margin", "--no-normalize"):
        assert old in bench_flags, old
    args = build_parser().parse_args(["benchmark", "--synthetic", "--no-strict", "--no-temporal", "--distill"])
    assert (args.strict, args.temporal, args.distill) == (False, False, True)


def test_choices_come_from_the_docstrings_and_match_the_constants():
    from zeroshot_audio.train.losses import LOSSES

    flags = _flags(_subparser("train"))
    assert tuple(flags["--pooling"].choices) == POOLINGS
    assert tuple(flags["--projection"].choices) == PROJECTIONS
    assert tuple(flags["--attention"].choices) == ATTENTIONS
    assert tuple(flags["--optimizer"].choices) == OPTIMIZERS
    assert tuple(flags["--loss"].choices) == LOSS_NAMES == tuple(LOSSES)
    assert tuple(flags["--device"].choices) == DEVICES
    assert tuple(flags["--text-projection"].choices) == ("linear", "none")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("flags")
    syn = make_synthetic(n_classes=8, n_clips=200, audio_dim=32, text_dim=16, seed=1)
    ds = syn.dataset
    write_dataset(root / "data", filenames=ds.filenames, labels=ds.labels, splits=ds.splits)
    write_store(root / "store", ds.filenames, syn.store.segments)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZSA_CACHE_DIR", str(root / "cache"))
        yield root


def _train(root: Path, out: Path, *extra: str) -> int:
    return main(["train", str(root / "data"), "--store", str(root / "store"), "--out", str(out), "--label-encoder",
                 "hashing", "--epochs", "2", "--quiet", "--no-calibration", *extra])


def test_new_flags_reach_the_saved_model(planted, tmp_path):
    out = tmp_path / "m"
    assert _train(planted, out, "--dropout", "0.25", "--text-projection", "none", "--dim", "64", "--optimizer",
                  "sgd", "--momentum", "0.5", "--margin", "0.5", "--loss", "rank_hinge", "--no-normalize") == 0
    doc = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert doc["model_config"]["dropout"] == 0.25
    assert doc["model_config"]["text_projection"] == "none" and doc["model_config"]["dim"] == 64
    opts = doc["info"]["train_options"]
    assert (opts["optimizer"], opts["momentum"], opts["margin"], opts["normalize"]) == ("sgd", 0.5, 0.5, False)
    weights = np.load(out / "weights.npz", allow_pickle=False)
    # psi is the identity: only the attention branch projects the labels (one dim-wide block, not two)
    assert tuple(weights["text_proj.weight"].shape) == (64, 64)
    # --no-normalize: the input statistics stay the identity; by default they are the training statistics
    assert np.array_equal(weights["audio_mean"], np.zeros(32)) and np.array_equal(weights["audio_scale"], np.ones(32))
    assert _train(planted, tmp_path / "n") == 0
    normalized = np.load(tmp_path / "n" / "weights.npz", allow_pickle=False)
    assert not np.array_equal(normalized["audio_mean"], np.zeros(32))
    cfg = json.loads((tmp_path / "n" / "config.json").read_text(encoding="utf-8"))
    assert cfg["model_config"]["dropout"] == 0.0 and cfg["info"]["train_options"]["normalize"] is True
    assert tuple(normalized["text_proj.weight"].shape) == (2 * cfg["model_config"]["dim"], 64)


@pytest.mark.parametrize(("argv", "flag"), [
    (["--dropout", "1.5"], "--dropout"),
    (["--momentum", "1.5"], "--momentum"),
    (["--margin", "-1"], "--margin"),
    (["--text-projection", "none", "--dim", "16"], "--text-projection"),
])
def test_a_bad_value_names_its_flag(planted, tmp_path, capsys, argv, flag):
    capsys.readouterr()
    assert _train(planted, tmp_path / "m", *argv) == 2
    assert error_line(capsys.readouterr().err).startswith(f"zsa: error: {flag}: ")
    assert not (tmp_path / "m").exists()


def test_parser_imports_no_torch_until_a_training_command_is_parsed():
    """``zsa --help`` and the parsing of ``zsa tag`` import no torch; parsing ``zsa train`` imports the model
    module for its dataclass (and torch only if that module needs it) but no training code."""
    probe = ("import sys; from zeroshot_audio.cli import build_parser; p = build_parser(); p.format_help(); "
             "p.parse_args(['tag', 'a.wav', '--labels', 'dog']); print('torch' in sys.modules); "
             "p.parse_args(['train', 'D', '--store', 'S', '--out', 'O']); p.parse_args(['benchmark', '--synthetic']); "
             "print('zeroshot_audio.train.fit' in sys.modules, 'zeroshot_audio.train.losses' in sys.modules, "
             "'torch' in sys.modules)")
    model_only = "import sys; import zeroshot_audio.model; print('torch' in sys.modules)"
    run = lambda code: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,  # noqa: E731
                                      timeout=120, check=True).stdout.split()
    before, training, losses, after = run(probe)
    assert before == "False"
    assert (training, losses) == ("False", "False")
    assert [after] == run(model_only)  # torch comes with the model module, if at all, not with the parser


def test_numpydoc_parameters_and_unsupported_fields():
    from zeroshot_audio.cli.options import add_dataclass_options, numpydoc_parameters

    @dataclass
    class Opts:
        """Some options.

        Parameters
        ----------
        size, depth : int
            How big. Second sentence.
        mode : {"a", "b"}
            Which mode.
        extra : tuple of str

        Returns
        -------
        nothing
        """

        size: int = 3
        depth: int = 2
        mode: str = "b"
        extra: tuple = ()

    docs = numpydoc_parameters(Opts)
    assert docs == {"size": ("int", "How big. Second sentence."), "depth": ("int", "How big. Second sentence."),
                    "mode": ('{"a", "b"}', "Which mode."), "extra": ("tuple of str", "")}
    p = argparse.ArgumentParser()
    with pytest.raises(TypeError, match="extra"):
        add_dataclass_options(p, Opts)
    p = argparse.ArgumentParser()
    assert add_dataclass_options(p, Opts, exclude=("extra",)) == ["size", "depth", "mode"]
    args = p.parse_args(["--size", "5", "--mode", "a"])
    assert (args.size, args.depth, args.mode) == (5, 2, "a")
    assert "How big (default: 3)" in p.format_help().replace("\n", " ").replace("  ", " ")
    with pytest.raises(SystemExit):
        p.parse_args(["--mode", "c"])

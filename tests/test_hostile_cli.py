"""Hostile inputs and hostile surroundings (issue 8): each test breaks something on purpose and checks that
``zsa`` answers with one line and the documented exit code, or goes on safely."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zeroshot_audio
from zeroshot_audio import cli
from zeroshot_audio._errors import CheckpointError, DataError
from zeroshot_audio.cli import main
from zeroshot_audio.data.dataset import write_dataset
from zeroshot_audio.data.store import StoreMeta, StoreWriter

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SRC = Path(zeroshot_audio.__file__).resolve().parents[1]  # the src/ directory this test imports


def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    """stderr must be exactly one ``zsa: error:`` line, without a traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("zsa: error: "), f"expected one error line, got:\n{err}"
    return lines[0]


def zsa_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), **extra}
    env.pop("ZSA_DEBUG", None)
    return env


# ================================================ items 6 (main: one line per data error, --debug)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A small dataset, its store and a model trained on them (hashing labels: no model files needed)."""
    root = tmp_path_factory.mktemp("hostile")
    names = ["dog bark", "car horn", "church bell", "door knock"]
    files = [f"c{i:02d}.wav" for i in range(40)]
    write_dataset(root / "data", filenames=files, labels=[[names[i % 4]] for i in range(40)],
                  splits=["train"] * 30 + ["val"] * 5 + ["test"] * 5)
    rng = np.random.default_rng(0)
    with StoreWriter(root / "store", StoreMeta(embedder="synthetic", embedder_version="0", dim=8, hop=1.0)) as w:
        for key in files:
            w.add(key, rng.normal(size=(3, 8)).astype(np.float32))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZSA_CACHE_DIR", str(root / "cache"))
        code = main(["train", str(root / "data"), "--store", str(root / "store"), "--out", str(root / "model"),
                     "--label-encoder", "hashing", "--epochs", "1", "--dim", "4", "--quiet"])
    assert code == 0
    return root


def _damage_config(change):
    def damage(model: Path) -> None:
        doc = json.loads((model / "config.json").read_text(encoding="utf-8"))
        (model / "config.json").write_text(json.dumps(change(doc)), encoding="utf-8")
    return damage


def _set_temperature(doc):
    doc["model_config"]["temperature"] = "abc"
    return doc


def _model_config_list(doc):
    doc["model_config"] = [1, 2]
    return doc


def _old_weights(model: Path, data: bytes) -> None:
    (model / "weights.npz").unlink()
    (model / "weights.pt").write_bytes(data)


MODEL_DAMAGE = {
    "config is a JSON list": _damage_config(lambda doc: [doc]),
    "config is not JSON": lambda m: (m / "config.json").write_text("{not json", encoding="utf-8"),
    "config in UTF-16": lambda m: (m / "config.json").write_text((m / "config.json").read_text(), encoding="utf-16"),
    "temperature is a string": _damage_config(_set_temperature),
    "model_config is a list": _damage_config(_model_config_list),
    "weights.npz empty": lambda m: (m / "weights.npz").write_bytes(b""),
    "weights.npz garbage": lambda m: (m / "weights.npz").write_bytes(b"PK\x03\x04" + os.urandom(500)),
    "weights.npz a pickle of an object": lambda m: (m / "weights.npz").write_bytes(pickle.dumps(Path("x"))),
    "weights.npz holding a pickled object": lambda m: np.savez(m / "weights.npz", audio_mean=np.array([Path("x")])),
    # a model directory of an older version, its weights.pt damaged
    "old weights.pt empty": lambda m: _old_weights(m, b""),
    "old weights.pt garbage": lambda m: _old_weights(m, pickle.dumps({"w": 1})[:5] + os.urandom(500)),
    "old weights.pt a pickle of an object": lambda m: _old_weights(m, pickle.dumps(Path("x"))),
    "class_embeddings.npy garbage": lambda m: (m / "class_embeddings.npy").write_bytes(b"\x93NUMPY" + bytes(40)),
}


@pytest.mark.parametrize("damage", MODEL_DAMAGE, ids=list(MODEL_DAMAGE))
def test_damaged_model_directory_is_one_line(damage, planted, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(planted / "model", model)
    MODEL_DAMAGE[damage](model)
    code, _, err = run(capsys, "evaluate", model, planted / "data", "--store", planted / "store")
    line = one_error_line(err)
    assert code == CheckpointError.exit_code == 2
    assert str(model) in line
    assert "weights_only" not in line  # never suggest loading weights with weights_only=False


def test_clips_csv_in_utf16_is_one_line(planted, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(planted / "data", data)
    (data / "clips.csv").write_text((data / "clips.csv").read_text(encoding="utf-8"), encoding="utf-16")
    code, _, err = run(capsys, "evaluate", planted / "model", data, "--store", planted / "store")
    assert code == 1
    assert str(data / "clips.csv") in one_error_line(err)


def test_empty_shard_is_one_line_naming_it(planted, tmp_path, capsys):
    store = tmp_path / "store"
    shutil.copytree(planted / "store", store)
    shard = next((store / "shards").glob("*.npy"))
    shard.write_bytes(b"")
    code, _, err = run(capsys, "evaluate", planted / "model", planted / "data", "--store", store)
    assert code == 1
    assert str(shard) in one_error_line(err)


def test_labels_file_not_utf8_is_one_line(tmp_path, capsys):
    """Latin-1 is refused as an option error (UTF-16 with a BOM is decoded: tests/test_hostile_tagging.py)."""
    labels = tmp_path / "labels.txt"
    labels.write_text("dog barking\ncafé terrace\n", encoding="latin-1")
    code, _, err = run(capsys, "tag", EXAMPLES, "--labels-file", labels)
    line = one_error_line(err)
    assert code == 2
    assert "--labels-file" in line and str(labels) in line and "UTF-8" in line


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_classes_file_not_utf8_is_one_line(encoding, planted, tmp_path, capsys):
    classes = tmp_path / "classes.txt"
    classes.write_text("dog bark\ncafé\n", encoding=encoding)
    code, _, err = run(capsys, "evaluate", planted / "model", planted / "data", "--store", planted / "store",
                       "--classes", classes)
    assert code == 1
    assert str(classes) in one_error_line(err)


# Errors that decoding hostile bytes raises, for real, as they would escape a reader that does not convert them.
ESCAPING = {
    "UnicodeDecodeError": lambda: b"\xff\xfeh\x00i\x00".decode("utf-8"),
    "JSONDecodeError": lambda: json.loads("{\"keys\": [1, 2"),
    "UnpicklingError": lambda: pickle.loads(b"\x80\x05garbage"),
    "struct.error": lambda: struct.unpack("<Q", b"\x00\x01"),
    "MemoryError from a hostile size": lambda: np.empty(1 << 62, dtype=np.uint8),
    "EOFError": lambda: pickle.loads(b""),
}


@pytest.mark.parametrize("kind", ESCAPING, ids=list(ESCAPING))
def test_decoding_error_escaping_to_main_is_one_line_exit_1(kind, monkeypatch, capsys):
    """main's net: a decoding error that no reader converted still ends in one line and exit 1."""

    def command(args):
        ESCAPING[kind]()
        return 0

    monkeypatch.setitem(cli._COMMANDS, "models", command)
    code, _, err = run(capsys, "models", "list")
    line = one_error_line(err)
    assert code == 1
    assert "cannot read the input data" in line and "--debug" in line


def test_a_bug_is_one_line_exit_3_pointing_to_debug(monkeypatch, capsys):
    """An exception that is not a data error is a bug: one line that says so and how to see the traceback."""

    def command(args):
        return {"a": 1}["b"]  # a KeyError: a bug, not a data error

    monkeypatch.setitem(cli._COMMANDS, "models", command)
    code, _, err = run(capsys, "models", "list")
    line = one_error_line(err)
    assert code == cli.EXIT_BUG == 3
    assert "bug" in line and "KeyError" in line and "--debug" in line and "ZSA_DEBUG=1" in line


@pytest.mark.parametrize("where", ["before the command", "after the command", "ZSA_DEBUG=1"])
def test_debug_raises_with_the_cause(where, planted, tmp_path, monkeypatch):
    classes = tmp_path / "classes.txt"
    classes.write_text("dog bark\n", encoding="utf-16")
    argv = ["evaluate", str(planted / "model"), str(planted / "data"), "--store", str(planted / "store"),
            "--classes", str(classes)]
    if where == "before the command":
        argv = ["--debug", *argv]
    elif where == "after the command":
        argv = [*argv, "--debug"]
    else:
        monkeypatch.setenv("ZSA_DEBUG", "1")
    with pytest.raises(DataError, match="not valid UTF-8"):
        main(argv)


def test_debug_shows_the_traceback(planted, tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("dog bark\n", encoding="utf-16")
    argv = [sys.executable, "-m", "zeroshot_audio", "evaluate", str(planted / "model"), str(planted / "data"),
            "--store", str(planted / "store"), "--classes", str(classes)]
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=zsa_env())
    assert plain.returncode == 1
    one_error_line(plain.stderr)
    debug = subprocess.run([*argv[:3], "--debug", *argv[3:]], capture_output=True, text=True, timeout=120,
                           env=zsa_env())
    assert "Traceback (most recent call last)" in debug.stderr
    assert "DataError" in debug.stderr and "not valid UTF-8" in debug.stderr
    assert debug.returncode != 0


def test_help_documents_debug_and_zsa_debug(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "--debug" in text and "ZSA_DEBUG=1" in text
    assert "3 an internal error" in text


# ============================================== item 8 (outputs: writable before work, broken pipe)


_WRITE_CHECK = r"""
import contextlib, io, json, sys
from zeroshot_audio.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def _unprivileged(cmd: list[str]) -> list[str]:
    """``cmd`` run so that file permissions apply: as is for a normal user; for root, without the
    capabilities that bypass them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), with setpriv."""
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is missing: cannot drop CAP_DAC_OVERRIDE")
    probe = subprocess.run([setpriv, "--bounding-set=-dac_override,-dac_read_search", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"setpriv cannot drop capabilities here: {probe.stderr.decode().strip()}")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", *cmd]


def test_outputs_in_a_read_only_directory_are_refused_before_any_work(tmp_path):
    """Every command that writes checks that it can create files where it will, before its long work."""
    ro = tmp_path / "read-only"
    ro.mkdir()
    (ro / "existing-store").mkdir()
    data, store = tmp_path / "data", tmp_path / "store"
    data.mkdir()
    store.mkdir()  # empty: a command that went on would fail on them with another message
    model = tmp_path / "model"
    cases = {
        "train": ["train", data, "--store", store, "--out", ro / "model"],
        "evaluate --json": ["evaluate", model, data, "--store", store, "--json", ro / "m.json"],
        "plot --out": ["plot", model, data, "--store", store, "--clip", "x.wav", "--out", ro / "f.png"],
        "benchmark --out": ["benchmark", "--synthetic", "--out", ro / "bench", "--quiet"],
        "embed --out new": ["embed", EXAMPLES, "--out", ro / "store", "--quiet"],
        "embed --out existing": ["embed", EXAMPLES, "--out", ro / "existing-store", "--quiet"],
        "import --out": ["import", "audioset-features", data, "--out", ro / "imported", "--quiet"],
        "corpus build --out": ["corpus", "build", "debian-sfx", "--out", ro / "corpus", "--quiet"],
        "tag --events": ["tag", EXAMPLES, "--labels", "dog", "--events", ro / "events.tsv", "--quiet"],
        "tag --plot": ["tag", EXAMPLES, "--labels", "dog", "--plot", ro / "plots", "--quiet"],
    }
    os.chmod(ro / "existing-store", 0o555)
    os.chmod(ro, 0o555)
    try:
        argvs = [[str(a) for a in argv] for argv in cases.values()]
        cmd = _unprivileged([sys.executable, "-c", _WRITE_CHECK, json.dumps(argvs)])
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=zsa_env())
    finally:
        os.chmod(ro / "existing-store", 0o755)
        os.chmod(ro, 0o755)
    assert proc.returncode == 0, proc.stderr
    for name, (code, err) in zip(cases, json.loads(proc.stdout)):
        line = one_error_line(err)
        assert code == 2, (name, line)
        assert "not writable" in line and str(ro) in line, (name, line)
    assert sorted(p.name for p in ro.iterdir()) == ["existing-store"]  # nothing written, not even a probe


def test_output_under_a_regular_file_is_refused(tmp_path, capsys):
    """A path below a regular file fails for every user, root included."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x\n")
    code, _, err = run(capsys, "benchmark", "--synthetic", "--out", blocker / "out", "--quiet")
    assert code == 2 and str(blocker) in one_error_line(err)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_stdout_closed_early_exits_quietly(fmt, yamnet_files):
    """``zsa tag ... | head -1``: when the reader goes away, no 'Broken pipe' message, exit 141 (SIGPIPE)."""
    cache = Path(yamnet_files[0]).parents[2]  # where YAMNet is set up for the tests
    proc = subprocess.Popen([sys.executable, "-m", "zeroshot_audio", "tag", str(EXAMPLES), "--labels", "dog;rain",
                             "--format", fmt, "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=zsa_env(ZSA_CACHE_DIR=str(cache)))
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    proc.stderr.close()
    assert err == ""
    assert code == cli.EXIT_BROKEN_PIPE == 141


def test_head_on_a_shell_pipe_is_quiet(yamnet_files):
    """The README's repro, through a real shell pipe: head prints the header, zsa says nothing."""
    cache = Path(yamnet_files[0]).parents[2]
    script = (f'"{sys.executable}" -m zeroshot_audio tag "{EXAMPLES}" --labels "dog;rain" --format csv --quiet'
              ' | head -1; echo "status ${PIPESTATUS[0]}" >&2')
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                          env=zsa_env(ZSA_CACHE_DIR=str(cache)))
    assert proc.stdout == "file,label,score,probability\n"
    assert proc.stderr.strip() in ("status 0", "status 141"), proc.stderr


# ================================ item 12 (the README's synthetic table comes from the command, by a script)


def test_readme_synthetic_table_is_pasted_by_the_script(tmp_path):
    """benchmarks/synthetic_protocol.py --update-readme replaces exactly the README's synthetic tables and time."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("synthetic_protocol", root / "benchmarks" / "synthetic_protocol.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    readme = tmp_path / "README.md"
    shutil.copy(root / "README.md", readme)
    text = readme.read_text(encoding="utf-8")
    assert text.count(script.BEGIN) == 1 and text.count(script.END) == 1
    assert "`python benchmarks/synthetic_protocol.py --update-readme`" in text  # the README names the command
    table = "| system | ZSL mAP |\n|---|---|\n| attention | 0.123 ± 0.004 |\n"
    script.update_readme(table, 42.4, readme)
    new = readme.read_text(encoding="utf-8")
    inside = new[new.index(script.BEGIN) + len(script.BEGIN):new.index(script.END)]
    assert inside == "\n" + table
    assert "| `python benchmarks/synthetic_protocol.py` | 42 s (target < 2 min) |" in new

    def rest(t: str) -> str:  # the README without the generated parts
        t = t[:t.index(script.BEGIN)] + t[t.index(script.END):]
        return script.ROW.sub(r"\1TIME\2", t)

    assert rest(new) == rest(text)

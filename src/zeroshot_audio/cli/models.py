"""``zsa models``: list or fetch the pretrained weights (YAMNet, MiniLM); describe a model (``info``)."""

from __future__ import annotations

import argparse
import sys


def _cmd_models(args: argparse.Namespace) -> int:
    from .._errors import ParameterError
    from ..assets.fetch import fetch_yamnet, pretrained_status

    if args.model is not None and args.action != "info":
        raise ParameterError(f"zsa models {args.action}: takes no MODEL (got {args.model!r}; MODEL is for info)")
    if args.action == "info":
        import json

        from ..tagging import load_model

        print(json.dumps(load_model(args.model or "default").describe(), indent=1))
        return 0
    if args.action == "fetch":
        from ..assets.fetch import fetch_minilm_onnx

        say = lambda msg: print(f"zsa: {msg}", file=sys.stderr)  # noqa: E731
        path = fetch_yamnet(force=args.force, progress=say)
        print(f"yamnet ready: {path}")
        print(f"minilm (onnx) ready: {fetch_minilm_onnx(force=args.force, progress=say)}")
        return 0
    for m in pretrained_status():
        state = "ready" if m.fetched else "not fetched (run `zsa models fetch`)"
        size = f"{m.size / 1e6:.1f} MB" if m.size else "-"
        print(f"{m.name}\t{state}\t{size}\tsha256 {m.sha256 or '-'}\t{m.path}")
    return 0

"""``zsa models``: list, fetch or remove the pretrained weights (YAMNet, MiniLM)."""

from __future__ import annotations

import argparse
import sys


def _cmd_models(args: argparse.Namespace) -> int:
    from ..assets.fetch import fetch_yamnet, pretrained_status

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

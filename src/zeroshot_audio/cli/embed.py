"""``zsa embed`` (audio files -> embedding store) and ``zsa import`` (AudioSet released features -> store)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._errors import ParameterError
from ._common import (
    _print_failures,
    _require_found,
    _writable_output,
)


def _cmd_embed(args: argparse.Namespace) -> int:
    from ..embed import embed_to_store, resolve_inputs
    from ..embedders import available_embedders

    if args.embedder not in available_embedders():
        raise ParameterError(f"--embedder: unknown embedder {args.embedder!r} "
                             f"(available: {', '.join(available_embedders())})")
    _writable_output(args.out, "--out", directory=True)
    unreadable: list[tuple[Path, str]] = []  # folders the walk could not read (warned about already)
    items = resolve_inputs(args.inputs, errors=unreadable)
    _require_found(items, args.inputs, unreadable)
    progress = False if args.quiet else None
    if args.engine == "ray":
        from ..cluster import embed_to_store_ray

        summary = embed_to_store_ray(items, args.out, embedder=args.embedder, hop=args.hop, address=args.address,
                                     workers=args.workers, progress=progress)
    else:
        if args.address:
            raise ParameterError("--address is for --engine ray")
        summary = embed_to_store(items, args.out, embedder=args.embedder, hop=args.hop, workers=args.workers or 1,
                                 progress=progress)
    for key in summary.silent:
        print(f"zsa: warning: {key}: digitally silent (embedded; every silent segment gives the same embedding)",
              file=sys.stderr)
    if summary.padded:
        print(f"zsa: note: {len(summary.padded)} clip(s) shorter than one segment were zero-padded to one segment "
              f"(their duration in the store tells them apart), e.g. {summary.padded[0]}", file=sys.stderr)
    _print_failures(summary.failures, args.out)
    print(summary.line() + (f"; failures listed in {Path(args.out) / 'failures.csv'}" if summary.failures else ""))
    if unreadable:
        print(f"zsa: {len(unreadable)} folder(s) could not be read; their files were not embedded", file=sys.stderr)
    return 1 if summary.failures or unreadable else 0


def _cmd_import(args: argparse.Namespace) -> int:
    from ..data.audioset.importer import import_audioset_features

    src = Path(args.source)
    if not src.exists():
        raise ParameterError(f"TFRECORD_DIR {src}: no such file or directory")
    _writable_output(args.out, "--out", directory=True)
    data = Path(args.data) if args.data else Path(args.out) / "dataset"
    _writable_output(str(data), "--data", directory=True)
    summary = import_audioset_features(src, out_store=args.out, out_data=data, split=args.split,
                                       progress=not args.quiet and sys.stderr.isatty())
    for f in summary.failures:
        where = f"{f.file}" + (f" record {f.record}" if f.record is not None else "")
        print(f"zsa: failed: {where}: {f.reason}", file=sys.stderr)
    print(f"imported {summary.added} clip(s) ({summary.skipped} already in the store) from {summary.files} file(s) "
          f"into {args.out}; dataset {data}; {len(summary.failures)} failure(s)")
    return 1 if summary.failures else 0

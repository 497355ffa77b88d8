"""``zsa benchmark``: the evaluation protocol over class folds, its results.json and results.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._errors import ParameterError
from ._common import (
    _label_encoder,
    _print_failures,
    _require,
    _writable_output,
)
from .options import _model_kwargs, _train_options


def _default_store(args: argparse.Namespace, embedder: str | None = None) -> Path:
    """DATA/stores/EMBEDDER-hopHOP, with every clip of DATA embedded (resumes; failures are listed)."""
    from ..embed import embed_to_store, resolve_inputs
    from ..embedders import available_embedders

    embedder = embedder or args.embedder
    if embedder not in available_embedders():
        raise ParameterError(f"--embedder: unknown embedder {embedder!r} "
                             f"(available: {', '.join(available_embedders())})")
    store = Path(args.data) / "stores" / f"{embedder}-hop{args.hop:g}"
    _writable_output(str(store), "DATA (its embedding store)", directory=True)
    items = resolve_inputs([args.data])
    if not any(path.is_file() for _, path in items):
        raise ParameterError(f"DATA {args.data} has no audio files to embed: pass --store STORE with its embeddings")
    summary = embed_to_store(items, store, embedder=embedder, hop=args.hop,
                             workers=args.workers, progress=False if args.quiet else None)
    if summary.n_embedded or summary.failures:
        print(f"zsa: store {store}: {summary.line()}", file=sys.stderr)
    _print_failures(summary.failures, store)
    return store


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from .._io import write_json_atomic, write_text_atomic
    from ..evaluation.protocol import ProtocolOptions, results_markdown, run_protocol
    from .options import dataclass_values

    if args.systems is None:
        from ..evaluation.protocol import DEFAULT_SYSTEMS, SYSTEMS

        args.systems = ",".join(SYSTEMS if args.distill else DEFAULT_SYSTEMS)
    systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    if args.distill and args.synthetic:
        raise ParameterError("--distill needs real audio (YAMNet's class scores), not --synthetic")
    try:
        options = ProtocolOptions(seed=args.seed, systems=systems, model=_model_kwargs(args),
                                  train=_train_options(args), **dataclass_values(args, args._protocol_fields))
    except ParameterError as err:
        raise ParameterError(f"{'--systems: ' if 'system' in str(err) else ''}{err}") from None
    _writable_output(args.out, "--out", directory=True)
    if args.synthetic:
        if args.data or args.store:
            raise ParameterError("--synthetic takes no DATA or --store")
        from ..data.synthetic import make_synthetic

        syn = make_synthetic(seed=args.seed)
        dataset, store, emb = syn.dataset, syn.store, syn.class_embeddings
    else:
        if not args.data:
            raise ParameterError("benchmark needs DATA (a dataset directory) or --synthetic")
        from ..data import open_store, read_dataset
        from ..text import class_matrix

        _require(args.data, "DATA")
        if args.store:
            _require(args.store, "--store")
        else:
            args.store = str(_default_store(args))
        dataset = read_dataset(args.data)
        store = open_store(args.store)
        encoder = _label_encoder(args)
        emb = class_matrix(encoder, dataset.classes, descriptions=dataset.descriptions, text=args.label_text,
                           templates=args.templates)
    aux = anchor = None
    if args.distill:
        from ..assets.fetch import yamnet_class_map_path
        from ..data import open_store
        from ..embedders.yamnet import read_yamnet_class_names
        from ..train.distill import yamnet_aux_labels

        if args.logits_store:
            _require(args.logits_store, "--logits-store")
        logits = open_store(args.logits_store or _default_store(args, embedder="yamnet-logits"))
        names = read_yamnet_class_names(yamnet_class_map_path())
        aux = yamnet_aux_labels(dataset.filenames, logits, dataset.classes, emb, encoder, yamnet_names=names,
                                threshold=args.distill_threshold, exclude_similarity=args.distill_exclude)
        from ..evaluation.systems import ANCHOR_SYSTEMS

        if ANCHOR_SYSTEMS.intersection(systems):
            from ..data.joined import JoinedStore
            from ..text import anchor_texts

            anchor = (JoinedStore(store, logits), anchor_texts(encoder, names))
    results = run_protocol(dataset, store, emb, options=options, progress=False if args.quiet else None, aux=aux,
                           anchor=anchor)
    if not args.synthetic:
        results["label_encoder"] = {**encoder.identity(), "text": args.label_text, "templates": args.templates}
    table = results_markdown(results)
    if args.out:
        out = Path(args.out)
        write_json_atomic(out / "results.json", results)
        write_text_atomic(out / "results.md", table)
    print(table, end="")
    return 0

"""``zsa evaluate`` (scores and metrics of a model on a dataset) and ``zsa plot`` (attention timelines)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._errors import ParameterError
from ._common import (
    _read_class_file,
    _require,
    _writable_output,
)


def _model_data_store(args: argparse.Namespace):
    """The model, dataset and store named by MODEL_DIR, DATA and --store, checked against each other."""
    from ..checkpoint import TrainedModel
    from ..data import open_store, read_dataset

    _require(args.data, "DATA")
    _require(args.store, "--store")
    trained = TrainedModel.load(args.model)
    dataset = read_dataset(args.data)
    store = open_store(args.store)
    trained.check_store(store, name=f"model {args.model}")
    return trained, dataset, store


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from .._io import write_json_atomic
    from ..evaluation.metrics import evaluate_scores

    _writable_output(args.json_out, "--json", directory=False)
    phrasings = None
    if getattr(args, "phrasings", None):
        from ..evaluation.phrasings import read_phrasings

        _require(args.phrasings, "--phrasings", kind="file")
        phrasings = read_phrasings(args.phrasings)
    trained, dataset, store = _model_data_store(args)
    if args.classes:
        classes = _read_class_file(args.classes)
        emb = trained.label_embeddings(classes, descriptions=dataset.descriptions)
    elif phrasings is not None:  # the dataset's classes that have phrasings
        classes = [c for c in dataset.classes if c in phrasings]
        if not classes:
            raise ParameterError(f"--phrasings {args.phrasings}: none of its labels is a class of {args.data}")
        emb = trained.label_embeddings(classes, descriptions=dataset.descriptions)
    else:
        classes, emb = list(trained.classes), trained.class_embeddings
    split = args.split or ("test" if dataset.has_split else "all")
    ids = np.arange(len(dataset.filenames))
    if split != "all":
        ids = np.array([i for i in ids if dataset.splits[i] == split], dtype=np.int64)
    failed = [i for i in ids if dataset.filenames[i] in store.failures]
    if failed:
        print(f"zsa: {len(failed)} clip(s) failed to embed and are left out", file=sys.stderr)
        ids = np.array([i for i in ids if dataset.filenames[i] not in store.failures], dtype=np.int64)
    if ids.size == 0:
        raise ParameterError(f"{args.data}: no clips in split {split!r}")
    rows = store.index_of([dataset.filenames[i] for i in ids])
    y = dataset.label_matrix(classes)[ids]
    scores = trained.scores(store, rows, emb)
    result = evaluate_scores(y, scores, classes)
    result["split"] = split
    if phrasings is not None:
        from ..evaluation.phrasings import evaluate_phrasings

        def score_texts(texts: list[str]) -> np.ndarray:
            if list(texts) == list(classes):
                return scores
            return trained.scores(store, rows, trained.label_embeddings(list(texts)))

        result["phrasings"] = evaluate_phrasings(y, score_texts, classes, phrasings)
    if args.json_out:
        write_json_atomic(args.json_out, result)
    shown = {k: v for k, v in result.items() if k not in ("per_class", "phrasings")}
    tty = sys.stdout.isatty()
    print(json.dumps(shown, allow_nan=False) if not tty else
          "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()))
    for kind, m in (result.get("phrasings") or {}).items():
        line = {"phrasing": kind, **{k: v for k, v in m.items() if k not in ("per_variant",)}}
        print(json.dumps(line, allow_nan=False) if not tty else
              f"{kind:<6} " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in line.items() if k != "phrasing"))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from ..events import frame_timestamps
    from ..plots import plot_attention

    _writable_output(args.out, "--out", directory=False)
    trained, dataset, store = _model_data_store(args)
    if args.clip not in dataset.filenames:
        raise ParameterError(f"--clip {args.clip!r} is not a clip of {args.data}")
    labels = [x.strip() for x in args.labels.split(";") if x.strip()] if args.labels else \
        list(dataset.labels[dataset.filenames.index(args.clip)])
    if not labels:
        raise ParameterError(f"--clip {args.clip!r} has no labels: name some with --labels")
    emb = trained.label_embeddings(labels, descriptions=dataset.descriptions)
    row = store.index_of([args.clip])
    seg, att, clip = trained.segments(store, row, emb)[0]
    stamps = frame_timestamps(len(seg), float(store.meta.hop), float(store.durations[row[0]]))
    wav = None
    if args.waveform:
        from ..audio import load_audio

        audio_path = Path(args.data) / args.clip
        wav = load_audio(audio_path) if audio_path.is_file() else None
    events = [(e.onset, e.offset, e.label) for e in dataset.events if e.filename == args.clip]
    plot_attention(args.out, timestamps=stamps, attention=att, labels=labels, clip_scores=clip, events=events,
                   waveform=wav, title=f"{args.clip} — {trained.config.pooling} model")
    print(f"wrote {args.out}")
    return 0

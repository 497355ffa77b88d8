"""``zsa train``: fit a model on a dataset's store, calibrate it on held-out classes, save the model directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._errors import ParameterError
from ._common import (
    _label_encoder,
    _read_class_file,
    _require,
    _writable_output,
)
from .options import _model_config, _train_options


def _calibration_spec(args: argparse.Namespace) -> float | list[str]:
    """``--calibration-classes``: a share of the classes (a number in (0, 1)) or a file of class names."""
    from ..train.calibration import DEFAULT_FRACTION

    text = args.calibration_classes
    if text is None:
        return DEFAULT_FRACTION
    try:
        share = float(text)
    except ValueError:
        _require(text, "--calibration-classes", kind="file")
        from ..data.dataset import read_class_list

        return read_class_list(text)
    if not 0 < share < 1:
        raise ParameterError(f"--calibration-classes: a share of the classes must be in (0, 1), got {text}")
    return share


def _cmd_train(args: argparse.Namespace) -> int:
    import numpy as np

    from ..checkpoint import TrainedModel
    from ..data import open_store, read_dataset
    from ..text import class_matrix
    from ..train.calibration import Calibration, calibration_problem, choose_heldout_classes, no_calibration
    from ..train.fit import fit, predict
    from ..train.recipes import dataset_clips

    _require(args.data, "DATA")
    _require(args.store, "--store")
    _writable_output(args.out, "--out", directory=True, replace_if="config.json")
    if args.calibration_classes is not None and not args.calibration:
        raise ParameterError("--calibration-classes and --no-calibration exclude each other")
    dataset = read_dataset(args.data)
    store = open_store(args.store)
    classes = _read_class_file(args.classes) if args.classes else list(dataset.classes)
    unknown = [c for c in classes if c not in set(dataset.classes)]
    if unknown:
        raise ParameterError(f"--classes {args.classes}: {len(unknown)} class(es) not in the dataset {args.data}, "
                             f"e.g. {unknown[0]!r}")
    spec = _calibration_spec(args) if args.calibration else None
    encoder = _label_encoder(args)
    config = _model_config(args, audio_dim=int(store.meta.dim), text_dim=int(encoder.dim), pooling=args.pooling)
    options = _train_options(args)
    others = [c for c in dataset.classes if c not in set(classes)]  # with --classes: DATA's other classes
    clips = dataset_clips(dataset, store, classes=classes + others, seed=args.seed)
    if clips.n_failed:
        print(f"zsa: {clips.n_failed} clip(s) failed to embed and are left out", file=sys.stderr)
    # calibration: classes held out of training watch early stopping and fit sigmoid(scale * F + bias)
    heldout: list[str] = []
    if spec is None:
        calibration = no_calibration("trained with --no-calibration")
    else:
        try:
            heldout = choose_heldout_classes(classes, spec, seed=args.seed)
        except ParameterError as err:
            raise ParameterError(f"--calibration-classes: {err}") from None
        problem = calibration_problem(len(classes), heldout, clips.labels[np.ix_(clips.ids("val"),
                                                                                 clips.columns(heldout))])
        if problem is not None:
            if args.calibration_classes is not None:  # asked for explicitly: cannot be done as asked
                raise ParameterError(f"--calibration-classes: cannot calibrate: {problem}")
            heldout, calibration = [], no_calibration(problem)
            print(f"zsa: note: no calibration: {problem}; the model trains on every class and its probabilities "
                  "are the uncalibrated sigmoid of the score", file=sys.stderr)
    trained_cls = clips.columns([c for c in classes if c not in set(heldout)])
    watch = clips.columns(heldout) if heldout else trained_cls
    unheard = clips.columns(others + heldout) if args.strict else None
    chosen = clips.select(train_classes=trained_cls, val_classes=watch, unheard=unheard)
    if len(chosen.train) == 0:
        raise ParameterError(f"{args.data}: no train clips to train on")
    emb = class_matrix(encoder, classes, descriptions=dataset.descriptions, text=args.label_text,
                       templates=args.templates)
    result = fit(config, chosen.train, emb[trained_cls], val=chosen.val,
                 val_class_emb=emb[watch] if chosen.val is not None else None, options=options,
                 progress=False if args.quiet else None)
    if heldout:
        cols = clips.columns(heldout)
        val_ids, test_ids = clips.ids("val"), clips.ids("test")
        names = "; ".join(heldout)
        test_scores = predict(result.model, store, clips.rows[test_ids], emb[cols]) if test_ids.size else None
        fitted = Calibration.fit(
            predict(result.model, store, clips.rows[val_ids], emb[cols]), clips.labels[np.ix_(val_ids, cols)],
            fitted_on=f"val clips of {len(heldout)} class(es) held out of training: {names}", classes=heldout,
            eval_scores=test_scores, eval_targets=clips.labels[np.ix_(test_ids, cols)],
            eval_on="test clips of the held-out classes")
        calibration = fitted.to_dict()
        if fitted.problem() is not None:
            calibration = {**no_calibration(fitted.problem()), "rejected_fit": calibration}
            print(f"zsa: note: no calibration: {fitted.problem()}; the probabilities are the uncalibrated sigmoid "
                  "of the score", file=sys.stderr)
        else:
            print(f"calibration: probability = sigmoid({fitted.scale:.3f} * score {fitted.bias:+.3f}), fitted on "
                  f"{len(heldout)} class(es) held out of training ({names}); expected calibration error on the "
                  f"{fitted.ece_measured_on}: {fitted.ece_raw_sigmoid:.3f} plain sigmoid, "
                  f"{fitted.ece_calibrated:.3f} calibrated")
    trained = TrainedModel(
        model=result.model, classes=classes, class_embeddings=emb, embedder=store.meta.identity(),
        label_encoder={**encoder.identity(), "text": args.label_text, "templates": args.templates},
        info={"train_options": options.to_dict(), "history": result.history, "best_epoch": result.best_epoch,
              "best_val_map": result.best_val_map, "n_train_clips": int(len(chosen.train)),
              "n_train_dropped": chosen.n_dropped, "trained_classes": [classes[i] for i in trained_cls],
              "dataset": str(Path(args.data)), "calibration": calibration},
    )
    trained.save(args.out)
    vm = "n/a" if result.best_val_map is None else f"{result.best_val_map:.3f}"
    held = f" ({len(heldout)} held out for calibration)" if heldout else ""
    print(f"wrote {args.out}: {len(classes)} classes{held}, {len(chosen.train)} train clips, best epoch "
          f"{result.best_epoch}, val mAP {vm}")
    return 0

"""``zsa adapt``: fit a model's per-label parameters on example clips and write the adapted model directory."""

from __future__ import annotations

import argparse
import sys

from .._errors import ParameterError
from ._common import _positive_int, _require, _writable_output


def _add_adapt_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("adapt", help="adapt a model to labels given by example clips (few-shot, in seconds)",
                       description="Fit a per-label bias and residual of MODEL on the example clips of EXAMPLES (one "
                                   "folder per label, named by the label, or any folder names plus labels.csv with "
                                   "columns folder,label) and write the adapted model to --out, a model directory "
                                   "for `zsa tag --model`. Labels with exactly these texts use their adapted "
                                   "parameters; every other label is scored as by MODEL.")
    p.add_argument("model", metavar="MODEL", help="'default' (shipped) or a model directory")
    p.add_argument("--examples", required=True, metavar="DIR", help="folder of example clips, one folder per label")
    p.add_argument("--out", required=True, metavar="NEW_MODEL", help="model directory to write")
    p.add_argument("--negatives", metavar="DIR", action="append",
                   help="recordings of other sounds than the labels (a folder or file; repeatable): negatives for "
                        "every label, beside the other labels' examples (recommended: without them an adapted "
                        "label is fitted against the other labels' examples only, see docs/adapt.md)")
    p.defer(_add_fit_options)  # their defaults live in train.adapt, imported only when `zsa adapt` runs
    p.add_argument("--seed", type=int, default=0, help="seed of the draw of --negatives (default: %(default)s)")
    p.add_argument("--max-negatives", type=_positive_int, default=500,
                   help="at most this many --negatives recordings (drawn with --seed; default: %(default)s)")
    p.add_argument("--force", action="store_true", help="replace --out when it exists (a model directory)")


def _add_fit_options(p: argparse.ArgumentParser) -> None:
    from ..train import adapt

    p.add_argument("--steps", type=_positive_int, default=adapt.DEFAULT_STEPS,
                   help="optimisation steps (default: %(default)s)")
    p.add_argument("--strength", type=float, default=adapt.DEFAULT_STRENGTH,
                   help="L2 pull of the adapted parameters toward zero, i.e. toward the base model "
                        "(default: %(default)s)")
    p.add_argument("--positive-share", type=float, default=None,
                   help="share of the loss's weight on the examples, in (0, 1); lower it when the sounds are rare in "
                        f"what you tag (default: {adapt.POSITIVE_SHARE} with --negatives, "
                        f"{adapt.POSITIVE_SHARE_WITHOUT_NEGATIVES} without)")
    p.add_argument("--features", choices=adapt.FEATURES, default=adapt.DEFAULT_FEATURES,
                   help="what the residual reads: YAMNet's embedding, its class logits, or both (default: "
                        "%(default)s)")


def _cmd_adapt(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..train.adapt import adapt_model

    _require(args.examples, "--examples")
    out = Path(args.out)
    if (out.exists() or out.is_symlink()) and not args.force:
        raise ParameterError(f"--out {out}: exists (use --force to replace it)")
    _writable_output(args.out, "--out", directory=True, replace_if="config.json")
    if not args.strength >= 0 or args.strength == float("inf"):
        raise ParameterError(f"--strength: expected a number >= 0, got {args.strength}")
    if args.positive_share is not None and not 0 < args.positive_share < 1:
        raise ParameterError(f"--positive-share: expected a number in (0, 1), got {args.positive_share}")
    res = adapt_model(args.model, args.examples, args.out, negatives=args.negatives, steps=args.steps,
                      strength=args.strength, features=args.features, seed=args.seed, force=args.force,
                      max_negatives=args.max_negatives, positive_share=args.positive_share)
    for label in res.labels:
        s = res.stats[label]
        print(f"adapted {label!r}: {s['positives']} example(s), {s['negative_windows']} negative window(s), "
              f"training accuracy {s['accuracy_before']:.2f} -> {s['accuracy_after']:.2f}")
    print(f"wrote {res.path} ({len(res.labels)} label(s) adapted in {res.fit_seconds:.1f} s, {res.seconds:.1f} s in "
          f"all; {len(res.warnings)} warning(s)); see its MODEL_CARD.md", file=sys.stderr)
    return 0

"""``zsa corpus build``: the open benchmark corpus from registry packages."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._errors import ParameterError
from ._common import (
    _writable_output,
)


def _cmd_corpus(args: argparse.Namespace) -> int:
    from ..corpus.build import DEFAULT_N_SCENES, build_corpus

    _writable_output(args.out, "--out", directory=True, replaced=True)
    if args.name == "soundfont-instruments" or (args.soundfonts and args.name == "debian-sfx"):
        try:
            import tinysoundfont  # noqa: F401
        except ImportError:
            raise ParameterError("the SoundFont instruments need the package tinysoundfont: "
                                 "pip install --no-deps tinysoundfont==0.3.7 (or pass --no-soundfonts)") from None
    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if args.quiet or not sys.stderr.isatty():
            return
        from tqdm.auto import tqdm

        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="item")
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    if args.name == "debian-eval":
        from ..corpus.debian_eval import DEFAULT_EVAL_SCENES, build_eval

        summary = build_eval(args.out, n_scenes=args.scenes or DEFAULT_EVAL_SCENES, seed=args.seed,
                             workers=args.workers, progress=progress)
    else:
        summary = build_corpus(args.out, n_scenes=args.scenes or DEFAULT_N_SCENES, seed=args.seed,
                               workers=args.workers, progress=progress,
                               soundfonts=args.soundfonts or args.name == "soundfont-instruments",
                               sfx=args.name == "debian-sfx")
    for bar in bars.values():
        bar.close()
    print(summary)
    return 0

"""Convert model directories of older versions (``weights.pt``, a torch file) to ``weights.npz``.

Usage: ``python -m zeroshot_audio.train.convert MODEL_DIR [MODEL_DIR ...] [--remove-pt]``

Each directory is read with every check of :meth:`~zeroshot_audio.checkpoint.TrainedModel.load` (through torch,
``weights_only=True``), its parameters are written to ``weights.npz`` atomically (a temporary file renamed
into place), and the directory is read again without torch to prove the new file gives the same parameters.
``weights.pt`` is kept unless ``--remove-pt`` is given; once ``weights.npz`` exists it is the one read.
Needs torch (the ``[train]`` extra) only for this one conversion.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from .._errors import CheckpointError, ZsaError

__all__ = ["convert_model_dir", "main"]


def convert_model_dir(path: str | os.PathLike[str], *, remove_pt: bool = False) -> Path:
    """Write ``weights.npz`` beside the ``weights.pt`` of the model directory ``path``; returns the new file.

    A directory that already has ``weights.npz`` is left as it is (and its ``weights.pt`` removed only when
    ``remove_pt`` is given).
    """
    from .._io import atomic_path
    from ..checkpoint import OLD_WEIGHTS, WEIGHTS, TrainedModel

    path = Path(path)
    old, new = path / OLD_WEIGHTS, path / WEIGHTS
    if not new.is_file():
        if not old.is_file():
            raise CheckpointError(f"{path}: no {OLD_WEIGHTS} to convert (not a model directory of an older version)")
        trained = TrainedModel.load(path)  # through torch, every check
        with atomic_path(new) as tmp, open(tmp, "wb") as f:
            np.savez(f, **trained.model.params)
        again = TrainedModel.load(path)  # now from weights.npz, without torch
        same = all(np.array_equal(trained.model.params[k], again.model.params[k]) for k in trained.model.params)
        if not same:  # pragma: no cover - np.savez and np.load round-trip float32 exactly
            new.unlink()
            raise CheckpointError(f"{new}: the converted weights differ from {old}; nothing was changed")
    if remove_pt and old.is_file():
        old.unlink()
    return new


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zeroshot_audio.train.convert",
                                 description="Convert model directories written by older versions of zeroshot-audio "
                                             "(weights.pt) to weights.npz, which loads without torch.")
    ap.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR")
    ap.add_argument("--remove-pt", action="store_true", help="delete weights.pt once weights.npz is written")
    args = ap.parse_args(argv)
    status = 0
    for d in args.model_dirs:
        try:
            out = convert_model_dir(d, remove_pt=args.remove_pt)
        except ZsaError as err:
            print(f"convert: {err}", file=sys.stderr)
            status = max(status, err.exit_code)
        else:
            print(f"wrote {out}")
    return status


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

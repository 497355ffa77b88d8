"""Shared pieces of the ``zsa`` commands: the parser class, argument validators, output checks, failure reports."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .._errors import ParameterError


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


def _int_in(low: int, high: int | None, expected: str):
    """An argparse type: an integer in ``low..high`` (``high`` None: no upper bound), else a usage error saying
    ``expected``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _int_in(1, None, "a positive integer")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


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
    from ..data.dataset import read_class_list

    _require(path, "--classes", kind="file")
    return read_class_list(path)


def _label_encoder(args: argparse.Namespace):
    from ..text import get_label_encoder

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


def _print_failures(failures: dict[str, str], store: str | Path, *, limit: int = 10) -> None:
    from .._io import escape_surrogates

    for key, reason in list(failures.items())[:limit]:
        print(f"zsa: failed: {escape_surrogates(key)}: {escape_surrogates(reason)}", file=sys.stderr)
    if len(failures) > limit:
        print(f"zsa: ... and {len(failures) - limit} more failures, all listed in {Path(store) / 'failures.csv'}",
              file=sys.stderr)


def _require_found(found: list, inputs: list[str], unreadable: list[tuple[Path, str]]) -> None:
    """Refuse a walk of ``inputs`` that found no audio: a data error when folders could not be read (naming the
    first), a usage error when there is simply nothing there."""
    if found:
        return
    if unreadable:
        from .._errors import DataError

        raise DataError(f"no audio files could be read in {', '.join(inputs)} ({unreadable[0][0]}: {unreadable[0][1]})")
    raise ParameterError(f"no audio files found in {', '.join(inputs)}")

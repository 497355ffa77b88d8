"""Exception hierarchy of zeroshot-audio.

Every error the library raises on purpose derives from :class:`ZsaError`, so a caller can catch one type.
Messages are one line and name the offending input (file, column, option) and say what was expected.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "ZsaError",
    "ParameterError",
    "DataError",
    "StoreError",
    "CheckpointError",
    "AudioError",
    "MissingDependencyError",
    "reading",
    "reads_user_data",
    "describe_read_error",
    "read_error_types",
]


class ZsaError(Exception):
    """Base class of all zeroshot-audio errors."""

    #: Exit code of the ``zsa`` command when this error stops it (2: usage or configuration, 1: data).
    exit_code = 2


class ParameterError(ZsaError, ValueError):
    """A function argument or command-line option is invalid (usage/configuration error)."""

    exit_code = 2


class DataError(ZsaError, ValueError):
    """A dataset file (``clips.csv``, ``events.tsv``, ``classes.csv``) is missing or malformed."""

    exit_code = 1


class StoreError(ZsaError):
    """An embedding store is missing, inconsistent or incompatible with what reads it."""

    exit_code = 1


class CheckpointError(ZsaError):
    """A model directory is missing, incomplete, or does not match the data it is used with."""

    exit_code = 2


class AudioError(ZsaError):
    """An audio file cannot be decoded or holds no usable signal."""

    exit_code = 1


class MissingDependencyError(ZsaError, ImportError):
    """An optional dependency needed by the requested feature is not installed."""

    exit_code = 2


def missing_dependency(package: str, feature: str) -> MissingDependencyError:
    """Build the error raised when optional ``package`` is needed for ``feature``."""
    return MissingDependencyError(f"{feature} needs the package '{package}': pip install {package}")


def missing_extra_dependency(package: str, feature: str, extra: str) -> MissingDependencyError:
    """The one-line error raised when optional ``package``, installed by the extra ``extra``, is needed for
    ``feature``."""
    return MissingDependencyError(f"{feature} needs the package '{package}': pip install 'zeroshot-audio[{extra}]'")


#: Optional packages and the extra of zeroshot-audio that installs them.
EXTRAS = {"torch": "train", "sed_scores_eval": "eval"}


def missing_extra(err: ModuleNotFoundError) -> MissingDependencyError | None:
    """The one-line error for an optional package of an extra that is not installed, else None."""
    top = (err.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    hint = (" (on a machine without a GPU, first: pip install torch==2.13.0 --index-url "
            "https://download.pytorch.org/whl/cpu)") if top == "torch" else ""
    return MissingDependencyError(f"this command needs {top}, which tagging does not: "
                                  f"pip install 'zeroshot-audio[{extra}]'{hint}")


def name_some(items: list, limit: int = 5) -> str:
    """``'a', 'b' and 3 more``: the first ``limit`` items of a list for an error message."""
    shown = ", ".join(repr(x) for x in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def read_error_types() -> tuple[type[BaseException], ...]:
    """Exception types that decoding hostile bytes raises (bad text, JSON, pickle, zip, zlib, struct, sizes).

    Inside a reader of user data they mean "this file is not what it claims", not a bug of the reader.
    """
    import csv
    import json
    import pickle
    import struct
    import zipfile
    import zlib

    return (UnicodeError, json.JSONDecodeError, pickle.UnpicklingError, zipfile.BadZipFile, zlib.error,
            struct.error, csv.Error, EOFError, MemoryError, OverflowError)


def describe_read_error(err: BaseException) -> str:
    """One line saying what was wrong with the bytes read, for a message that names the file."""
    import json
    import pickle

    if isinstance(err, UnicodeDecodeError):
        return f"not valid {err.encoding.upper().replace('-SIG', '')} text (byte {err.start}: {err.reason})"
    if isinstance(err, json.JSONDecodeError):
        return f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
    if isinstance(err, MemoryError):
        return "it declares a size too large to allocate (MemoryError)"
    if isinstance(err, EOFError):
        return "it ends early (empty or truncated)"
    if isinstance(err, pickle.UnpicklingError):
        return "not a valid PyTorch weights file (unpickling failed)"  # never repeat torch's weights_only hint
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if "weights_only" in text:
        text = ""
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@contextlib.contextmanager
def reading(where: object, what: str, error: type[ZsaError] = DataError) -> Iterator[None]:
    """Turn a generic failure while reading ``where`` (a path) into ``error``: one line naming it.

    :class:`ZsaError` passes through unchanged; decoding errors (:func:`read_error_types`), wrong JSON types
    (``TypeError``, ``KeyError``, ``AttributeError``, ``ValueError``, ``IndexError``), OS errors and errors of
    the parsing library (``RuntimeError``) become ``error("WHERE: cannot be read as WHAT: ...")``, chained
    to the original so that ``zsa --debug`` shows its traceback.
    """
    try:
        yield
    except ZsaError:
        raise
    except (*read_error_types(), ValueError, TypeError, KeyError, IndexError, AttributeError, OSError,
            RuntimeError) as err:
        if isinstance(err, BrokenPipeError):  # pragma: no cover - a closed stdout, not a read error
            raise
        raise error(f"{where}: cannot be read as {what}: {describe_read_error(err)}") from err


def reads_user_data(what: str, error: type[ZsaError] = DataError, *,
                    where: str | Callable[[dict[str, Any]], object] = "path") -> Callable:
    """Decorate a reader of user files so that a generic failure becomes ``error`` naming the file.

    ``where`` is the name of the argument that holds the path, or a function of the bound arguments that
    returns it. The arguments are bound only when a failure is converted, so the decorator costs nothing on
    success.
    """

    def decorate(func: Callable) -> Callable:
        import inspect

        sig = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except ZsaError:
                raise
            except Exception:
                bound = sig.bind_partial(*args, **kwargs).arguments
                try:
                    place = where(bound) if callable(where) else bound.get(where, "?")
                except Exception:  # pragma: no cover - the path itself cannot be told
                    place = "?"
                with reading(place, what, error):
                    raise
            raise AssertionError("unreachable")  # pragma: no cover

        return wrapper

    return decorate

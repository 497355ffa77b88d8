"""Exception hierarchy of zeroshot-audio.

Every error the library raises on purpose derives from :class:`ZsaError`, so a caller can catch one type.
Messages are one line and name the offending input (file, column, option) and say what was expected.
"""

from __future__ import annotations

__all__ = [
    "ZsaError",
    "ParameterError",
    "DataError",
    "StoreError",
    "CheckpointError",
    "AudioError",
    "MissingDependencyError",
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


def name_some(items: list, limit: int = 5) -> str:
    """``'a', 'b' and 3 more``: the first ``limit`` items of a list for an error message."""
    shown = ", ".join(repr(x) for x in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")

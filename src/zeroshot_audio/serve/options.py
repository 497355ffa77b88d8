"""The limits of ``zsa serve`` (:class:`ServeOptions`): plain Python, so ``zsa serve --help`` and the checks of
the command line need no web framework."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

from .._errors import ParameterError

__all__ = ["ServeOptions"]


@dataclass(frozen=True)
class ServeOptions:
    """Limits and settings of the tagging server (:func:`zeroshot_audio.serve.create_app`).

    Parameters
    ----------
    workers : int
        Tagging threads: requests tagged at the same time.
    queue : int
        Requests admitted beyond the running ones (uploading or waiting for a worker); a request beyond
        ``workers + queue`` gets 503 with ``Retry-After: 1`` at once.
    max_upload_mb : float
        Largest request body in MB (10**6 bytes); a larger one gets 413 (refused before reading when its
        Content-Length says so, cut off while streaming otherwise).
    max_files : int
        Files per request.
    max_labels : int
        Labels per request (after splitting and removing duplicates).
    max_duration_s : float
        Longest recording in seconds (read from the file's header before decoding); a longer file gets its
        own 413 entry.
    token : str or None
        Bearer token every ``/v1/*`` route except ``/v1/health`` requires; None: no authentication.
    threads : int or None
        onnxruntime intra-op threads of the audio network, shared by the workers; None: the machine's cores
        divided by ``workers`` (at least 1).
    """

    workers: int = 1
    queue: int = 8
    max_upload_mb: float = 100.0
    max_files: int = 20
    max_labels: int = 200
    max_duration_s: float = 3600.0
    token: str | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        for name, low in (("workers", 1), ("queue", 0), ("max_files", 1), ("max_labels", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}")
        for name in ("max_upload_mb", "max_duration_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ParameterError(f"{name} must be a positive number, got {value!r}")
        if self.token is not None and (not isinstance(self.token, str) or not self.token.strip()):
            raise ParameterError("token must be a non-empty string (or None for no authentication)")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ParameterError(f"threads must be a positive integer or None, got {self.threads!r}")

    @property
    def capacity(self) -> int:
        """Requests admitted at once: ``workers + queue``."""
        return self.workers + self.queue

    @property
    def max_upload_bytes(self) -> int:
        """:attr:`max_upload_mb` in bytes."""
        return int(self.max_upload_mb * 1_000_000)

    @property
    def onnx_threads(self) -> int:
        """:attr:`threads`, or the cores divided by the workers."""
        if self.threads is not None:
            return self.threads
        return max(1, (os.cpu_count() or 1) // self.workers)

    def limits(self) -> dict[str, float | int]:
        """The limits ``/v1/health`` reports."""
        return {"max_upload_mb": self.max_upload_mb, "max_files": self.max_files, "max_labels": self.max_labels,
                "max_duration_s": self.max_duration_s}

    def replace(self, **changes: object) -> ServeOptions:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

"""Bounded admission of tagging requests: at most ``workers`` running and ``queue`` waiting, 503 beyond."""

from __future__ import annotations

import threading

from ._form import ApiError

__all__ = ["Admission"]


class Admission:
    """Counts the requests in the server: admitted (uploading or waiting for a worker) and running.

    A request is admitted by :meth:`enter` before its body is read and leaves by :meth:`leave` once its
    tagging job is over (or never started); the worker marks the job with :meth:`start` / :meth:`stop`.
    Thread-safe: the job ends in a worker thread.

    Parameters
    ----------
    workers : int
        Tagging threads.
    queue : int
        Admitted requests beyond the running ones.
    """

    def __init__(self, workers: int, queue: int) -> None:
        self.workers = workers
        self.capacity = workers + queue
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0

    def enter(self) -> None:
        """Admit a request, or raise the 503 :class:`ApiError` (``Retry-After: 1``) when the server is full."""
        with self._lock:
            if self._admitted >= self.capacity:
                raise ApiError(503, f"server busy: {self._running} request(s) tagging and "
                                    f"{self._admitted - self._running} waiting, the most it takes; retry in a second",
                               headers={"Retry-After": "1"})
            self._admitted += 1

    def leave(self) -> None:
        with self._lock:
            self._admitted -= 1

    def start(self) -> None:
        with self._lock:
            self._running += 1

    def stop(self) -> None:
        with self._lock:
            self._running -= 1

    def state(self) -> dict[str, int]:
        """``{"running", "waiting", "workers", "capacity"}`` as ``/v1/health`` reports them."""
        with self._lock:
            return {"running": self._running, "waiting": self._admitted - self._running, "workers": self.workers,
                    "capacity": self.capacity}

"""Audio files -> segment embeddings in a store: the engine of ``zsa embed``.

Files are decoded in blocks and embedded chunk by chunk, so memory stays bounded for recordings of any
length (a segment depends only on its own samples, so chunking changes nothing). Worker processes embed
files in parallel; the parent process is the only writer of the store. A run resumes: clips already in
the store are skipped. A file that fails is recorded in the store's ``failures.csv`` with its reason,
and the rest of the run goes on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ParameterError, ZsaError

__all__ = ["EmbedSummary", "embed_file", "embed_inputs", "resolve_inputs", "embed_to_store"]

log = logging.getLogger(__name__)

#: Segments embedded per call of the network: bounds memory for long files.
CHUNK_SEGMENTS = 64


@dataclass
class EmbedSummary:
    """What an embedding run did."""

    n_inputs: int = 0
    n_embedded: int = 0
    n_skipped: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    silent: list[str] = field(default_factory=list)
    padded: list[str] = field(default_factory=list)
    audio_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def n_failed(self) -> int:
        return len(self.failures)

    def line(self) -> str:
        speed = ""
        if self.seconds > 0 and self.audio_seconds:
            speed = f", {self.audio_seconds / self.seconds:.0f}x real time"
        return (f"embedded {self.n_embedded}, already in store {self.n_skipped}, failed {self.n_failed} "
                f"of {self.n_inputs} file(s); {self.audio_seconds / 60:.1f} min of audio in {self.seconds:.1f} s"
                + speed)


def embed_file(embedder: Any, path: str | os.PathLike[str], *, block_seconds: float = 60.0):
    """Embed one audio file with bounded memory.

    Returns
    -------
    EmbedOutput
        ``embeddings [T, D]``, ``times [T, 2]``, ``logits [T, K]`` or None, duration, padded flag.
    """
    from .audio import stream_audio
    from .embedders.base import EmbedOutput

    hop, win = embedder.hop_samples, embedder.window_samples
    chunk_len = (CHUNK_SEGMENTS - 1) * hop + win
    buf = np.zeros(0, dtype=np.float32)
    embs: list[np.ndarray] = []
    logits: list[np.ndarray] = []
    done = 0  # segments embedded so far
    total = 0  # samples read so far
    peak = 0.0
    for block in stream_audio(path, sample_rate=embedder.sample_rate, block_seconds=block_seconds):
        if _WORKER_STOP is not None and _WORKER_STOP.is_set():
            raise _Stopped(f"{path}: interrupted")
        total += block.shape[0]
        if block.size:
            peak = max(peak, float(np.abs(block).max()))
        buf = np.concatenate([buf, block]) if buf.size else block
        while buf.shape[0] >= chunk_len:
            e, lg = embedder.embed_segments(buf[:chunk_len], CHUNK_SEGMENTS)
            embs.append(e)
            if lg is not None:
                logits.append(lg)
            done += CHUNK_SEGMENTS
            buf = buf[CHUNK_SEGMENTS * hop :]
    if total == 0:
        from ._errors import AudioError

        raise AudioError(f"{path}: no audio samples (zero length)")
    t_total = embedder.n_segments(total)
    rest = t_total - done
    if rest > 0:
        need = (rest - 1) * hop + win
        if buf.shape[0] < need:
            buf = np.concatenate([buf, np.zeros(need - buf.shape[0], dtype=np.float32)])
        e, lg = embedder.embed_segments(buf[:need], rest)
        embs.append(e)
        if lg is not None:
            logits.append(lg)
    out = EmbedOutput(
        embeddings=np.concatenate(embs).astype(np.float32),
        times=embedder.segment_times(t_total, total),
        logits=np.concatenate(logits) if logits else None,
        duration=total / embedder.sample_rate,
        padded=total < win,
        peak=peak,
    )
    return out


def resolve_inputs(paths: Sequence[str | os.PathLike[str]], *,
                   errors: list[tuple[Path, str]] | None = None) -> list[tuple[str, Path]]:
    """``(key, file)`` pairs for dataset directories, folders and files.

    A dataset directory (one holding ``clips.csv``) gives its clips, keyed by their ``filename``; another
    folder gives the audio files below it, keyed by their path relative to the folder; a file is keyed by
    its name. Two inputs with one key are an error. Folders are walked by
    :func:`zeroshot_audio.audio.find_audio_files`: entries that are not regular files are skipped with a
    warning, and ``errors`` (when given) receives ``(folder, reason)`` for each folder that cannot be read.
    A file name that is not valid UTF-8 gives a key holding surrogate escapes (:func:`os.fsdecode`), which
    the store keeps exactly.
    """
    from .audio import find_audio_files
    from .data.dataset import read_dataset

    out: list[tuple[str, Path]] = []
    for p in map(Path, paths):
        if not p.exists() and not p.is_symlink():
            raise ParameterError(f"{p}: no such file or directory")
        if p.is_dir() and (p / "clips.csv").is_file():
            ds = read_dataset(p)
            out.extend((f, p / f) for f in ds.filenames)
        elif p.is_dir():
            out.extend((f.relative_to(p).as_posix(), f) for f in find_audio_files([p], errors=errors))
        else:
            out.append((p.name, p))
    seen: dict[str, Path] = {}
    for key, f in out:
        if key in seen and seen[key] != f:
            raise ParameterError(f"two inputs share the key {key!r}: {seen[key]} and {f} (embed them into "
                                 "separate stores, or pass their common folder)")
        seen[key] = f
    return list(seen.items())


# ------------------------------------------------------------------------------------------- workers

_WORKER_EMBEDDER: Any = None
_WORKER_STOP: Any = None  # in a worker process: an Event the parent sets to stop the file in progress


class _Stopped(Exception):
    """The parent asked this worker to stop (an interrupt): the file in progress is given up."""


def _make_embedder(embedder: Any, options: dict[str, Any]) -> Any:
    """An embedder from a registry name (built with ``options``) or an :class:`Embedder` instance."""
    if isinstance(embedder, str):
        from .embedders import get_embedder

        return get_embedder(embedder, **options)
    return embedder


def _init_worker(embedder: Any, options: dict[str, Any]) -> None:
    global _WORKER_EMBEDDER
    _WORKER_EMBEDDER = _make_embedder(embedder, options)


def _exit_with_parent() -> None:
    """In a worker process: exit as soon as the process that started the pool is gone, even after SIGKILL.

    A forkserver worker is the forkserver's child, so neither PR_SET_PDEATHSIG nor the parent pid reach the
    main process; its sentinel (a pipe the main process holds open) does: it becomes readable when the main
    process ends, however it ends. Once the workers are gone the forkserver and the resource tracker see
    their last client close and exit too.
    """
    import multiprocessing as mp
    import threading
    from multiprocessing.connection import wait

    parent = mp.parent_process()
    if parent is None or getattr(parent, "sentinel", None) is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="zsa-parent-watch", daemon=True).start()


def _init_pool_worker(embedder: Any, options: dict[str, Any], stop: Any) -> None:
    """Initializer of a worker process: the parent handles interrupts and stops the workers itself."""
    import signal

    global _WORKER_STOP
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    _WORKER_STOP = stop
    _exit_with_parent()
    _init_worker(embedder, options)


def _stop_pool(pool: Any, stop: Any, timeout: float = 10.0) -> None:
    """Stop a ProcessPoolExecutor at once: cancel what waits, stop the files in progress, reap the workers.

    The workers give up their file at the next chunk (``stop`` is set) and exit between tasks, so no result
    message is cut in half (a worker killed while sending one leaves the pool's manager thread, and the
    interpreter exit that joins it, waiting forever). A worker still running after ``timeout`` is killed.
    """
    procs = list((getattr(pool, "_processes", None) or {}).values())
    results = getattr(pool, "_result_queue", None)  # shutdown() drops these references: take them first
    log.info("stopping %d worker process(es)", len(procs))
    stop.set()
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + timeout
    killed = False
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)
            killed = True
    writer = getattr(results, "_writer", None)
    if killed and writer is not None:  # a half-sent result: our copy of the pipe's write end is the last one
        writer.close()  # (we never write to it): closing it gives the manager thread end-of-file


def _embed_task(key: str, path: str, block_seconds: float):
    """Run in a worker: ``(key, result or None, error message or None)``."""
    try:
        return key, embed_file(_WORKER_EMBEDDER, path, block_seconds=block_seconds), None
    except ZsaError as err:
        return key, None, str(err)
    except Exception as err:  # one bad file must not end the run: record it with its reason
        return key, None, f"{path}: {type(err).__name__}: {err}"


def embed_inputs(
    items: Sequence[tuple[str, Path]],
    *,
    embedder: Any = "yamnet",
    options: dict[str, Any] | None = None,
    workers: int = 1,
    block_seconds: float = 60.0,
) -> Iterator[tuple[str, Any, str | None]]:
    """Embed ``(key, file)`` items, yielding ``(key, EmbedOutput or None, error or None)`` as they finish."""
    options = dict(options or {})
    if workers < 1:
        raise ParameterError(f"workers must be >= 1, got {workers}")
    if workers == 1 or len(items) <= 1:
        _init_worker(embedder, options)
        for key, path in items:
            yield _embed_task(key, str(path), block_seconds)
        return
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    stop = ctx.Event()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_pool_worker,
                               initargs=(embedder, options, stop))
    try:
        todo = iter(items)
        running = set()
        for key, path in todo:  # keep a bounded number of files in flight
            running.add(pool.submit(_embed_task, key, str(path), block_seconds))
            if len(running) >= 2 * workers:
                break
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                yield fut.result()
                nxt = next(todo, None)
                if nxt is not None:
                    running.add(pool.submit(_embed_task, nxt[0], str(nxt[1]), block_seconds))
    except BaseException:  # an interrupt (SIGINT, SIGTERM) or the consumer closing us: stop the workers now
        _stop_pool(pool, stop)
        raise
    pool.shutdown(wait=True)


def embed_to_store(
    inputs: Iterable[tuple[str, Path]],
    out: str | os.PathLike[str],
    *,
    embedder: Any = "yamnet",
    hop: float = 0.96,
    workers: int = 1,
    progress: bool | None = None,
    shard_size: int = 256,
    block_seconds: float = 60.0,
) -> EmbedSummary:
    """Embed ``(key, file)`` pairs into the store at ``out``, skipping keys it already holds.

    Parameters
    ----------
    inputs : iterable of (str, Path)
        From :func:`resolve_inputs`.
    out : path
        Store directory (created, or resumed when it exists and was made by the same embedder).
    embedder : str or Embedder
        A name from :func:`zeroshot_audio.embedders.available_embedders`, or an embedder instance (it must
        be picklable to be sent to worker processes).
    hop : float
        Seconds between segment starts (used when ``embedder`` is a name).
    workers : int
        Worker processes (each runs the network on one thread).
    progress : bool or None
        Progress bar (None: only on a terminal).
    """
    from .data.store import StoreWriter

    items = list(inputs)
    options = {"hop": hop} if isinstance(embedder, str) else {}
    meta = _make_embedder(embedder, options).store_meta()
    summary = EmbedSummary(n_inputs=len(items))
    start = time.perf_counter()
    with StoreWriter(out, meta, shard_size=shard_size) as writer:
        todo = [(k, p) for k, p in items if k not in writer]
        summary.n_skipped = len(items) - len(todo)
        bar = None
        if progress is not False and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), unit="file", desc="embedding",
                       disable=None if progress is None else not progress)
        results = embed_inputs(todo, embedder=embedder, options=options, workers=workers,
                               block_seconds=block_seconds)
        try:
            for key, result, error in results:
                if error is not None:
                    writer.add_failure(key, error)
                    summary.failures[key] = error
                    log.debug("failed: %s", error)  # the caller reports summary.failures (once)
                else:
                    writer.add(key, result.embeddings, duration=result.duration)
                    log.info("embedded %s (%d segments)", key, result.embeddings.shape[0])
                    summary.n_embedded += 1
                    summary.audio_seconds += result.duration
                    if result.peak == 0.0:
                        summary.silent.append(key)
                    if result.padded:
                        summary.padded.append(key)
                if bar is not None:
                    bar.update(1)
        finally:  # on an interrupt: workers stopped first, then the writer flushes every clip received
            results.close()
            if bar is not None:
                bar.close()
    summary.seconds = time.perf_counter() - start
    return summary

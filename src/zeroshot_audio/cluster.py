"""Archives past one machine: ``zsa tag`` and ``zsa embed`` on Ray, results in Parquet.

:func:`tag_to_parquet` tags audio files into a Parquet results directory (:class:`~zeroshot_audio.writers.
ParquetWriter`: ``tags.parquet``, ``events.parquet``, ``failures.parquet``), in this process
(``engine="local"``) or on a Ray cluster (``engine="ray"``): a Ray Data pipeline over chunks of files, each
chunk handled by one of ``workers`` actors that load the embedder and the model once, with the label embeddings
computed once here and sent to each actor when it starts. Each chunk becomes one part of the results directory,
committed atomically by the actor, so a killed worker (Ray restarts it and retries its chunk, which rewrites the
same part) or a killed run loses nothing and doubles nothing; a rerun does only the files not done yet.

:func:`embed_to_store_ray` does the same for ``zsa embed``: each chunk of files is embedded by an actor and
written as one shard of the embedding store (numbers reserved by the driver's
:class:`~zeroshot_audio.data.store.StoreWriter`, which adopts each shard and writes the failures list at the end).

Ray and pyarrow are imported only here, only when asked for. ``RAY_USAGE_STATS_ENABLED=0`` is set before Ray
starts (nothing reaches the network); a Ray instance started here has no dashboard and is shut down at the end; an
instance already running in this process (``ray.init`` by the caller) is used as it is. Inputs are local paths
(on a cluster: on a file system all nodes see) or URLs that pyarrow's file systems open (``s3://``, ``gs://``,
``hdfs://``, ``file://``): a URL is copied to a temporary file on the worker, then decoded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import ParameterError, ZsaError

__all__ = ["TagRunSummary", "tag_to_parquet", "embed_to_store_ray", "list_inputs", "ray_session", "ENGINES"]

log = logging.getLogger(__name__)

#: Where :func:`tag_to_parquet` runs.
ENGINES = ("local", "ray")


@dataclass
class TagRunSummary:
    """What a :func:`tag_to_parquet` run did."""

    n_inputs: int = 0
    n_tagged: int = 0
    n_skipped: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    #: Inputs that failed in an earlier run into the same directory (not tried again without ``retry_failed``).
    failed_before: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    audio_seconds: float = 0.0
    seconds: float = 0.0
    #: Seconds spent before the first file was tagged (Ray start, actors loading the model).
    startup_seconds: float = 0.0

    @property
    def n_failed(self) -> int:
        return len(self.failures)

    def line(self) -> str:
        """One line for the terminal."""
        before = f" (and {len(self.failed_before)} earlier)" if self.failed_before else ""
        return (f"tagged {self.n_tagged}, already done {self.n_skipped}, failed {self.n_failed}{before} of "
                f"{self.n_inputs} file(s); {self.audio_seconds / 60:.1f} min of audio in {self.seconds:.1f} s")


# ------------------------------------------------------------------------------------------------- inputs

def _is_url(path: str) -> bool:
    return "://" in path


def list_inputs(inputs: Sequence[str | os.PathLike[str]], *, files_from: str | os.PathLike[str] | None = None,
                errors: list[tuple[Path, str]] | None = None) -> list[str]:
    """The audio files of ``inputs`` (files, folders, URLs of files or folders) and of the list ``files_from``
    (one path or URL per line; blank lines and ``#`` comments skipped), in order, each once.

    Local folders are walked by :func:`zeroshot_audio.audio.find_audio_files` (``errors`` receives the folders
    that cannot be read); a URL of a folder lists the files below it with :data:`~zeroshot_audio.audio.
    AUDIO_EXTENSIONS` through pyarrow's file systems.
    """
    from .audio import AUDIO_EXTENSIONS, find_audio_files

    items = [os.fspath(p) for p in inputs]
    if files_from is not None:
        from ._io import decode_text

        try:
            data = Path(files_from).read_bytes()
        except OSError as err:
            raise ParameterError(f"--files-from {files_from}: cannot be read ({err.strerror or err})") from None
        for line in decode_text(data, f"--files-from {files_from}").splitlines():
            if line.strip() and not line.strip().startswith("#"):
                items.append(line.strip())
    out: dict[str, None] = {}
    for item in items:
        if not _is_url(item):
            out.update((str(f), None) for f in find_audio_files([item], errors=errors))
            continue
        from pyarrow import fs

        try:
            filesystem, inner = fs.FileSystem.from_uri(item)
            info = filesystem.get_file_info(inner)
        except (OSError, ValueError) as err:
            raise ParameterError(f"audio input {item}: {err}") from None
        if info.type == fs.FileType.NotFound:
            raise ParameterError(f"audio input {item}: no such file or directory")
        if info.type != fs.FileType.Directory:
            out[item] = None
            continue
        scheme = item.split("://", 1)[0]
        found = filesystem.get_file_info(fs.FileSelector(inner, recursive=True))
        for f in sorted(found, key=lambda i: i.path):
            rel = f.path[len(inner.rstrip("/")) + 1:]
            if (f.type == fs.FileType.File and os.path.splitext(f.path)[1].lower() in AUDIO_EXTENSIONS
                    and not any(part.startswith(".") for part in rel.split("/"))):
                out[f"{scheme}://{f.path}" if scheme != "file" else f"file://{f.path}"] = None
    return list(out)


@contextlib.contextmanager
def _readable(path: str) -> Iterator[str]:
    """A local path to decode ``path``: itself, or for a URL a temporary copy (removed afterwards)."""
    if not _is_url(path):
        yield path
        return
    import shutil
    import tempfile

    from pyarrow import fs

    from ._errors import AudioError

    try:
        filesystem, inner = fs.FileSystem.from_uri(path)
        suffix = os.path.splitext(inner)[1]
        fd, tmp = tempfile.mkstemp(prefix="zsa-", suffix=suffix)
        with os.fdopen(fd, "wb") as out, filesystem.open_input_stream(inner) as src:
            shutil.copyfileobj(src, out, 1 << 20)
    except (OSError, ValueError) as err:
        raise AudioError(f"{path}: cannot be read ({err})") from None
    try:
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# ---------------------------------------------------------------------------------------------------- Ray

def _import_ray() -> Any:
    """Ray, with its usage statistics off (set before Ray starts), or the one-line error naming the extra."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        from ._errors import missing_extra_dependency

        raise missing_extra_dependency("ray", "--engine ray", "ray") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[Any]:
    """Yield the ``ray`` module connected to a cluster.

    A Ray instance already initialised in this process is used as it is. Otherwise ``address`` (``"auto"``, a
    ``ray://`` address, a head node's ``host:port``) is connected to, or without it a local instance is started
    (``num_cpus`` CPUs, no dashboard), and shut down at the end.
    """
    local = address is None and not os.environ.get("RAY_ADDRESS")  # RAY_ADDRESS: inside `ray job submit`
    if local and "ray" not in sys.modules:
        # a one-machine instance: Ray's processes use the loopback, as on macOS and Windows, instead of finding the
        # machine's network address (by a UDP connect to 8.8.8.8) and serving on it; read when ray is imported
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    if local:
        options.update(num_cpus=num_cpus, include_dashboard=False)
    try:
        with _no_cloud_probe() if local else contextlib.nullcontext():
            ray.init(address=address, **options)
    except ConnectionError as err:
        raise ParameterError(f"--address {address}: cannot connect to a Ray cluster ({err})") from None
    try:
        yield ray
    finally:
        ray.shutdown()


#: A proxy address where nothing listens: HTTP requests of the local Ray processes to other hosts fail at once.
_DEAD_PROXY = "http://127.0.0.1:9"
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY")


@contextlib.contextmanager
def _no_cloud_probe() -> Iterator[None]:
    """While a local Ray instance starts: HTTP to any host but the loopback goes to a dead proxy.

    Ray's usage-statistics module runs in its dashboard process even with the dashboard off and usage statistics
    disabled, and asks the cloud metadata services (169.254.169.254, metadata.google.internal) which cloud it runs
    on, with ``requests``, which honours these variables. The processes Ray starts inherit them; this process gets
    its own values back afterwards. Ray's own traffic (gRPC, to 127.0.0.1) is exempt through ``no_proxy``.
    """
    saved = {k: os.environ.get(k) for k in _PROXY_VARIABLES}
    os.environ.update({"http_proxy": _DEAD_PROXY, "https_proxy": _DEAD_PROXY, "HTTP_PROXY": _DEAD_PROXY,
                       "HTTPS_PROXY": _DEAD_PROXY, "no_proxy": "127.0.0.1,localhost,::1",
                       "NO_PROXY": "127.0.0.1,localhost,::1"})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: The environment of the actors. Ray gives a 1-CPU worker OMP_NUM_THREADS=1, which puts OpenBLAS on its
#: single-thread kernels: the model's float32 products then differ from a plain ``zsa tag`` (which runs OpenBLAS
#: with a thread per core) in the last digits (scores by up to ~4e-6). Two OpenBLAS threads take the same kernels
#: as any multi-threaded run, so the actors' results equal ``zsa tag``'s on a multi-core machine; with
#: OPENBLAS_THREAD_TIMEOUT=4 its idle thread sleeps at once instead of spinning, so that the second thread costs no
#: CPU that the other actors need (benchmarks/ray_scale.py: without it, 2 actors on 2 cores were slower than one).
_ACTOR_ENV = {"OPENBLAS_NUM_THREADS": "2", "OPENBLAS_THREAD_TIMEOUT": "4", "RAY_USAGE_STATS_ENABLED": "0",
              "ORT_DISABLE_TELEMETRY": "1"}


def _quiet_ray_data(ray: Any) -> None:
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # ours counts files
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def _run_chunks(ray: Any, chunks: list[Any], actor: type, kwargs: dict[str, Any], workers: int | None,
                on_row: Callable[[dict[str, Any]], None]) -> None:
    """Map ``chunks`` (one Ray Data row each) through a pool of ``workers`` ``actor``s, one chunk per call, and
    hand each result row to ``on_row`` as it arrives. Ray restarts a killed actor and retries its chunk."""
    _quiet_ray_data(ray)
    if workers is None:
        workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
    workers = min(workers, len(chunks))
    ds = ray.data.from_items([{"task": pickle.dumps(c)} for c in chunks], override_num_blocks=len(chunks))
    # Ray Data's actor pools restart a dead actor and retry its calls without limit (max_restarts and
    # max_task_retries -1 by default); two chunks in flight per actor hide the round trip to the driver between chunks
    pool = ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=2)
    ds = ds.map_batches(actor, fn_constructor_kwargs=kwargs, batch_size=1, compute=pool, num_cpus=1,
                        runtime_env={"env_vars": _ACTOR_ENV})
    for row in ds.iter_rows():
        on_row(row)


def _chunks(items: list[Any], workers: int, size: int | None) -> list[list[Any]]:
    """``items`` in consecutive chunks of ``size`` (default: about 4 per worker, at most 256 items)."""
    if size is None:
        size = max(1, min(256, math.ceil(len(items) / (4 * max(workers, 1)))))
    return [items[i : i + size] for i in range(0, len(items), size)]


# ---------------------------------------------------------------------------------------------------- tag

def _tag_chunk(tagger: Any, files: Sequence[tuple[str, str]], labels: list[str], emb: Any, options: Any,
               writer: Any, summary: TagRunSummary, on_failure: Callable[[str, str], None] | None = None,
               prototypes: Any = None) -> None:
    """Tag ``(file, path)`` pairs into ``writer`` (a :class:`~zeroshot_audio.writers.ParquetWriter`): the loop
    of both engines. A file that fails is a row of ``failures.parquet`` and the run goes on."""
    from ._errors import DataError

    def fail(name: str, message: str) -> None:
        writer.add_failure(name, message)
        summary.failures[name] = message
        if on_failure is not None:
            on_failure(name, message)

    for name, path in files:
        try:
            with _readable(path) as local:
                res = tagger.tag_encoded(local, labels, emb, event_options=options, prototypes=prototypes)
            res.file = name
        except ZsaError as err:
            fail(name, str(err) if _is_url(path) or name in str(err) else f"{name}: {err}")
            continue
        try:
            writer.write(res)
        except DataError as err:
            fail(name, str(err) if name in str(err) else f"{name}: {err}")
            continue
        summary.n_tagged += 1
        summary.audio_seconds += res.duration
        if res.peak == 0.0:
            summary.silent.append(name)


class _TagActor:
    """A Ray actor: loads the model once, tags one chunk of files per call into one part of the results."""

    def __init__(self, model: str, labels: list[str], embeddings: Any, options: dict[str, Any], out: str,
                 prototypes: Any = None):
        from .events import EventOptions
        from .tagging import load_model

        self.tagger = load_model(model)
        self.labels = labels
        self.emb = embeddings
        self.prototypes = prototypes
        self.options = EventOptions(**options)
        self.out = out

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        from .writers import ParquetWriter

        rows: dict[str, list] = {"n": [], "failures": [], "silent": [], "audio_seconds": [], "pid": [],
                                 "peak_mb": []}
        for task in batch["task"]:
            chunk = pickle.loads(task)
            writer = ParquetWriter(self.out, part_files=len(chunk) + 1)
            writer.keys = {name: (size, mtime) for name, _, size, mtime in chunk}
            summary = TagRunSummary()
            _tag_chunk(self.tagger, [(n, p) for n, p, _, _ in chunk], self.labels, self.emb, self.options, writer,
                       summary, prototypes=self.prototypes)
            writer.commit()  # the part's marker last: the chunk counts as done
            rows["n"].append(len(chunk))
            rows["failures"].append(json.dumps(summary.failures))
            rows["silent"].append(json.dumps(summary.silent))
            rows["audio_seconds"].append(summary.audio_seconds)
            rows["pid"].append(os.getpid())
            rows["peak_mb"].append(_peak_mb())
        return rows


def tag_to_parquet(inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                   labels: Sequence[str] | str | None = None, examples: Any = None,
                   model: str | os.PathLike[str] = "default", engine: str = "local",
                   address: str | None = None, workers: int | None = None, event_options: Any = None,
                   files_per_part: int | None = None, retry_failed: bool = False, progress: bool | None = None,
                   on_chunk: Callable[[dict[str, Any]], None] | None = None,
                   on_failure: Callable[[str, str], None] | None = None) -> TagRunSummary:
    """Tag audio files into the Parquet results directory ``out``, here or on Ray; resumable.

    Parameters
    ----------
    inputs : sequence of path or URL
        Audio files (folders are walked: :func:`list_inputs`).
    out : path
        The results directory (:class:`~zeroshot_audio.writers.ParquetWriter`); a rerun into it tags only the
        files not done yet (same path, size and modification time). On a cluster it must be on a file system all
        nodes see.
    labels : sequence of str or str, optional
        As for :meth:`~zeroshot_audio.tagging.Tagger.tag`.
    examples : folder, ExampleSet or mapping, optional
        Labels given by example clips, as for :meth:`~zeroshot_audio.tagging.Tagger.tag`: their classes are built
        once, here, and sent to the workers. The results directory records a digest of the examples (their
        labels and the bytes of every clip), and a rerun with other examples is refused.
    model : str or path
        ``"default"`` or a model directory (on a cluster: a path every node sees).
    engine : {"local", "ray"}
        Tag in this process, or with a pool of Ray actors.
    address : str, optional
        Ray cluster to connect to (``"auto"``, ``"ray://head:10001"``); default: the instance initialised in this
        process, else a local one started for the run.
    workers : int, optional
        Ray actors (one CPU each); default: the cluster's CPUs.
    event_options : EventOptions, optional
        How events are detected (default :class:`~zeroshot_audio.events.EventOptions`).
    files_per_part : int, optional
        Files per chunk of work and per part file (default: 256 locally; on Ray about 4 chunks per worker, at most
        256).
    retry_failed : bool
        Tag again the files that failed in an earlier run into ``out``.
    progress : bool or None
        A progress bar (None: only on a terminal).
    on_chunk : callable, optional
        Called on the driver with each chunk's result row (Ray: ``n``, ``failures``, ``pid`` of the actor...).
    on_failure : callable, optional
        Called with ``(file, message)`` of each file that fails, as it fails (locally) or when its chunk is done.

    Returns
    -------
    TagRunSummary
    """
    from .events import EventOptions
    from .tagging import load_model
    from .writers import ParquetWriter, file_key

    start = time.perf_counter()
    if engine not in ENGINES:
        raise ParameterError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if workers is not None and int(workers) < 1:
        raise ParameterError(f"workers must be >= 1, got {workers}")
    if labels is None and examples is None:
        raise ParameterError("no labels: give labels= or examples=")
    options = EventOptions() if event_options is None else event_options
    files = [os.fspath(f) for f in inputs]
    tagger = load_model(model)
    if isinstance(examples, (str, os.PathLike)):
        from .examples import read_examples

        examples = read_examples(examples)
    labels, emb, prototypes, _ = tagger.label_set(labels, examples)  # warnings about examples: logged
    run = {"labels": labels, "model": str(tagger.path.resolve()) if str(model) != "default" else "default",
           "events": dataclasses.asdict(options)}
    if examples is not None:
        run["examples"] = _examples_digest(examples)
    writer = ParquetWriter(out, run=run, part_files=files_per_part or 256)
    with writer.locked():
        keys = [file_key(f) for f in files]
        todo = writer.resume(files, keys=keys, retry_failed=retry_failed)
        summary = TagRunSummary(n_inputs=len(files), n_skipped=len(files) - len(todo),
                                failed_before=list(writer.failed_before))
        bar = None
        if progress is not False and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), unit="file", desc="tagging",
                       disable=None if progress is None else not progress)
        try:
            if engine == "local":
                summary.startup_seconds = time.perf_counter() - start
                for i in range(0, len(todo), writer.part_files):
                    chunk = todo[i : i + writer.part_files]
                    _tag_chunk(tagger, [(f, f) for f in chunk], labels, emb, options, writer, summary, on_failure,
                               prototypes)
                    writer.commit()
                    if bar is not None:
                        bar.update(len(chunk))
                    if on_chunk is not None:
                        on_chunk({"n": len(chunk), "pid": os.getpid()})
            elif todo:
                _tag_on_ray(todo, writer, summary, tagger, labels, emb, options, address=address, workers=workers,
                            files_per_part=files_per_part, bar=bar, on_chunk=on_chunk, on_failure=on_failure,
                            start=start, prototypes=prototypes)
        finally:
            if bar is not None:
                bar.close()
    summary.seconds = time.perf_counter() - start
    return summary


def _tag_on_ray(todo: list[str], writer: Any, summary: TagRunSummary, tagger: Any, labels: list[str], emb: Any,
                options: Any, *, address: str | None, workers: int | None, files_per_part: int | None, bar: Any,
                on_chunk: Callable | None, on_failure: Callable | None, start: float, prototypes: Any = None) -> None:
    items = [(f, f if _is_url(f) else os.fsdecode(os.path.abspath(f)), *writer.keys[f]) for f in todo]
    with ray_session(address) as ray:
        n_workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        chunks = _chunks(items, n_workers, files_per_part)
        model = str(tagger.path.resolve())
        kwargs = {"model": "default" if tagger.path.resolve() == _default_model_dir() else model, "labels": labels,
                  "embeddings": emb, "options": dataclasses.asdict(options),
                  "out": str(Path(writer.directory).resolve()), "prototypes": prototypes}
        first = [True]

        def on_row(row: dict[str, Any]) -> None:
            if first[0]:
                summary.startup_seconds = time.perf_counter() - start
                first[0] = False
            failures = json.loads(row["failures"])
            summary.failures.update(failures)
            summary.silent += json.loads(row["silent"])
            summary.n_tagged += int(row["n"]) - len(failures)
            summary.audio_seconds += float(row["audio_seconds"])
            if on_failure is not None:
                for name, message in failures.items():
                    on_failure(name, message)
            if bar is not None:
                bar.update(int(row["n"]))
            if on_chunk is not None:
                on_chunk(row)

        _run_chunks(ray, chunks, _TagActor, kwargs, workers, on_row)


def _examples_digest(examples: Any) -> str:
    """A digest of labels given by example (an ExampleSet or a mapping ``label -> [paths or (waveform, rate)]``):
    each label and the bytes of each of its clips, so that a results directory knows which examples made it."""
    import hashlib

    import numpy as np

    from ._io import sha256_file
    from .examples import ExampleSet

    items = examples.clips if isinstance(examples, ExampleSet) else examples
    h = hashlib.sha256()
    for label in sorted(items, key=str):
        clips = items[label]
        if isinstance(clips, (str, os.PathLike, tuple)):
            clips = [clips]
        h.update(f"label {label}\n".encode("utf-8", "surrogateescape"))
        for item in clips:
            if isinstance(item, tuple):
                wave, rate = item
                h.update(f"waveform {int(rate)}\n".encode())
                h.update(np.ascontiguousarray(wave, dtype=np.float32).tobytes())
                continue
            try:
                h.update(f"file {sha256_file(item)}\n".encode())
            except OSError:
                h.update(f"unreadable {os.fsdecode(item)}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:16]


def _peak_mb() -> float:
    """Peak resident memory of this process in MB (VmHWM; 0 where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return 0.0


def _default_model_dir() -> Path:
    from .tagging import DEFAULT_MODEL_DIR

    return DEFAULT_MODEL_DIR.resolve()


# -------------------------------------------------------------------------------------------------- embed

class _EmbedActor:
    """A Ray actor: builds the embedder once, embeds one chunk of files per call into one store shard."""

    def __init__(self, embedder: str, options: dict[str, Any], store: str, meta: dict[str, Any],
                 block_seconds: float):
        from .data.store import StoreMeta
        from .embed import _make_embedder

        self.embedder = _make_embedder(embedder, options)
        self.store = store
        self.meta = StoreMeta.from_json(meta)
        self.block_seconds = block_seconds

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        from .data.store_writer import check_segments, write_shard
        from .embed import embed_file

        rows: dict[str, list] = {"number": [], "n": [], "failures": [], "silent": [], "padded": [],
                                 "audio_seconds": [], "pid": []}
        for task in batch["task"]:
            number, chunk = pickle.loads(task)
            keys, segments, durations = [], [], []
            failures: dict[str, str] = {}
            silent, padded, seconds = [], [], 0.0
            for key, path in chunk:
                try:
                    with _readable(path) as local:
                        res = embed_file(self.embedder, local, block_seconds=self.block_seconds)
                    stored, duration = check_segments(key, res.embeddings, res.duration, self.meta)
                except ZsaError as err:
                    failures[key] = str(err) if key in str(err) or path in str(err) else f"{path}: {err}"
                    continue
                except Exception as err:  # one bad file must not end the run (as embed._embed_task)
                    failures[key] = f"{path}: {type(err).__name__}: {err}"
                    continue
                keys.append(key)
                segments.append(stored)
                durations.append(duration)
                seconds += res.duration
                if res.peak == 0.0:
                    silent.append(key)
                if res.padded:
                    padded.append(key)
            if keys:
                write_shard(self.store, number, keys, segments, durations)
            rows["number"].append(number if keys else -1)
            rows["n"].append(len(chunk))
            rows["failures"].append(json.dumps(failures))
            rows["silent"].append(json.dumps(silent))
            rows["padded"].append(json.dumps(padded))
            rows["audio_seconds"].append(seconds)
            rows["pid"].append(os.getpid())
        return rows


def embed_to_store_ray(items: Sequence[tuple[str, Path | str]], out: str | os.PathLike[str], *,
                       embedder: str = "yamnet", hop: float = 0.96, address: str | None = None,
                       workers: int | None = None, files_per_shard: int | None = None, block_seconds: float = 60.0,
                       progress: bool | None = None, on_chunk: Callable[[dict[str, Any]], None] | None = None):
    """Embed ``(key, file)`` pairs (:func:`zeroshot_audio.embed.resolve_inputs`) into the store ``out`` with a
    pool of Ray actors: the parallel form of :func:`zeroshot_audio.embed.embed_to_store`.

    Each chunk of ``files_per_shard`` files (default: about 4 chunks per worker, at most 256) is embedded by one
    actor and written as one shard (``.npy`` then index, each committed atomically) under a number this process
    reserved; this process holds the store's writer lock, adopts each shard as it is reported and writes the
    failures list at the end. Keys already in the store are skipped. A killed actor is restarted by Ray and its
    chunk retried (the same shard rewritten). On a cluster, ``out`` must be on a file system all nodes see.

    Returns
    -------
    zeroshot_audio.embed.EmbedSummary
    """
    from .data.store import StoreWriter
    from .embed import EmbedSummary, _make_embedder

    if not isinstance(embedder, str):
        raise ParameterError("embed_to_store_ray: embedder must be a registry name (actors build their own)")
    items = [(k, os.fspath(p)) for k, p in items]
    options = {"hop": hop}
    meta = _make_embedder(embedder, options).store_meta()
    summary = EmbedSummary(n_inputs=len(items))
    start = time.perf_counter()
    with StoreWriter(out, meta) as writer:
        todo = [(k, p if _is_url(p) else os.path.abspath(p)) for k, p in items if k not in writer]
        summary.n_skipped = len(items) - len(todo)
        if todo:
            bar = None
            if progress is not False:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(todo), unit="file", desc="embedding",
                           disable=None if progress is None else not progress)
            try:
                with ray_session(address) as ray:
                    n_workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
                    chunks = _chunks(todo, n_workers, files_per_shard)
                    first = writer.reserve(len(chunks))
                    kwargs = {"embedder": embedder, "options": options, "store": str(Path(out).resolve()),
                              "meta": writer.meta.to_json(), "block_seconds": block_seconds}

                    def on_row(row: dict[str, Any]) -> None:
                        number = int(row["number"])
                        if number >= 0:
                            summary.n_embedded += len(writer.adopt(number))
                        for key, reason in json.loads(row["failures"]).items():
                            writer.add_failure(key, reason)
                            summary.failures[key] = reason
                        summary.silent += json.loads(row["silent"])
                        summary.padded += json.loads(row["padded"])
                        summary.audio_seconds += float(row["audio_seconds"])
                        if bar is not None:
                            bar.update(int(row["n"]))
                        if on_chunk is not None:
                            on_chunk(row)

                    tasks = [(first + i, chunk) for i, chunk in enumerate(chunks)]
                    _run_chunks(ray, tasks, _EmbedActor, kwargs, workers, on_row)
            finally:
                if bar is not None:
                    bar.close()
    summary.seconds = time.perf_counter() - start
    return summary

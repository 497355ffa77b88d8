"""The ASGI application of ``zsa serve``: :func:`create_app` (FastAPI; this module is imported only by
:func:`zeroshot_audio.serve.create_app`).

One model is loaded per app. ``POST /v1/tag`` admits a request (503 when ``workers + queue`` are already in),
streams its multipart body into a private temporary directory (:mod:`._form`), then tags its files on a pool of
``workers`` threads, never on the event loop; the directory is removed and the request leaves the queue when
its job is over, whatever happened (an error, a client that went away, a job that never started).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._errors import AudioError, ZsaError
from ..tagging import Tagger, clean_labels, load_model
from ._form import EXAMPLE_PREFIX, FIELDS, ApiError, Upload, content_length, read_form
from ._queue import Admission
from .options import ServeOptions

__all__ = ["create_app", "TagRequest"]

log = logging.getLogger("zeroshot_audio.serve")

STATIC_DIR = Path(__file__).parent / "static"
#: Prefix of each request's temporary directory.
TEMP_PREFIX = "zsa-serve-"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class TagRequest:
    """The checked fields of one ``POST /v1/tag``: labels, selection, the uploads and the example clips."""

    def __init__(self, labels: list[str], uploads: list[Upload], *, top_k: int | None, threshold: float | None,
                 timelines: bool, examples: list[Upload] | None = None) -> None:
        self.labels, self.uploads, self.examples = labels, uploads, list(examples or [])
        self.top_k, self.threshold, self.timelines = top_k, threshold, timelines


def _one(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise ApiError(422, f"{name}: given {len(values)} times (at most once)")
    return values[0].strip()


def parse_labels(values: list[str], max_labels: int, *, required: bool = True) -> list[str]:
    """The labels of the ``labels`` fields: each split on ``;`` and line breaks, blank pieces dropped, then
    :func:`~zeroshot_audio.tagging.clean_labels` (duplicates removed); 400 when none (and ``required``), too many
    or bad."""
    pieces = [p for v in values for p in re.split(r"[;\r\n]", v) if p.strip()]
    if not pieces and not required:
        return []
    if not pieces:
        raise ApiError(400, "labels: no labels given (a 'labels' field holding labels separated by ';' or line "
                            "breaks, e.g. 'dog barking;rain')")
    try:
        labels, _ = clean_labels(pieces)
    except ZsaError as err:
        raise ApiError(400, f"labels: {err}") from None
    if len(labels) > max_labels:
        raise ApiError(400, f"labels: {len(labels)} labels, at most {max_labels} per request (the server's "
                            "--max-labels)")
    return labels


def parse_request(fields: dict[str, list[str]], uploads: list[Upload], unknown: list[str],
                  options: ServeOptions, examples: list[Upload] | None = None) -> TagRequest:
    """Check the form's fields (422 for a bad value or an unknown field, 400 for labels or no files). Labels may
    be given by ``example:LABEL`` file fields (``examples``) instead of, or beside, the ``labels`` field."""
    if unknown:
        raise ApiError(422, f"unknown form field {unknown[0]!r} (expected {', '.join(FIELDS)} or "
                            f"{EXAMPLE_PREFIX}LABEL)")
    top_k = threshold = None
    if (text := _one(fields, "top_k")) not in (None, ""):
        if not re.fullmatch(r"[+]?\d{1,9}", text) or int(text) < 1:
            raise ApiError(422, f"top_k: expected an integer >= 1, got {text[:40]!r}")
        top_k = int(text)
    if (text := _one(fields, "threshold")) not in (None, ""):
        try:
            threshold = float(text)
        except ValueError:
            threshold = float("nan")
        if not 0.0 <= threshold <= 1.0:
            raise ApiError(422, f"threshold: expected a probability in [0, 1], got {text[:40]!r}")
    text = (_one(fields, "timelines") or "").lower()
    if text not in _TRUE | _FALSE:
        raise ApiError(422, f"timelines: expected true or false (or 1 or 0), got {text[:40]!r}")
    examples = list(examples or [])
    labels = parse_labels(fields.get("labels", []), options.max_labels, required=not examples)
    by_example = set()
    for ex in examples:
        try:
            ex.label = clean_labels([ex.label or ""])[0][0]
        except ZsaError as err:
            raise ApiError(400, f"{EXAMPLE_PREFIX}{ex.label}: {err} (a file field 'example:LABEL' holds an example "
                                "clip of LABEL)") from None
        by_example.add(ex.label)
    if len(set(labels) | by_example) > options.max_labels:
        raise ApiError(400, f"labels: {len(set(labels) | by_example)} labels with those given by example, at most "
                            f"{options.max_labels} per request (the server's --max-labels)")
    if not uploads:
        raise ApiError(400, "files: no files uploaded (one or more 'files' fields holding audio files)")
    return TagRequest(labels, uploads, top_k=top_k, threshold=threshold, timelines=text in _TRUE, examples=examples)


def _shown(message: str, upload: Upload, directory: Path) -> str:
    """A library message about a temporary file, with the upload's name in place of the server path."""
    text = str(message).replace(str(upload.path), upload.name).replace(str(directory) + os.sep, "")
    return " ".join(text.split())


def _check_upload(upload: Upload, options: ServeOptions) -> tuple[int, str] | None:
    """``(status, message)`` when an uploaded file cannot be tagged before decoding it (None when it can): 400 for
    a refused name or an empty file, 415 when it is not audio, 413 when it is longer than ``max_duration_s``
    (from its header)."""
    from .._decode import _open

    if upload.error is not None or upload.path is None:
        return 400, upload.error or "the file was not received"
    if upload.size == 0:
        return 400, f"audio file {upload.name}: empty (0 bytes)"
    try:
        with _open(upload.path) as f:
            frames, rate = int(f.frames), int(f.samplerate)
    except AudioError as err:
        return 415, str(err)
    if frames <= 0 or rate <= 0:
        return 400, f"audio file {upload.name}: zero length (the file holds 0 frames)"
    duration = frames / rate
    if duration > options.max_duration_s:
        return 413, (f"audio file {upload.name}: {duration:.1f} s long, longer than the server's limit of "
                     f"{options.max_duration_s:g} s (--max-duration)")
    return None


def tag_upload(tagger: Tagger, upload: Upload, request: TagRequest, labels: list[str], label_embeddings: np.ndarray,
               options: ServeOptions, directory: Path, prototypes: Any = None) -> dict[str, Any]:
    """The response entry of one uploaded file: its tags, or ``{"file", "error", "status"}``.

    415: not decodable audio; 413: longer than ``max_duration_s`` (from the header, before decoding); 400: any
    other input error of the file (an empty file, a refused name); 500: a failure of the model. ``labels``,
    ``label_embeddings`` and ``prototypes``: the request's label set (:meth:`_Service.label_set`).
    """
    from ..writers import select_labels

    def failed(status: int, message: str) -> dict[str, Any]:
        return {"file": upload.name, "error": _shown(message, upload, directory), "status": status}

    problem = _check_upload(upload, options)
    if problem is not None:
        return failed(*problem)
    try:
        res = tagger.tag_encoded(upload.path, labels, label_embeddings, prototypes=prototypes)
    except AudioError as err:
        return failed(415, str(err))
    except ZsaError as err:  # ParameterError, DataError: this file's input
        status = 400 if isinstance(err, ValueError) else 500
        return failed(status, str(err))
    res.file = upload.name
    res.labels = select_labels(res, top_k=request.top_k, threshold=request.threshold)
    entry = res.to_json()
    if request.timelines:
        entry["frames"] = np.round(res.frame_times.astype(np.float64), 3).tolist()
        for item, r in zip(entry["labels"], res.labels):
            item["timeline"] = {
                "probability": np.round(np.asarray(r.detection, np.float64), 4).tolist(),
                "attention": np.round(np.asarray(r.attention, np.float64), 4).tolist(),
                "score": np.round(np.asarray(r.segment_scores, np.float64), 4).tolist(),
            }
    return entry


def _set_threads(tagger: Tagger, threads: int) -> None:
    """Give the audio network ``threads`` intra-op threads when its onnxruntime session is not made yet."""
    emb = tagger.embedder
    if hasattr(emb, "threads") and getattr(emb, "_session", "made") is None:
        emb.threads = threads


#: Lengths of the start-up warm-up clips, as fractions of one full batch of the audio network: allocations of
#: several sizes bring onnxruntime's memory arena to its working size before the first request (with one full batch
#: only, the first load after start-up still grew by 30 MB; benchmarks/serve_load.py, docs/serve.md).
WARM_UP = (1.0, 0.25, 1.0, 0.5, 1.0)


def _warm_up(tagger: Tagger) -> None:
    """Make the onnxruntime sessions (audio network, label encoder) before the first request, and run the audio
    network on silence of the :data:`WARM_UP` lengths (the longest one full batch, about 31 s for YAMNet), so that
    onnxruntime's memory arena has its working size from the start instead of growing over the first requests;
    then give the freed heap back (:func:`_trim_heap`)."""
    emb = tagger.embedder
    sr = int(emb.sample_rate)
    seconds = min(60.0, int(getattr(emb, "batch_size", 1)) * float(emb.hop) + 1.0)
    labels = ["zsa serve warm-up"]
    for fraction in WARM_UP:
        wave = np.zeros(max(1, int(fraction * seconds * sr)), np.float32)
        tagger.tag_encoded(wave, labels, tagger.label_embeddings(labels), sample_rate=sr)
    _trim_heap()


def _trim_heap() -> None:
    """Give freed heap memory back to the system (glibc's ``malloc_trim``; nothing elsewhere): the buffers of a
    request freed by a tagging thread otherwise stay in that thread's malloc arena."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        _MALLOC_TRIM = False
        try:
            import ctypes
            import ctypes.util

            name = ctypes.util.find_library("c")
            libc = ctypes.CDLL(name) if name else None
            _MALLOC_TRIM = getattr(libc, "malloc_trim", False) if libc is not None else False
        except (OSError, AttributeError):
            pass
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM: Any = None


class _Service:
    """The app's state: the model, the options, the admission counter and the tagging threads."""

    def __init__(self, tagger: Tagger, options: ServeOptions) -> None:
        self.tagger, self.options = tagger, options
        self.admission = Admission(options.workers, options.queue)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.options.workers, thread_name_prefix="zsa-serve-tag")
            return self._executor

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def job(self, request: TagRequest, directory: Path) -> list[dict[str, Any]]:
        """Tag the request's files in order (runs in a tagging thread)."""
        self.admission.start()
        try:
            labels, emb, prototypes = self.label_set(request, directory)
            return [tag_upload(self.tagger, u, request, labels, emb, self.options, directory, prototypes)
                    for u in request.uploads]
        finally:
            self.admission.stop()
            _trim_heap()

    def label_set(self, request: TagRequest, directory: Path) -> tuple[list[str], np.ndarray, Any]:
        """``(labels, embeddings, prototypes)`` of the request (:meth:`Tagger.label_set`): its text labels and
        those its example clips give. An example that cannot be used fails the whole request, naming it and its
        label: every file's labels depend on it. The clips' embeddings leave the cache with the request."""
        if not request.examples:
            return self.tagger.label_set(request.labels)[:3]
        from ..examples import _CACHE

        try:
            clips: dict[str, list[str]] = {}
            for ex in request.examples:
                problem = _check_upload(ex, self.options)
                if problem is not None:
                    status, message = problem
                    raise ApiError(status, f"example of {ex.label!r}: {_shown(message, ex, directory)}")
                clips.setdefault(ex.label or "", []).append(str(ex.path))
            labels, emb, prototypes, warnings = self.tagger.label_set(request.labels, clips)
        finally:  # the clips are deleted with the request
            _CACHE.forget(directory)
        for label in clips:
            if label not in labels:
                why = next((w for w in warnings if repr(label) in w), "no example could be used")
                for ex in request.examples:
                    why = _shown(why, ex, directory)
                raise ApiError(400, f"example of {label!r}: {why}")
        return labels, emb, prototypes

    async def tag(self, http_request: Any) -> list[dict[str, Any]]:
        """Admit, read and tag one ``POST /v1/tag``; the entries in upload order."""
        opts = self.options
        length = content_length(http_request.headers)
        if length is not None and length > opts.max_upload_bytes:
            raise ApiError(413, f"the request body ({length / 1e6:.1f} MB) is larger than the server's limit of "
                                f"{opts.max_upload_mb:g} MB (--max-upload-mb)")
        self.admission.enter()
        directory: Path | None = None
        done = threading.Event()

        def finish(_: Any = None) -> None:  # exactly once: remove the uploads, leave the queue
            if done.is_set():
                return
            done.set()
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
            self.admission.leave()

        submitted = False
        try:
            directory = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))  # mode 0700
            form = await read_form(http_request, directory, max_bytes=opts.max_upload_bytes,
                                   max_files=opts.max_files)
            request = parse_request(form.fields, form.uploads, form.unknown, opts, form.examples)
            future: Future = self.executor().submit(self.job, request, directory)
            submitted = True
            future.add_done_callback(finish)
            return await asyncio.wrap_future(future)
        finally:
            if not submitted:
                finish()


def _error_response(status: int, message: str, *, headers: dict[str, str] | None = None,
                    results: list | None = None) -> Any:
    return JSONResponse(ApiError(status, message, results=results).body(), status_code=status, headers=headers)


def _validation_message(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path"))
    return f"{where or 'request'}: {first.get('msg', 'invalid value')}"


def create_app(model: str | os.PathLike[str] | Tagger = "default", options: ServeOptions | None = None) -> Any:
    """The FastAPI application of ``zsa serve``.

    Parameters
    ----------
    model : str, PathLike or Tagger
        ``"default"`` (the shipped model), a model directory, or a loaded :class:`~zeroshot_audio.Tagger`.
    options : ServeOptions, optional
        Limits, workers and token (default :class:`ServeOptions`).

    Returns
    -------
    fastapi.FastAPI
        Routes: ``GET /`` (the page), ``/static/*``, ``POST /v1/tag``, ``GET /v1/health``, ``GET /v1/models``,
        ``/docs`` (Swagger UI served locally) and ``/openapi.json``. Every error is JSON
        ``{"error", "status"}``.
    """
    from contextlib import asynccontextmanager

    from .. import __version__
    from ._docs import add_docs

    options = ServeOptions() if options is None else options
    if not isinstance(options, ServeOptions):
        raise TypeError(f"options must be a ServeOptions, got {type(options).__name__}")
    tagger = model if isinstance(model, Tagger) else load_model(model)
    _set_threads(tagger, options.onnx_threads)
    _warm_up(tagger)
    service = _Service(tagger, options)

    @asynccontextmanager
    async def lifespan(app: Any):
        yield
        service.shutdown()

    app = FastAPI(title="zeroshot-audio", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Zero-shot audio tagging: any audio, any text labels, which are present, how sure "
                              "and when. See docs/serve.md.")
    app.state.service = service

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            detail = f"not found: {request.url.path}"
        elif exc.status_code == 405:
            detail = f"method {request.method} not allowed on {request.url.path}"
        return _error_response(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(422, _validation_message(list(exc.errors())))

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error_response(500, f"internal error ({type(exc).__name__}); the server's log has the details")

    async def require_token(request: Request) -> None:
        if options.token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(401, "missing bearer token: send the header 'Authorization: Bearer <token>'",
                           headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.strip().encode(), options.token.encode()):
            raise ApiError(401, "wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    tag_schema = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["files"],
        "patternProperties": {"^example:.+$": {
            "type": "array", "items": {"type": "string", "format": "binary"},
            "description": "example clips of the label after 'example:' (e.g. a field 'example:that hum'); a label "
                           "given by example needs no 'labels' entry, one in both uses both (docs/examples.md)"}},
        "properties": {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                      "description": "audio files (repeat the field)"},
            "labels": {"type": "string", "description": "labels separated by ';' or line breaks; 'a|b' are "
                                                        "wordings of one label (repeat the field for more); "
                                                        "required unless 'example:LABEL' fields are given"},
            "top_k": {"type": "integer", "minimum": 1, "description": "list only the K best labels per file"},
            "threshold": {"type": "number", "minimum": 0, "maximum": 1,
                          "description": "list only labels with probability >= P"},
            "timelines": {"type": "boolean", "description": "add frames and per-label timelines"},
        }}}}}}

    @app.post("/v1/tag", dependencies=[Depends(require_token)], openapi_extra=tag_schema, tags=["tagging"],
              summary="Tag audio files with any labels")
    async def tag(request: Request) -> JSONResponse:
        """One entry per uploaded file, in upload order: ``TagResult.to_json()`` restricted to the selected
        labels (with ``frames`` and per-label ``timeline`` when asked), or ``{"file", "error", "status"}``.

        Labels may also be given by example clips: file fields named ``example:LABEL`` (repeat for more clips of
        one label); an example that cannot be used fails the request with one line naming it."""
        entries = await service.tag(request)
        if any("error" not in e for e in entries):
            return JSONResponse(entries)
        first = entries[0]
        message = first["error"] if len(entries) == 1 else \
            f"none of the {len(entries)} files could be tagged; the first: {first['error']}"
        raise ApiError(first["status"], message, results=entries)

    @app.get("/v1/health", tags=["service"], summary="Liveness, queue and limits (no token needed)")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": tagger.name, "auth": options.token is not None,
                "queue": service.admission.state(), "limits": options.limits()}

    @app.get("/v1/models", dependencies=[Depends(require_token)], tags=["service"], summary="The loaded model")
    async def models() -> list[dict[str, Any]]:
        return [tagger.describe()]

    @app.get("/", include_in_schema=False)
    async def page() -> Any:
        index = STATIC_DIR / "index.html"
        if not index.is_file():
            raise ApiError(404, "the page is not installed (serve/static/index.html is missing)")
        return FileResponse(index, media_type="text/html")

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    add_docs(app)
    return app

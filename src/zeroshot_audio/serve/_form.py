"""Reading the multipart body of ``POST /v1/tag`` as it streams: files go straight into the request's private
directory, text fields stay in memory, and every limit is enforced while the bytes arrive.

Starlette's own form parser is not used: it spools every file part to an anonymous temporary file in the
system's temporary directory and learns the body's size only after reading it. Here the body is counted chunk
by chunk (a Content-Length over the limit is refused before any byte is read), file parts are written under
names the server chooses (``0.flac``, ``1.wav``, ...) inside a directory made by :func:`tempfile.mkdtemp`, and
the client's file name is kept only as a display name (its last path component).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..tagging import control_character

__all__ = ["ApiError", "Upload", "Form", "read_form", "display_name", "FIELDS", "EXAMPLE_PREFIX"]

#: The form fields of ``POST /v1/tag``.
FIELDS = ("files", "labels", "top_k", "threshold", "timelines")
#: A file field named ``example:LABEL`` is an example clip of the label LABEL (docs/examples.md).
EXAMPLE_PREFIX = "example:"

#: Largest text field (labels, top_k, ...) in bytes.
MAX_FIELD_BYTES = 1 << 20

_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}$")
_EXT_FILENAME = re.compile(rb"(?:^|;)\s*filename\*\s*=\s*([^;\s]+)", re.IGNORECASE)


def extended_filename(disposition: bytes) -> bytes | None:
    """The file name of a Content-Disposition's RFC 5987 ``filename*=charset'lang'percent-encoded`` parameter, as
    UTF-8 bytes (None when there is none or it cannot be read). Some clients send only this form for names that
    are not ASCII; python-multipart's header parser drops it."""
    from urllib.parse import unquote_to_bytes

    match = _EXT_FILENAME.search(disposition)
    if match is None:
        return None
    charset, _, rest = match.group(1).strip(b'"').partition(b"'")
    _, _, encoded = rest.partition(b"'")
    try:
        return unquote_to_bytes(encoded).decode(charset.decode("ascii") or "utf-8").encode("utf-8")
    except (LookupError, UnicodeDecodeError):
        return None


class ApiError(Exception):
    """An error answered as the contract's JSON ``{"error": message, "status": status}``.

    Parameters
    ----------
    status : int
        HTTP status.
    message : str
        One line naming the input and what was expected.
    headers : dict, optional
        Extra response headers (``Retry-After``, ``WWW-Authenticate``).
    results : list, optional
        Per-file entries, when every file of a batch failed.
    """

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None,
                 results: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = int(status)
        self.message = " ".join(str(message).split())
        self.headers = headers
        self.results = results

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        out: dict[str, Any] = {"error": self.message, "status": self.status}
        if self.results is not None:
            out["results"] = self.results
        return out


@dataclass
class Upload:
    """One uploaded file.

    Attributes
    ----------
    index : int
        Position among the request's files, from 1.
    name : str
        Display name: the client's file name without folders, or ``upload-<index>``.
    path : Path or None
        Where its bytes were written (None when the file was refused: see ``error``).
    size : int
        Bytes received.
    error : str or None
        Why the file was refused before tagging (a bad file name).
    label : str or None
        For an example clip (a field ``example:LABEL``): its label.
    """

    index: int
    name: str
    path: Path | None
    size: int = 0
    error: str | None = None
    label: str | None = None


@dataclass
class Form:
    """The parsed form: uploads in order, example clips in order, and the text fields (each a list of its values)."""

    uploads: list[Upload] = field(default_factory=list)
    examples: list[Upload] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


def display_name(raw: bytes | None, index: int) -> tuple[str, str | None]:
    """``(name, error)``: the display name of an uploaded file and, when its name is refused, why.

    The name is the last component of the client's file name (``/`` and ``\\`` both separate folders); none, an
    empty one, ``.`` or ``..`` give ``upload-<index>``. A name holding a control character is refused (the
    entry is named ``upload-<index>``), as is one longer than 255 characters.
    """
    fallback = f"upload-{index}"
    if raw is None:
        return fallback, None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    base = re.split(r"[/\\]", text)[-1].strip()
    if base in ("", ".", ".."):
        return fallback, None
    bad = control_character(base) or next((c for c in base if c in "\t\r\n\u2028\u2029"), None)
    if bad is not None:
        return fallback, f"file {index}: its file name {base!r} holds the control character {bad!r}"
    if len(base) > 255:
        return fallback, f"file {index}: its file name is {len(base)} characters long (at most 255)"
    return base, None


class _Reader:
    """The callbacks of python-multipart's streaming parser, writing file parts into ``directory``."""

    def __init__(self, directory: Path, *, max_files: int) -> None:
        self.directory = directory
        self.max_files = max_files
        self.form = Form()
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._field: str | None = None
        self._text: bytearray | None = None
        self._upload: Upload | None = None
        self._fd: int | None = None
        self._n_files = 0

    # --- python-multipart callbacks
    def on_part_begin(self) -> None:
        self._disposition = b""
        self._field, self._text, self._upload = None, None, None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if bytes(self._header_name).strip().lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(self._disposition)
        if b"name" not in params:
            raise ApiError(400, "malformed multipart body: a part has no field name (Content-Disposition name)")
        name = params[b"name"].decode("utf-8", "replace")
        self._field = name
        if name == "files" or name.startswith(EXAMPLE_PREFIX):
            self._n_files += 1
            if self._n_files > self.max_files:
                raise ApiError(400, f"files: more than {self.max_files} files and example clips in one request (the "
                                    "server's --max-files)")
            example = name.startswith(EXAMPLE_PREFIX)
            raw = params.get(b"filename")
            shown, error = display_name(raw if raw is not None else extended_filename(self._disposition),
                                        self._n_files)
            upload = Upload(self._n_files, shown, None, error=error,
                            label=name[len(EXAMPLE_PREFIX):] if example else None)
            (self.form.examples if example else self.form.uploads).append(upload)
            if error is None:
                suffix = _SUFFIX.search(shown)
                upload.path = self.directory / f"{self._n_files - 1}{suffix.group(0).lower() if suffix else ''}"
                self._fd = os.open(upload.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                                   0o600)
            self._upload = upload
        elif name in FIELDS:
            self._text = bytearray()
        else:
            self.form.unknown.append(name)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._upload is not None:
            self._upload.size += end - start
            if self._fd is not None:
                view = memoryview(data)[start:end]
                while view:
                    view = view[os.write(self._fd, view):]
        elif self._text is not None:
            if len(self._text) + end - start > MAX_FIELD_BYTES:
                raise ApiError(413, f"{self._field}: the form field is longer than {MAX_FIELD_BYTES} bytes")
            self._text += data[start:end]

    def on_part_end(self) -> None:
        self._close_file()
        if self._text is not None and self._field is not None:
            self.form.fields.setdefault(self._field, []).append(bytes(self._text).decode("utf-8", "replace"))
        self._field, self._text, self._upload = None, None, None

    def on_end(self) -> None:
        pass

    def _close_file(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def callbacks(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "on_part_begin", "on_part_data", "on_part_end", "on_header_field", "on_header_value",
            "on_header_end", "on_headers_finished", "on_end")}


def content_length(headers: Any) -> int | None:
    """The request's Content-Length as an int (None when absent); a malformed one is a 400."""
    value = headers.get("content-length")
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        raise ApiError(400, f"Content-Length: not a number ({value[:40]!r})") from None
    if n < 0:
        raise ApiError(400, f"Content-Length: negative ({n})")
    return n


async def read_form(request: Any, directory: Path, *, max_bytes: int, max_files: int) -> Form:
    """Read the multipart body of ``request`` into ``directory`` (files) and memory (text fields).

    Raises
    ------
    ApiError
        400 when the body is not multipart/form-data or is malformed, or holds too many files; 413 when the
        body grows past ``max_bytes`` or a text field past :data:`MAX_FIELD_BYTES`.
    """
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header
    from starlette.requests import ClientDisconnect

    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind.lower() != b"multipart/form-data" or not params.get(b"boundary"):
        shown = request.headers.get("content-type") or "none"
        raise ApiError(400, "the body must be multipart/form-data with one or more 'files' and a 'labels' field "
                            f"(got content type {shown[:60]!r})")
    reader = _Reader(directory, max_files=max_files)
    parser = MultipartParser(params[b"boundary"], reader.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise ApiError(413, f"the request body is larger than the server's limit of {max_bytes / 1e6:g} MB "
                                    "(--max-upload-mb)")
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except FormParserError as err:
        raise ApiError(400, f"malformed multipart body ({' '.join(str(err).split())[:120]})") from None
    except ClientDisconnect:
        raise ApiError(400, "the client disconnected during the upload") from None
    finally:
        reader._close_file()
    return reader.form

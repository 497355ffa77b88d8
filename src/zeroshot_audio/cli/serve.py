"""``zsa serve``: the HTTP API and the page (:mod:`zeroshot_audio.serve`) on uvicorn."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from .._errors import ParameterError
from ._common import _int_in, _positive_float, _positive_int

#: Environment variable that holds the bearer token when ``--token`` is not given.
TOKEN_ENV = "ZSA_TOKEN"


_non_negative_int = _int_in(0, None, "an integer >= 0")
_port = _int_in(0, 65535, "a port number 0..65535")


def _add_serve_parser(sub: argparse._SubParsersAction) -> None:
    """The ``serve`` subcommand; the defaults of the limits are :class:`~zeroshot_audio.serve.ServeOptions`'s."""
    from ..serve.options import ServeOptions

    d = {f.name: f.default for f in dataclasses.fields(ServeOptions)}
    p = sub.add_parser("serve", help="a web page and an HTTP API for tagging (see docs/serve.md)",
                       description="Serve the page (GET /) and the API (POST /v1/tag, GET /v1/health, GET "
                                   "/v1/models, docs at /docs) with one model loaded once. Binds 127.0.0.1 by "
                                   "default; any other address needs a bearer token (--token or $ZSA_TOKEN).")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=_port, default=8000, help="port (0: any free port; default: %(default)s)")
    p.add_argument("--model", default="default", help="'default' (shipped) or a model directory")
    p.add_argument("--workers", type=_positive_int, default=d["workers"],
                   help="tagging threads, requests tagged at once (default: %(default)s)")
    p.add_argument("--queue", type=_non_negative_int, default=d["queue"],
                   help="requests waiting beyond the running ones; more get 503 (default: %(default)s)")
    p.add_argument("--token", default=None,
                   help=f"require 'Authorization: Bearer TOKEN' on /v1/* except /v1/health (also ${TOKEN_ENV}, "
                        "which keeps it out of the process list)")
    p.add_argument("--max-upload-mb", type=_positive_float, default=d["max_upload_mb"], metavar="MB",
                   help="largest request body in MB (default: %(default)s)")
    p.add_argument("--max-files", type=_positive_int, default=d["max_files"], metavar="N",
                   help="files per request (default: %(default)s)")
    p.add_argument("--max-labels", type=_positive_int, default=d["max_labels"], metavar="N",
                   help="labels per request (default: %(default)s)")
    p.add_argument("--max-duration", type=_positive_float, default=d["max_duration_s"], metavar="S",
                   help="longest recording in seconds (default: %(default)s)")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine: ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    import ipaddress

    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int):
    """A listening socket on ``host:port`` (a usage error naming the address when that fails)."""
    import socket

    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ParameterError(f"--host {host}: cannot resolve it ({err.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise ParameterError(f"--host {host} --port {port}: cannot listen there ({err.strerror or err})") from None
    sock.set_inheritable(True)
    return sock


def _cmd_serve(args: argparse.Namespace) -> int:
    from ._common import _require

    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    if token is not None and not token.strip():
        raise ParameterError(f"{'--token' if args.token is not None else '$' + TOKEN_ENV} is empty")
    if not is_loopback(args.host) and token is None:
        raise ParameterError(f"--host {args.host} is not a loopback address: anyone who reaches it could use the "
                             f"server, so set a token (--token T or ${TOKEN_ENV}) or bind 127.0.0.1")
    if args.model != "default":
        _require(args.model, "--model")
    try:
        import uvicorn
    except ModuleNotFoundError:
        from .._errors import MissingDependencyError

        raise MissingDependencyError("zsa serve needs uvicorn, which tagging does not: "
                                     "pip install 'zeroshot-audio[serve]'") from None
    from ..serve import ServeOptions, create_app

    options = ServeOptions(workers=args.workers, queue=args.queue, max_upload_mb=args.max_upload_mb,
                           max_files=args.max_files, max_labels=args.max_labels, max_duration_s=args.max_duration,
                           token=token)
    sock = _listen(args.host, args.port)
    try:
        app = create_app(args.model, options)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"zsa: serving model {args.model} on http://{shown}:{port}/ (API /v1/tag, docs /docs; "
              f"{options.workers} worker(s), queue {options.queue}{', token required' if token else ''}; "
              "Ctrl-C stops)", file=sys.stderr, flush=True)
        verbose = bool(getattr(args, "verbose", False))
        config = uvicorn.Config(app, log_level="info" if verbose else "warning", access_log=verbose,
                                timeout_graceful_shutdown=5, server_header=False)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return 0

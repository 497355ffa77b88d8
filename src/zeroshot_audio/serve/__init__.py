"""``zsa serve``: an HTTP API and a web page for tagging, on one machine, offline.

``create_app(model="default", options=None)`` builds the FastAPI application (the model is loaded once);
:class:`ServeOptions` holds its limits. This package imports the web framework only when :func:`create_app` is
called, so ``import zeroshot_audio.serve`` and ``zsa serve --help`` work without the ``serve`` extra
(``pip install 'zeroshot-audio[serve]'``: fastapi, uvicorn, python-multipart). See ``docs/serve.md``.
"""

from __future__ import annotations

import os
from typing import Any

from .options import ServeOptions

__all__ = ["create_app", "ServeOptions"]


def create_app(model: Any = "default", options: ServeOptions | None = None) -> Any:
    """The FastAPI application of ``zsa serve`` (see :func:`zeroshot_audio.serve.app.create_app`).

    Parameters
    ----------
    model : str, PathLike or Tagger
        ``"default"``, a model directory, or a loaded :class:`~zeroshot_audio.Tagger`.
    options : ServeOptions, optional
        Limits, workers and token.

    Returns
    -------
    fastapi.FastAPI
    """
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
    except ModuleNotFoundError as err:
        from .._errors import MissingDependencyError

        name = {"python_multipart": "python-multipart"}.get(str(err.name), err.name)
        raise MissingDependencyError(f"zsa serve needs {name}, which tagging does not: "
                                     "pip install 'zeroshot-audio[serve]'") from None
    from .app import create_app as build

    return build(model if not isinstance(model, os.PathLike) else os.fspath(model), options)

"""Acoustic segment embedders behind one small interface, and their registry.

``get_embedder("yamnet", hop=0.96)`` builds an embedder; ``available_embedders()`` lists the names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._errors import ParameterError
from .base import Embedder, EmbedOutput, n_segments

__all__ = ["Embedder", "EmbedOutput", "n_segments", "available_embedders", "get_embedder", "register_embedder"]

_REGISTRY: dict[str, Callable[..., Embedder]] = {}


def register_embedder(name: str, factory: Callable[..., Embedder]) -> None:
    """Make ``factory(**options)`` available as ``get_embedder(name, **options)``."""
    _REGISTRY[name] = factory


def _yamnet(**kw: Any) -> Embedder:
    from .yamnet import YamnetEmbedder

    return YamnetEmbedder(**kw)


def _yamnet_logits(**kw: Any) -> Embedder:
    from .yamnet import YamnetLogitsEmbedder

    return YamnetLogitsEmbedder(**kw)


def _yamnet_anchor(**kw: Any) -> Embedder:
    from .yamnet import YamnetAnchorEmbedder

    return YamnetAnchorEmbedder(**kw)


register_embedder("yamnet", _yamnet)
register_embedder("yamnet-logits", _yamnet_logits)
register_embedder("yamnet+logits", _yamnet_anchor)


def available_embedders() -> list[str]:
    """Names accepted by :func:`get_embedder`."""
    return sorted(_REGISTRY)


def get_embedder(name: str = "yamnet", **options: Any) -> Embedder:
    """Build the embedder registered as ``name``; unknown names list the valid ones."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ParameterError(f"unknown embedder {name!r} (available: {', '.join(available_embedders())})") from None
    return factory(**options)

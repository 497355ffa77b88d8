"""Wall time of the full synthetic benchmark: `zsa benchmark --synthetic` (5 folds x all systems).

    python benchmarks/synthetic_protocol.py

Target: under 2 minutes on a 2-core machine. Prints the results table and the time.
"""

from __future__ import annotations

import contextlib
import io
import time

from zeroshot_audio.cli import main

if __name__ == "__main__":
    start = time.perf_counter()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["benchmark", "--synthetic", "--quiet"])
    seconds = time.perf_counter() - start
    print(out.getvalue(), end="")
    print(f"exit code {code}; zsa benchmark --synthetic took {seconds:.1f} s   (target < 120 s)")

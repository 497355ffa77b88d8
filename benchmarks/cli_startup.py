"""Start-up time of the command line: `zsa --help` in a fresh interpreter, best of N runs.

    python benchmarks/cli_startup.py [-n 10]

Target: under 0.5 s (heavy libraries such as torch are imported only by the commands that need them).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10)
    n = ap.parse_args().n
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "zeroshot_audio", "--help"], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    check = subprocess.run([sys.executable, "-c", "import sys, zeroshot_audio.cli; print('torch' in sys.modules)"],
                           capture_output=True, text=True, check=True).stdout.strip()
    print(f"zsa --help: best {min(times):.3f} s, median {sorted(times)[n // 2]:.3f} s over {n} runs "
          f"(target < 0.5 s); torch imported by the CLI module: {check}")

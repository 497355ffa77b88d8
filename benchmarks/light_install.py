"""The light install: what `pip install .` pulls, how big it is, and what a cold `zsa tag` costs without torch.

    python benchmarks/light_install.py [--keep DIR]

Prints, side by side in one run:

1. the packages `pip install --dry-run --report` resolves for the core (`pip install .`), and whether any is
   torch, nvidia-* or cuda-* (target: none);
2. the size of site-packages of a fresh venv with the core installed (target: under 400 MB);
3. a cold `zsa tag` of one 10 s file with 10 new labels in that venv (no torch installed there): CPU time, next to
   the CPU time of importing onnxruntime, numpy, soundfile and soxr alone (target: at most 3x).

Uses the network only for pip (the registry); the models come from the user's cache (`zsa models fetch`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LABELS10 = ";".join(["dog barking", "car horn", "rain", "church bells", "someone chopping wood", "a baby crying",
                     "footsteps", "thunder", "birds singing", "a door slamming"])
HEAVY = ("torch", "nvidia-", "cuda-", "triton")


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _cpu_of(argv: list[str], env: dict) -> tuple[float, float]:
    """(CPU seconds of the child, wall seconds) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", metavar="DIR", help="build the venv here and keep it (default: a temporary folder)")
    args = ap.parse_args()
    from zeroshot_audio._cache import cache_dir

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="zsa-light-"))
    try:
        venv = work / "venv"
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        py = str(venv / "bin" / "python")
        report = work / "report.json"
        subprocess.run([py, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed", "--report", str(report),
                        str(ROOT)], check=True)
        names = sorted(item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"])
        heavy = [n for n in names if n.startswith(HEAVY)]
        print(f"pip install . resolves {len(names)} packages: {', '.join(names)}")
        print(f"torch / nvidia / cuda among them: {', '.join(heavy) if heavy else 'none'} (target: none)")

        subprocess.run([py, "-m", "pip", "install", "-q", str(ROOT)], check=True)
        site = next((venv / "lib").glob("python3*/site-packages"))
        print(f"site-packages of the fresh venv: {_dir_size(site) / 1e6:.0f} MB (target < 400 MB)")

        import soundfile as sf

        audio = work / "clip.flac"
        t = np.arange(160000) / 16000
        sf.write(audio, 0.2 * np.sin(2 * np.pi * 440 * t), 16000)
        cache = work / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        shutil.copytree(cache_dir() / "models", cache / "models")  # weights only: the label cache starts empty
        if (cache_dir() / "downloads").is_dir():
            shutil.copytree(cache_dir() / "downloads", cache / "downloads")
        env = {**os.environ, "ZSA_CACHE_DIR": str(cache)}
        imports, _ = _cpu_of([py, "-c", "import onnxruntime, numpy, soundfile, soxr"], env)
        tag, wall = _cpu_of([str(venv / "bin" / "zsa"), "tag", str(audio), "--labels", LABELS10, "--quiet"], env)
        print(f"cold zsa tag, one 10 s file, 10 new labels, no torch installed: {tag:.2f} s CPU ({wall:.2f} s wall); "
              f"importing onnxruntime, numpy, soundfile, soxr alone: {imports:.2f} s CPU; ratio {tag / imports:.1f}x "
              "(target <= 3x)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

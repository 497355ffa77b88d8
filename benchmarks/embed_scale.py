"""`zsa embed` at scale: worker scaling and memory on a long recording (YAMNet, real files on disk).

    python benchmarks/embed_scale.py [--clips 600] [--hours 2]

Prints (1) throughput with 1 and 2 worker processes on 10 s clips and their ratio (target >= 1.7x) and
(2) the peak resident memory of a process embedding one long file (target < 600 MB for 2 hours).
The audio is generated (tones, chirps and noise) into a temporary directory.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _clip(rng: np.random.Generator, seconds: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(100, 2000)
    x = 0.2 * np.sin(2 * np.pi * (f0 + rng.uniform(-50, 50) * t) * t) + 0.05 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def _long_file(path: Path, hours: float, sr: int = 16000) -> None:
    import soundfile as sf

    rng = np.random.default_rng(1)
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        for _ in range(int(hours * 60)):
            f.write(_clip(rng, 60.0))


_MEASURE = """
import resource, sys, time
from zeroshot_audio.embed import embed_file
from zeroshot_audio.embedders import get_embedder
e = get_embedder("yamnet")
t = time.perf_counter()
out = embed_file(e, sys.argv[1])
dt = time.perf_counter() - t
print(out.embeddings.shape[0], out.duration, dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=600)
    ap.add_argument("--hours", type=float, default=2.0)
    args = ap.parse_args()
    import soundfile as sf

    from zeroshot_audio.embed import embed_to_store, resolve_inputs

    with tempfile.TemporaryDirectory(prefix="zsa-embed-bench-") as tmp:
        tmp = Path(tmp)
        rng = np.random.default_rng(0)
        (tmp / "clips").mkdir()
        for i in range(args.clips):
            sf.write(tmp / "clips" / f"c{i:04d}.flac", _clip(rng, 10.0), 16000)
        items = resolve_inputs([tmp / "clips"])
        rates = {}
        for workers in (1, 2):
            start = time.perf_counter()
            s = embed_to_store(items, tmp / f"store{workers}", workers=workers, progress=False)
            seconds = time.perf_counter() - start
            assert s.n_failed == 0, s.failures
            rates[workers] = s.audio_seconds / seconds
            print(f"{workers} worker(s): {args.clips} x 10 s clips in {seconds:.1f} s = "
                  f"{rates[workers]:.0f}x real time")
        print(f"2 workers / 1 worker: {rates[2] / rates[1]:.2f}x   (target >= 1.7x)")

        long = tmp / "long.wav"
        _long_file(long, args.hours)
        out = subprocess.run([sys.executable, "-c", _MEASURE, str(long)], capture_output=True, text=True, check=True)
        n, duration, seconds, peak = out.stdout.split()
        print(f"{float(duration) / 3600:.1f} h file: {n} segments in {float(seconds):.0f} s "
              f"({float(duration) / float(seconds):.0f}x real time), peak memory {float(peak):.0f} MB"
              "   (target < 600 MB)")


if __name__ == "__main__":
    main()

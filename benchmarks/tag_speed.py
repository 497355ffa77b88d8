"""`zsa tag` speed and memory: cold start, extra files, one hour of audio with 100 and with 10,000 labels.

    python benchmarks/tag_speed.py

Targets: one 10 s file with 10 labels under 3 s from a cold start; under 0.3 s per extra file; one hour of
audio with 100 labels under 60 s with peak memory under 1 GB; one hour with 10,000 labels (labels cached)
under 60 s and 1.5 GB; a repeated label set costs nothing (cache).
"Cold" is a fresh process and an empty label cache (the YAMNet weights set up by `zsa models fetch`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LABELS10 = ";".join(["dog barking", "car horn", "rain", "church bells", "someone chopping wood", "a baby crying",
                     "footsteps", "thunder", "birds singing", "a door slamming"])


def _zsa(args: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "zeroshot_audio", "tag", *args, "--quiet"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    import soundfile as sf

    from zeroshot_audio._cache import cache_dir

    user_cache = cache_dir()
    with tempfile.TemporaryDirectory(prefix="zsa-tag-bench-") as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        shutil.copytree(user_cache / "models", cache / "models")  # weights only: the label cache starts empty
        env = {**os.environ, "ZSA_CACHE_DIR": str(cache)}
        rng = np.random.default_rng(0)
        for i in range(21):
            t = np.arange(160000) / 16000
            sf.write(tmp / f"f{i:02d}.flac", 0.2 * np.sin(2 * np.pi * (200 + 40 * i) * t) +
                     0.02 * rng.standard_normal(t.size), 16000)
        cold = _zsa([str(tmp / "f00.flac"), "--labels", LABELS10], env)
        warm = _zsa([str(tmp / "f00.flac"), "--labels", LABELS10], env)
        many = _zsa([str(tmp / f"f{i:02d}.flac") for i in range(21)] + ["--labels", LABELS10], env)
        print(f"one 10 s file, 10 labels: cold start {cold:.2f} s (target < 3 s); labels cached {warm:.2f} s")
        print(f"per extra file: {(many - warm) / 20:.3f} s (target < 0.3 s)")

        hour = tmp / "hour.flac"
        with sf.SoundFile(hour, "w", samplerate=16000, channels=1, subtype="PCM_16") as f:
            for _ in range(60):
                f.write((0.05 * rng.standard_normal(16000 * 60)).astype(np.float32))
        labels100 = tmp / "labels.txt"
        labels100.write_text("\n".join(f"sound number {i} of a test set" for i in range(100)) + "\n")
        code = ("import resource, sys, time; from zeroshot_audio.tagging import load_model; t = time.perf_counter(); "
                "m = load_model(); labels = open(sys.argv[2]).read().split('\\n')[:int(sys.argv[3])]; "
                "r = m.tag(sys.argv[1], labels=labels); "
                "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
        _zsa([str(tmp / "f00.flac"), "--labels-file", str(labels100)], env)  # encode the 100 labels once
        out = subprocess.run([sys.executable, "-c", code, str(hour), str(labels100), "100"], env=env, check=True,
                             capture_output=True, text=True).stdout.split()
        print(f"one hour of audio, 100 labels: {float(out[0]):.1f} s (target < 60 s), peak memory "
              f"{float(out[1]):.0f} MB (target < 1024 MB)")
        labels10k = tmp / "labels10k.txt"
        labels10k.write_text("\n".join(f"sound {i} {w}" for i, w in enumerate(
            ["of a bell", "of rain", "of a motor", "of birds"] * 2500)) + "\n")
        t10k = _zsa([str(tmp / "f00.flac"), "--labels-file", str(labels10k), "--top-k", "3"], env)
        print(f"10,000 labels (encoded in batches, then cached): {t10k:.1f} s")
        out = subprocess.run([sys.executable, "-c", code, str(hour), str(labels10k), "10000"], env=env, check=True,
                             capture_output=True, text=True).stdout.split()
        print(f"one hour of audio, 10,000 labels (cached): {float(out[0]):.1f} s (target < 60 s), peak memory "
              f"{float(out[1]):.0f} MB (target < 1536 MB)")


if __name__ == "__main__":
    main()

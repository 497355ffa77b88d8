"""`zsa tag --engine ray`: throughput with 1 and 2 Ray workers against plain `zsa tag`, and memory per actor.

    python benchmarks/ray_scale.py [--files 64] [--seconds 30] [--hour-minutes 60]

Targets (docs/scale.md): on a 2-core machine, 2 Ray workers reach >= 1.6x the throughput of one; one Ray
worker is within 1.3x of plain `zsa tag` on the same files; peak memory per actor stays under 600 MB on an
hour-long file. Throughput is in audio seconds per wall-clock second, startup excluded and printed separately:
for plain `zsa tag`, loading the model and encoding the labels; for Ray, starting the local instance (once) and,
per run, the time until every actor has finished its first chunk (actor start, model load), which the steady
throughput leaves out (it counts the chunks finished after that, over the time after that). A chunk is 4 files
(`--files-per-part`): with 1 file of 30 s a chunk takes about as long as the round trip of a chunk through Ray
Data, which then dominates. Plain `zsa tag` is not limited to one core: OpenBLAS runs the model on every core.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

LABELS = ["dog barking", "car horn", "rain", "church bells", "someone chopping wood", "a baby crying",
          "footsteps", "thunder", "birds singing", "a door slamming"]


def make_files(folder: Path, n: int, seconds: float) -> list[str]:
    import soundfile as sf

    rng = np.random.default_rng(0)
    files = []
    for i in range(n):
        t = np.arange(int(16000 * seconds)) / 16000
        wav = 0.2 * np.sin(2 * np.pi * (150 + 37 * i) * t * (1 + 0.1 * np.sin(t))) + 0.05 * rng.standard_normal(t.size)
        path = folder / f"clip{i:03d}.flac"
        sf.write(path, wav.astype(np.float32), 16000)
        files.append(str(path))
    return files


def plain(files: list[str]) -> tuple[float, float, float]:
    """``zsa tag``'s loop in this process: ``(startup s, tagging s, audio s)``."""
    from zeroshot_audio.tagging import load_model

    start = time.perf_counter()
    tagger = load_model()
    emb = tagger.label_embeddings(LABELS)
    startup = time.perf_counter() - start
    start, audio = time.perf_counter(), 0.0
    for f in files:
        audio += tagger.tag_encoded(f, LABELS, emb).duration
    return startup, time.perf_counter() - start, audio


def on_ray(files: list[str], out: Path, workers: int, args_part: int) -> dict:
    """One `tag_to_parquet(engine="ray")` run; the steady throughput leaves out the time until every actor has
    finished its first chunk."""
    from zeroshot_audio.cluster import tag_to_parquet

    durations = {}
    import soundfile as sf

    for f in files:
        durations[f] = sf.info(f).duration
    events: list[tuple[float, int, float]] = []
    start = time.perf_counter()
    summary = tag_to_parquet(files, out, labels=LABELS, engine="ray", workers=workers, files_per_part=args_part,
                             progress=False, on_chunk=lambda row: events.append(
                                 (time.perf_counter() - start, int(row["pid"]), float(row["audio_seconds"]))))
    total = time.perf_counter() - start
    seen: set[int] = set()
    warm = None
    for i, (_t, pid, _a) in enumerate(events):
        seen.add(pid)
        if len(seen) == workers:
            warm = i
            break
    t0 = events[warm][0]
    steady_audio = sum(a for _, _, a in events[warm + 1:])
    return {"total": total, "startup": t0, "throughput": steady_audio / (events[-1][0] - t0),
            "tagged": summary.n_tagged, "pids": len({p for _, p, _ in events})}


def hour_memory(folder: Path, minutes: float) -> tuple[float, float]:
    """Peak resident memory (VmHWM, MB) of one actor that tags a ``minutes``-long file, and the seconds it took."""
    import soundfile as sf

    from zeroshot_audio.cluster import tag_to_parquet

    path = folder / "hour.flac"
    rng = np.random.default_rng(1)
    with sf.SoundFile(path, "w", samplerate=16000, channels=1, format="FLAC") as f:
        for _ in range(int(minutes)):  # a minute at a time
            t = np.arange(16000 * 60) / 16000
            f.write((0.2 * np.sin(2 * np.pi * 300 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32))
    peaks: list[float] = []
    start = time.perf_counter()
    tag_to_parquet([str(path)], folder / "hour-out", labels=LABELS, engine="ray", workers=1, progress=False,
                   on_chunk=lambda row: peaks.append(float(row["peak_mb"])))
    return max(peaks), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--hour-minutes", type=float, default=60.0)
    parser.add_argument("--files-per-part", type=int, default=4, help="files per chunk of work (and part file)")
    args = parser.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    with tempfile.TemporaryDirectory(prefix="zsa-ray-bench-") as tmp:
        folder = Path(tmp)
        files = make_files(folder, args.files, args.seconds)
        audio = args.files * args.seconds
        print(f"{args.files} files of {args.seconds:.0f} s ({audio / 60:.1f} min of audio), {len(LABELS)} labels, "
              f"{os.cpu_count()} CPUs")
        startup, seconds, _ = plain(files)
        base = audio / seconds
        print(f"plain zsa tag        : {base:7.1f} s of audio per s  (startup {startup:.1f} s, "
              f"tagging {seconds:.1f} s)")
        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
        print(f"ray.init (local, 2 CPUs): {time.perf_counter() - start:.1f} s")
        try:
            one = on_ray(files, folder / "out1", 1, args.files_per_part)
            two = on_ray(files, folder / "out2", 2, args.files_per_part)
            for name, r in (("ray, 1 worker ", one), ("ray, 2 workers", two)):
                print(f"{name}       : {r['throughput']:7.1f} s of audio per s  (startup to first file per actor "
                      f"{r['startup']:.1f} s, run {r['total']:.1f} s, {r['tagged']} files, {r['pids']} actor(s))")
            print(f"2 workers / 1 worker : {two['throughput'] / one['throughput']:.2f}x  (target >= 1.6x)")
            print(f"plain / 1 ray worker : {base / one['throughput']:.2f}x  (target <= 1.3x)")
            peak, took = hour_memory(folder, args.hour_minutes)
            print(f"one actor, {args.hour_minutes:.0f} min file: peak memory {peak:.0f} MB (VmHWM; target < 600 MB), "
                  f"{took:.1f} s")
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()

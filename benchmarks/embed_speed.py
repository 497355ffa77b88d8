"""YAMNet embedding speed on one core: front end + network vs the network alone.

    python benchmarks/embed_speed.py [--clips 50] [--hop 0.96] [--batch-size 32] [--repeats 3] [--sweep]

Prints (a) the throughput of ``YamnetEmbedder(threads=1).embed`` on ``--clips`` synthetic 10 s clips (noise plus
tones), front end included, in times real time per core; (b) the ONNX network alone on the same log-mel patches;
(c) the ratio (a)/(b) of times. Targets: (a) >= 150x real time per core, ratio <= 1.5. ``--sweep`` also times
the network alone at several batch sizes. BLAS/OpenMP pools are limited to one thread (set before numpy is
imported) so that "per core" holds for the front end's matmul too. Needs the YAMNet weights (``zsa models fetch``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def _clips(n: int, seconds: float = 10.0, sr: int = 16000) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    out = []
    for _ in range(n):
        f1, f2 = rng.uniform(100, 4000, size=2)
        wav = (0.05 * rng.standard_normal(t.shape[0]) + 0.2 * np.sin(2 * np.pi * f1 * t)
               + 0.1 * np.sin(2 * np.pi * f2 * t))
        out.append(wav.astype(np.float32))
    return out


def _best(fn, repeats: int) -> tuple[float, float]:
    """Best (wall, cpu) seconds over ``repeats`` runs."""
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    i = int(np.argmin(walls))
    return walls[i], cpus[i]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=50)
    ap.add_argument("--hop", type=float, default=0.96)
    ap.add_argument("--batch-size", type=int, default=None,
                    help="patches per onnxruntime call (default: the embedder's)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sweep", action="store_true", help="also time the network alone at several batch sizes")
    args = ap.parse_args()

    from zeroshot_audio.embedders.yamnet import YamnetEmbedder, log_mel_frames, log_mel_patches

    kw = {} if args.batch_size is None else {"batch_size": args.batch_size}
    emb = YamnetEmbedder(hop=args.hop, threads=1, **kw)
    clips = _clips(args.clips)
    audio_s = sum(c.shape[0] for c in clips) / emb.sample_rate
    emb.embed(clips[0])  # session creation and warm-up, not timed

    def full() -> None:
        for c in clips:
            emb.embed(c)

    patches = []
    for c in clips:  # the same padded patches embed() feeds the network
        t = emb.n_segments(c.shape[0])
        need = (t - 1) * emb.hop_samples + emb.window_samples
        wav = np.concatenate([c, np.zeros(max(0, need - c.shape[0]), np.float32)])
        frames = log_mel_frames(wav[:need], (t - 1) * emb.hop_frames + 96)
        patches.append(np.ascontiguousarray(log_mel_patches(frames, t, emb.hop_frames)))

    def network() -> None:
        for p in patches:
            emb.run_patches(p)

    def front_end() -> None:
        for c in clips:
            log_mel_frames(c)

    wall_a, cpu_a = _best(full, args.repeats)
    wall_b, cpu_b = _best(network, args.repeats)
    wall_f, _ = _best(front_end, args.repeats)
    n_patches = sum(p.shape[0] for p in patches)
    print(f"YAMNet, {args.clips} clips x 10 s = {audio_s:.0f} s of audio, hop {emb.hop} s ({n_patches} patches), "
          f"threads=1, batch {emb.batch_size}, best of {args.repeats}")
    print(f"(a) embed (front end + network): {wall_a:.3f} s wall, {cpu_a:.3f} s CPU -> {audio_s / wall_a:.0f}x real "
          f"time per core (target >= 150x)")
    print(f"(b) network alone:               {wall_b:.3f} s wall, {cpu_b:.3f} s CPU -> {audio_s / wall_b:.0f}x real "
          f"time ({1000 * wall_b / n_patches:.2f} ms per patch)")
    print(f"    front end alone:             {wall_f:.3f} s wall -> {audio_s / wall_f:.0f}x real time")
    print(f"(c) ratio (a)/(b): {wall_a / wall_b:.2f} wall, {cpu_a / cpu_b:.2f} CPU (target <= 1.5)")
    print(f"    per core by CPU time: (a) {audio_s / cpu_a:.0f}x, (b) {audio_s / cpu_b:.0f}x real time")
    if args.sweep:
        all_patches = np.concatenate(patches)
        for bs in (1, 8, 16, 32, 64, 128):
            emb.batch_size = bs
            wall, _ = _best(lambda: emb.run_patches(all_patches), args.repeats)
            print(f"    network, batch {bs:4d}: {1000 * wall / all_patches.shape[0]:.2f} ms per patch")


if __name__ == "__main__":
    main()

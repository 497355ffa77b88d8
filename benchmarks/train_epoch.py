"""Training speed and memory at scale: one epoch over 20,000 clips x 10 segments x 1024-d, 500 classes.

Prints the epoch time, the time of the same matrix products alone (forward and backward, no data
loading, no autograd), their ratio, and the peak resident memory of the process.

    python benchmarks/train_epoch.py [--clips 20000] [--classes 500] [--store DIR]

Targets: epoch under 20 s on a 2-core machine, within 2x of the matrix products, peak memory under 2 GB.
The store is written once (float16 on disk, ~400 MB) to --store (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def build_store(path: Path, n_clips: int, n_segments: int, dim: int, seed: int = 0) -> None:
    from zeroshot_audio.data.store import StoreMeta, StoreWriter

    rng = np.random.default_rng(seed)
    meta = StoreMeta(embedder="bench", embedder_version="1", dim=dim, hop=0.96)
    with StoreWriter(path, meta, shard_size=1024) as w:
        for n in range(n_clips):
            key = f"clip{n:06d}"
            if key not in w:
                w.add(key, rng.standard_normal((n_segments, dim), dtype=np.float32))


def matmul_only(n_clips, n_segments, audio_dim, text_dim, dim, n_classes, batch, repeats=1) -> float:
    """Time the model's matrix products for one epoch: forward and the backward products it needs."""
    import torch

    b = batch
    x = torch.randn(b * n_segments, audio_dim)
    w = torch.randn(audio_dim, 2 * dim)
    phi = torch.randn(n_classes, text_dim)
    wt = torch.randn(text_dim, 2 * dim)
    g_seg = torch.randn(b, n_segments, n_classes)
    n_batches = -(-n_clips // batch)
    start = time.perf_counter()
    for _ in range(n_batches * repeats):
        kk = phi @ wt  # class projection
        q = x @ w  # acoustic projection [B*T, 2D]
        q3 = q.view(b, n_segments, 2 * dim)
        seg = q3[..., :dim] @ kk[:, :dim].T  # segment scores [B, T, C]
        att = q3[..., dim:] @ kk[:, dim:].T  # attention logits [B, T, C]
        # backward: d/dq (two products), d/dk (two products), d/dw, d/dwt
        dq_s = g_seg @ kk[:, :dim]
        dq_a = g_seg @ kk[:, dim:]
        dk_s = g_seg.reshape(-1, n_classes).T @ q[:, :dim]
        dk_a = g_seg.reshape(-1, n_classes).T @ q[:, dim:]
        dw = x.T @ torch.cat([dq_s, dq_a], dim=-1).reshape(-1, 2 * dim)
        dwt = phi.T @ torch.cat([dk_s, dk_a], dim=1)
        del seg, att, dw, dwt
    return (time.perf_counter() - start) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=20000)
    ap.add_argument("--segments", type=int, default=10)
    ap.add_argument("--dim-audio", type=int, default=1024)
    ap.add_argument("--dim-text", type=int, default=384)
    ap.add_argument("--classes", type=int, default=500)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--store", help="where to write (or reuse) the benchmark store")
    args = ap.parse_args()

    tmp = None
    store_dir = Path(args.store) if args.store else Path(tempfile.mkdtemp(prefix="zsa-bench-")) / "store"
    if not args.store:
        tmp = store_dir.parent
    t0 = time.perf_counter()
    # written in a child process, so the peak memory below is that of training alone
    p = mp.get_context("spawn").Process(target=build_store, args=(store_dir, args.clips, args.segments,
                                                                  args.dim_audio))
    p.start()
    p.join()
    if p.exitcode:
        raise SystemExit(f"building the store failed (exit {p.exitcode})")
    print(f"store: {store_dir} ({args.clips} clips x {args.segments} x {args.dim_audio}, float16) "
          f"ready in {time.perf_counter() - t0:.1f} s")

    import torch

    from zeroshot_audio.data.store import open_store
    from zeroshot_audio.model import ModelConfig
    from zeroshot_audio.train.fit import ClipSet, TrainOptions, fit

    store = open_store(store_dir)
    rng = np.random.default_rng(1)
    targets = rng.random((len(store), args.classes)) < 3 / args.classes
    class_emb = rng.standard_normal((args.classes, args.dim_text)).astype(np.float32)
    train = ClipSet(store, np.arange(len(store)), targets)
    config = ModelConfig(audio_dim=args.dim_audio, text_dim=args.dim_text, dim=args.dim)
    opts = TrainOptions(epochs=1, batch_size=args.batch_size, device="cpu", normalize=False)
    fit(config, ClipSet(store, np.arange(512), targets[:512]), class_emb, options=opts)  # warm-up
    res = fit(config, train, class_emb, options=opts)
    epoch = res.seconds
    mm = matmul_only(args.clips, args.segments, args.dim_audio, args.dim_text, args.dim, args.classes,
                     args.batch_size)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"epoch: {epoch:.2f} s   (target < 20 s)")
    print(f"matrix products alone: {mm:.2f} s")
    print(f"ratio epoch / products: {epoch / mm:.2f}   (target < 2)")
    print(f"peak memory: {peak_mb:.0f} MB   (target < 2048 MB)")
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

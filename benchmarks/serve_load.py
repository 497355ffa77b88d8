"""`zsa serve` under load: 50 requests from 8 concurrent clients against one server.

    python benchmarks/serve_load.py [--requests 50] [--clients 8] [--workers 1] [--queue 4]

Each client (a thread with its own httpx client) takes the next request, posts one file (the examples in turn,
one in five a 30 s clip) with 10 labels, and on a 503 waits the Retry-After seconds and tries again (at most
20 times). With the default --queue 4, 8 clients are more than the server admits (workers + queue = 5), so the
503 path is exercised. Printed: the answers (200 / 503 seen / given up), the server's temporary files left (its
TMPDIR is a private folder: zsa-serve-* directories and anything else), and its resident memory (VmRSS from
/proc/<pid>/status) before the load (after one warm-up request with each of the five files: the server's memory
grows once, by about 25 MB, over its first requests, then stays flat load after load; see docs/serve.md), at its
peak (sampled every 20 ms, and VmHWM), and after (2 s after the last answer). Targets: every request answered 200
in the end, nothing left, memory after within 10 % of before.
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from serve_latency import EXAMPLES, LABELS10, Server, clip_10s, private_cache


def _status(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` figure in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _clip_30s() -> bytes:
    import soundfile as sf

    rng = np.random.default_rng(0)
    wave = np.convolve(rng.standard_normal(30 * 16000), np.ones(8) / 8, mode="same") * 0.2
    buf = io.BytesIO()
    sf.write(buf, wave.astype(np.float32), 16000, format="FLAC")
    return buf.getvalue()


def _load(server, plan, form, args) -> dict:
    """One round: ``len(plan)`` requests from ``args.clients`` clients; answers, time and the sampled peak RSS."""
    import httpx

    peak = [_status(server.pid, "VmRSS")]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _status(server.pid, "VmRSS"))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    counter = itertools.count()
    lock = threading.Lock()
    tally = {"200": 0, "503 seen": 0, "other": 0, "gave up": 0}

    def client() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            while (i := next(counter)) < len(plan):
                for _ in range(args.retries + 1):
                    r = http.post("v1/tag", files=[("files", plan[i])], data=form)
                    if r.status_code != 503:
                        break
                    with lock:
                        tally["503 seen"] += 1
                    time.sleep(float(r.headers.get("retry-after", "1")))
                with lock:
                    key = "200" if r.status_code == 200 else ("gave up" if r.status_code == 503 else "other")
                    tally[key] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - start
    time.sleep(2.0)
    stop.set()
    sampler.join()
    return {"tally": tally, "took": took, "peak": peak[0]}


def main() -> None:
    import httpx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--queue", type=int, default=4)
    ap.add_argument("--retries", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=1, help="load rounds against the same server (memory per round)")
    args = ap.parse_args()
    files = [(n, (EXAMPLES / n).read_bytes()) for n in ("dog.flac", "cow.flac", "rooster.flac")]
    files += [("clip10.flac", clip_10s()), ("noise30.flac", _clip_30s())]
    plan = [files[4] if i % 5 == 4 else files[i % 4] for i in range(args.requests)]
    form = {"labels": ";".join(LABELS10)}
    with tempfile.TemporaryDirectory(prefix="zsa-serve-load-") as tmp:
        env = dict(os.environ, ZSA_CACHE_DIR=str(private_cache(Path(tmp))), TMPDIR=str(Path(tmp) / "tmp"))
        (Path(tmp) / "tmp").mkdir()
        server = Server(["--workers", str(args.workers), "--queue", str(args.queue)], env)
        try:
            for f in files:  # warm-up: one request of each file (see the module's docstring)
                httpx.post(server.url + "v1/tag", files=[("files", f)], data=form, timeout=60).raise_for_status()
            time.sleep(1.0)
            levels = [_status(server.pid, "VmRSS")]
            rounds = []
            for _ in range(args.rounds):
                rounds.append(_load(server, plan, form, args))
                levels.append(_status(server.pid, "VmRSS"))
            hwm = _status(server.pid, "VmHWM")
            health = httpx.get(server.url + "v1/health").json()
            left = sorted(os.listdir(Path(tmp) / "tmp"))
        finally:
            code = server.stop()
    print(f"{args.requests} requests from {args.clients} clients per round, {args.rounds} round(s), server "
          f"--workers {args.workers} --queue {args.queue}")
    answered = True
    for n, r in enumerate(rounds, start=1):
        t, before, after = r["tally"], levels[n - 1], levels[n]
        change = (after - before) / before
        answered &= t["200"] == args.requests
        print(f"  round {n}: {r['took']:.1f} s ({args.requests / r['took']:.1f} requests/s); {t['200']} x 200 in the "
              f"end, {t['503 seen']} x 503 seen (retried after Retry-After), {t['gave up']} given up, {t['other']} "
              f"other; RSS before {before / 1024:.0f} MB, peak {r['peak'] / 1024:.0f} MB, after {after / 1024:.0f} MB: "
              f"{change:+.1%} (target within 10 %: {'met' if abs(change) <= 0.10 else 'NOT met'})")
    print(f"  queue after: {health['queue']}; VmHWM {hwm / 1024:.0f} MB; after all rounds "
          f"{(levels[-1] - levels[0]) / levels[0]:+.1%} against the level before the first")
    print(f"  temporary files left: {len(left)} ({sum(n.startswith('zsa-serve-') for n in left)} zsa-serve-* dirs)"
          + (f": {left[:5]}" if left else ""))
    ok = answered and not left
    print(f"  all answered 200: {answered}; nothing left: {not left}; server exit code {code} "
          f"(130: stopped by SIGINT) -> {'met' if ok else 'NOT met'}")

if __name__ == "__main__":
    main()

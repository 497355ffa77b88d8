"""`zsa serve` latency: a 10 s clip with 10 labels through POST /v1/tag against Tagger.tag in the same process.

    python benchmarks/serve_latency.py [--runs 20]

Target: the median request within 1.3x of the median Tagger.tag call (median of 20 each, after warm-up). The
server is the real `zsa serve` (uvicorn) in a subprocess on 127.0.0.1, called with httpx (one kept-alive
connection); the in-process tagger gets the server's onnxruntime thread count (ServeOptions.onnx_threads), so the
two compute the same thing with the same threads and the ratio is the cost of HTTP, the upload and the JSON.
Calls alternate (one request, one in-process call) so that the machine's load falls on both alike. The label
cache is a private folder (the models are read from the set-up cache).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
LABELS10 = ["dog barking", "car horn", "rain", "church bells", "someone chopping wood", "a baby crying", "footsteps",
            "thunder", "birds singing", "a door slamming"]


def private_cache(folder: Path) -> Path:
    """A cache folder whose ``models`` is the user's set-up one (read only) and whose label cache is private."""
    from zeroshot_audio._cache import cache_dir

    cache = folder / "zsa-cache"
    cache.mkdir()
    (cache / "models").symlink_to(cache_dir() / "models", target_is_directory=True)
    return cache


def clip_10s() -> bytes:
    """A 10 s FLAC of the example clips one after another (dog, cow, rooster), cut to 10 s."""
    import soundfile as sf

    parts = [sf.read(EXAMPLES / n, dtype="float32", always_2d=True) for n in ("dog.flac", "cow.flac", "rooster.flac")]
    rate = parts[0][1]
    wave = np.concatenate([w.mean(axis=1) for w, r in parts if r == rate])[: 10 * rate]
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format="FLAC")
    return buf.getvalue()


class Server:
    """``zsa serve ARGS --port 0`` in a subprocess; :attr:`url` once it is up, :attr:`pid` for its memory."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        import httpx

        self.proc = subprocess.Popen([sys.executable, "-m", "zeroshot_audio", "serve", "--port", "0", *args], env=env,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if found is None:
            self.stop()
            raise SystemExit(f"zsa serve did not start: {line.strip()}")
        self.url = found.group(0)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "v1/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit("zsa serve did not answer /v1/health within 60 s")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def main() -> None:
    import httpx

    from zeroshot_audio import load_model
    from zeroshot_audio.serve import ServeOptions

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="zsa-serve-bench-") as tmp:
        cache = private_cache(Path(tmp))
        os.environ["ZSA_CACHE_DIR"] = str(cache)
        clip = clip_10s()
        path = Path(tmp) / "clip10.flac"
        path.write_bytes(clip)
        threads = ServeOptions().onnx_threads
        tagger = load_model()
        tagger.embedder.threads = threads  # before its session is made: the server's setting
        server = Server([], dict(os.environ))
        try:
            form = {"labels": ";".join(LABELS10)}
            with httpx.Client(base_url=server.url, timeout=60) as client:
                def request() -> float:
                    start = time.perf_counter()
                    r = client.post("v1/tag", files=[("files", ("clip10.flac", clip, "audio/flac"))], data=form)
                    took = time.perf_counter() - start
                    r.raise_for_status()
                    return took

                def in_process() -> float:
                    start = time.perf_counter()
                    tagger.tag(path, labels=LABELS10)
                    return time.perf_counter() - start

                for _ in range(args.warmup):
                    request()
                    in_process()
                served, direct = [], []
                for _ in range(args.runs):
                    served.append(request())
                    direct.append(in_process())
                check = client.post("v1/tag", files=[("files", ("clip10.flac", clip, "audio/flac"))], data=form).json()
            want = tagger.tag(path, labels=LABELS10)
        finally:
            server.stop()
    same = all(abs(a["probability"] - b.probability) < 1e-4 for a, b in zip(check[0]["labels"], want.labels))
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    print(f"10 s clip, 10 labels, onnxruntime threads {threads}, median of {args.runs} (after {args.warmup} warm-up)")
    print(f"  POST /v1/tag (zsa serve, httpx): {ms(served):7.1f} ms  (min {min(served) * 1000:.1f}, "
          f"max {max(served) * 1000:.1f})")
    print(f"  Tagger.tag in process:           {ms(direct):7.1f} ms  (min {min(direct) * 1000:.1f}, "
          f"max {max(direct) * 1000:.1f})")
    ratio = statistics.median(served) / statistics.median(direct)
    print(f"  ratio {ratio:.2f}x (target <= 1.3x): {'met' if ratio <= 1.3 else 'NOT met'}; "
          f"same probabilities: {same}")


if __name__ == "__main__":
    main()

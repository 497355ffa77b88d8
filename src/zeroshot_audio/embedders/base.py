"""The acoustic segment embedder interface.

An embedder turns a mono waveform at its own sample rate into one embedding per segment. Segment ``t``
covers samples ``[t * hop_samples, t * hop_samples + window_samples)``. A clip of ``n`` samples has

    T = max(1, round_half_up((n - window_samples) / hop_samples) + 1)

segments: the last one is zero-padded at the end when the remainder covers at least half a hop, and a
clip shorter than one window gives one padded segment (10 s at hop 0.96 s: 10 segments, as in the paper).
Because a segment depends only on its own samples, a long file can be embedded chunk by chunk (chunks
starting at a multiple of the hop) with results equal to embedding it whole.

To add an embedder (VGGish, PANNs, CLAP, ...): subclass :class:`Embedder`, implement
:meth:`Embedder.embed_segments`, and register a factory with
:func:`zeroshot_audio.embedders.register_embedder`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import ParameterError

__all__ = ["Embedder", "EmbedOutput", "n_segments"]


def n_segments(n_samples: int, window: int, hop: int) -> int:
    """Number of segments of a clip of ``n_samples`` (see the module docstring)."""
    if n_samples <= window:
        return 1
    return int(math.floor((n_samples - window) / hop + 0.5)) + 1


@dataclass
class EmbedOutput:
    """Segment embeddings of one waveform.

    Attributes
    ----------
    embeddings : np.ndarray [T, D]
        float32.
    times : np.ndarray [T, 2]
        Start and end of every segment in seconds (the end is clipped to the clip's duration).
    logits : np.ndarray [T, K] or None
        The embedder's own classifier outputs, when it has one (YAMNet: 521 AudioSet classes).
    duration : float
        Seconds of audio.
    padded : bool
        The clip was shorter than one segment window and was zero-padded.
    peak : float or None
        Largest absolute sample value (0.0: digitally silent).
    """

    embeddings: np.ndarray
    times: np.ndarray
    logits: np.ndarray | None
    duration: float
    padded: bool = False
    peak: float | None = None


class Embedder(ABC):
    """Turns a mono waveform into segment embeddings.

    Subclasses set the attributes below and implement :meth:`embed_segments`.

    Attributes
    ----------
    name : str
        Registry name ("yamnet").
    version : str
        Changes whenever the embeddings would change (weights, front end).
    sample_rate : int
        Sample rate of the input waveform.
    dim : int
        Embedding dimension ``D``.
    hop : float
        Seconds between segment starts.
    window : float
        Seconds of audio one segment sees.
    checksum : str
        SHA-256 of the weights ("" when there are none).
    class_names : list of str or None
        Names of the ``K`` logits, when the embedder has its own classifier.
    """

    name: str = ""
    version: str = ""
    sample_rate: int = 16000
    dim: int = 0
    hop: float = 0.96
    window: float = 0.96
    checksum: str = ""
    class_names: list[str] | None = None

    @property
    def hop_samples(self) -> int:
        return int(round(self.hop * self.sample_rate))

    @property
    def window_samples(self) -> int:
        return int(round(self.window * self.sample_rate))

    def n_segments(self, n_samples: int) -> int:
        return n_segments(n_samples, self.window_samples, self.hop_samples)

    @abstractmethod
    def embed_segments(self, waveform: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Embed the first ``n`` segments of ``waveform``.

        ``waveform`` is float32 mono at :attr:`sample_rate` and holds at least
        ``(n - 1) * hop_samples + window_samples`` samples (the caller pads). Returns
        ``embeddings [n, D]`` and ``logits [n, K]`` (or None).
        """

    def embed(self, waveform: np.ndarray) -> EmbedOutput:
        """Embed a whole waveform (float32 mono at :attr:`sample_rate`, values in [-1, 1])."""
        wav = np.asarray(waveform, dtype=np.float32)
        if wav.ndim != 1:
            raise ParameterError(f"waveform must be mono [n], got shape {wav.shape}")
        n = wav.shape[0]
        if n == 0:
            raise ParameterError("waveform is empty")
        t = self.n_segments(n)
        need = (t - 1) * self.hop_samples + self.window_samples
        padded = n < self.window_samples
        if need > n:
            wav = np.concatenate([wav, np.zeros(need - n, dtype=np.float32)])
        peak = float(np.abs(wav).max())
        emb, logits = self.embed_segments(wav, t)
        return EmbedOutput(emb, self.segment_times(t, n), logits, n / self.sample_rate, padded, peak)

    def segment_times(self, t: int, n_samples: int, *, first: int = 0) -> np.ndarray:
        """``[t, 2]`` start/end seconds of segments ``first .. first + t - 1`` of a clip of ``n_samples``."""
        starts = (np.arange(first, first + t) * self.hop_samples) / self.sample_rate
        ends = np.minimum(starts + self.window, n_samples / self.sample_rate)
        return np.stack([starts, ends], axis=1)

    def identity(self) -> dict[str, Any]:
        """What must match between a store and a model: ``{embedder, embedder_version, dim, hop}``."""
        return {"embedder": self.name, "embedder_version": self.version, "dim": int(self.dim),
                "hop": float(self.hop)}

    def store_meta(self):
        """The :class:`~zeroshot_audio.data.store.StoreMeta` of a store this embedder writes."""
        from ..data.store import StoreMeta

        return StoreMeta(embedder=self.name, embedder_version=self.version, dim=int(self.dim),
                         hop=float(self.hop), sample_rate=int(self.sample_rate), window=float(self.window),
                         extra={"checksum": self.checksum})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, version={self.version!r}, dim={self.dim}, hop={self.hop})"

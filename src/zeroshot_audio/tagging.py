"""Zero-shot tagging for users: any audio, any labels, which are present, how confident, and when.

``load_model()`` gives a :class:`Tagger` for the shipped default model (or a model directory);
``tagger.tag(path_or_waveform, labels=[...])`` returns a :class:`TagResult` with, per label, the clip score, a
calibrated probability, the attention and segment scores over time and the detected events.

Long recordings are embedded in bounded memory (blocks, chunks) and scored in windows of ``window_segments``
segments (10 segments ≈ 10 s at hop 0.96 s, the clip length the model was trained on): a label's score is
its best window's, and events carry absolute times.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ParameterError

__all__ = ["Tagger", "TagResult", "LabelResult", "load_model", "available_models", "clean_labels"]

#: Package directory of the shipped default model.
DEFAULT_MODEL_DIR = Path(__file__).parent / "assets" / "default"


@dataclass
class LabelResult:
    """One label's outcome on one recording.

    Attributes
    ----------
    label : str
    score : float
        Clip score ``F(y)`` of the best window.
    probability : float
        Calibrated probability that the label is present.
    attention : np.ndarray [T]
        Attention over the segments (sums to 1 within each window).
    segment_scores : np.ndarray [T]
        Segment compatibility ``s_t(y)``.
    events : list of (onset, offset, score)
        Where the label is heard, absolute seconds: runs of segments whose detection score (attention
        relative to its window's peak, times the window's probability) reaches ``event_threshold`` of the
        label's best segment; ``score`` is the run's best detection score (comparable across labels).
    """

    label: str
    score: float
    probability: float
    attention: np.ndarray
    segment_scores: np.ndarray
    events: list[tuple[float, float, float]] = field(default_factory=list)


@dataclass
class TagResult:
    """The tags of one recording; ``labels`` are sorted best first."""

    file: str
    duration: float
    segment_times: np.ndarray  # [T, 2]
    labels: list[LabelResult]
    peak: float | None = None  # largest absolute sample (0.0: digitally silent)

    def to_json(self) -> dict[str, Any]:
        """``{"file", "duration", "labels": [{"label", "score", "probability", "events": [...]}]}``."""
        return {
            "file": self.file,
            "duration": round(float(self.duration), 3),
            "labels": [
                {"label": r.label, "score": round(r.score, 4), "probability": round(r.probability, 4),
                 "events": [{"onset": round(a, 3), "offset": round(b, 3), "score": round(s, 4)}
                            for a, b, s in r.events]}
                for r in self.labels
            ],
        }

    def to_dataframe(self):
        """One row per label: file, label, score, probability, n_events (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            from ._errors import missing_dependency

            raise missing_dependency("pandas", "TagResult.to_dataframe") from None
        return pd.DataFrame([{"file": self.file, "label": r.label, "score": r.score, "probability": r.probability,
                              "n_events": len(r.events)} for r in self.labels])


def clean_labels(labels: Sequence[str] | str) -> tuple[list[str], list[str]]:
    """Labels stripped and deduplicated (order kept); returns ``(labels, duplicates)``.

    A string is split on ``;``. Empty labels and an empty list are a :class:`ParameterError`.
    """
    if isinstance(labels, str):
        labels = labels.split(";")
    out: dict[str, None] = {}
    dups: list[str] = []
    for i, raw in enumerate(labels):
        if not isinstance(raw, str):
            raise ParameterError(f"label {i + 1} is not a string: {raw!r}")
        label = " ".join(raw.split())
        if not label:
            raise ParameterError(f"label {i + 1} is empty")
        if label in out:
            dups.append(label)
        out[label] = None
    if not out:
        raise ParameterError("no labels given")
    return list(out), dups


class Tagger:
    """A trained model with its embedder, label encoder and calibration, ready to tag audio."""

    def __init__(self, trained: Any, *, path: Path, window_segments: int = 10, batch_labels: int = 512):
        from .embedders import get_embedder

        self.trained = trained
        self.path = Path(path)
        emb = trained.embedder
        name = emb.get("embedder", "yamnet")
        self.embedder = get_embedder(name, hop=float(emb.get("hop", 0.96)))
        trained.check_store(_IdentityOnly(self.embedder.store_meta()), name=f"model {path}")
        cal = trained.info.get("calibration") or {}
        self.scale = float(cal.get("scale", 1.0))
        self.bias = float(cal.get("bias", 0.0))
        self.window_segments = int(window_segments)
        self.batch_labels = int(batch_labels)

    def probability(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probability of clip scores: ``sigmoid(scale * F + bias)``."""
        z = self.scale * np.asarray(scores, dtype=np.float64) + self.bias
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    def label_embeddings(self, labels: Sequence[str]) -> np.ndarray:
        """``[L, Ds]``, encoded in batches (a list of 10,000 labels works) and cached on disk."""
        parts = [self.trained.label_embeddings(list(labels[i : i + self.batch_labels]))
                 for i in range(0, len(labels), self.batch_labels)]
        return np.concatenate(parts) if parts else np.zeros((0, self.trained.config.text_dim), np.float32)

    def tag(self, audio: str | os.PathLike[str] | np.ndarray, *, labels: Sequence[str] | str,
            sample_rate: int | None = None, event_threshold: float = 0.5) -> TagResult:
        """Tag one recording (a path, or a waveform with its ``sample_rate``)."""
        labels, _ = clean_labels(labels)
        return self.tag_batch([audio], labels=labels, sample_rate=sample_rate, event_threshold=event_threshold)[0]

    def tag_batch(self, audios: Sequence[Any], *, labels: Sequence[str] | str, sample_rate: int | None = None,
                  event_threshold: float = 0.5) -> list[TagResult]:
        """Tag several recordings with one label set (label embeddings computed once)."""
        labels, _ = clean_labels(labels)
        emb = self.label_embeddings(labels)
        return [self.tag_encoded(a, labels, emb, sample_rate=sample_rate, event_threshold=event_threshold)
                for a in audios]

    def _embed(self, audio: Any, sample_rate: int | None):
        from .embed import embed_file

        if isinstance(audio, np.ndarray):
            if sample_rate is None:
                raise ParameterError("a waveform needs its sample_rate")
            wav = np.asarray(audio, dtype=np.float32)
            if wav.ndim == 2:
                wav = wav.mean(axis=1 if wav.shape[1] <= 8 else 0)
            if sample_rate != self.embedder.sample_rate:
                import soxr

                wav = soxr.resample(wav, sample_rate, self.embedder.sample_rate, quality="HQ").astype(np.float32)
            if wav.size == 0:
                raise ParameterError("the waveform is empty")
            if not np.isfinite(wav).all():
                raise ParameterError("the waveform contains NaN or infinite samples")
            return "<array>", self.embedder.embed(wav)
        return str(audio), embed_file(self.embedder, audio)

    def tag_encoded(self, audio: Any, labels: list[str], label_embeddings: np.ndarray, *,
                    sample_rate: int | None = None, event_threshold: float = 0.5) -> TagResult:
        """Tag one recording with labels already cleaned and embedded (:meth:`label_embeddings`): the loop
        body of :meth:`tag_batch`, for callers that handle each file's failure themselves."""
        emb = label_embeddings
        import torch

        name, out = self._embed(audio, sample_rate)
        x = torch.from_numpy(out.embeddings)
        k = torch.from_numpy(np.asarray(emb, dtype=np.float32))
        t, w = x.shape[0], self.window_segments
        n_win = max(1, -(-t // w))
        pad = n_win * w - t
        xw = torch.cat([x, torch.zeros(pad, x.shape[1])]).view(n_win, w, -1)
        mask = (torch.arange(n_win * w) < t).view(n_win, w)
        with torch.no_grad():
            res = self.trained.model.eval()(xw, mask, k, return_segments=True)
        clip = res.clip_scores.numpy()  # [n_win, L]
        att = res.attention.reshape(n_win * w, -1)[:t].numpy()
        seg = res.segment_scores.reshape(n_win * w, -1)[:t].numpy()
        best = clip.max(axis=0)
        prob = self.probability(best)
        # detection score per segment: attention relative to its window's peak, times the window's probability;
        # an event is a run of segments scoring at least `event_threshold` of the label's best segment
        win_of = np.arange(t) // w
        peak = np.maximum(res.attention.numpy().max(axis=1), 1e-12)  # [n_win, L]
        det = att / peak[win_of] * self.probability(clip)[win_of]
        rel = det / np.maximum(det.max(axis=0, keepdims=True), 1e-30)
        from .temporal import frame_timestamps, scores_to_events

        stamps = frame_timestamps(t, self.embedder.hop, out.duration)
        events: dict[str, list] = {lab: [] for lab in labels}
        for onset, offset, lab, _ in scores_to_events(rel, stamps, labels, threshold=event_threshold):
            i = labels.index(lab)
            inside = (stamps[:-1] >= onset - 1e-9) & (stamps[1:] <= offset + 1e-9)
            events[lab].append((onset, offset, float(det[inside, i].max())))
        results = [LabelResult(lab, float(best[i]), float(prob[i]), att[:, i], seg[:, i], events[lab])
                   for i, lab in enumerate(labels)]
        results.sort(key=lambda r: -r.score)
        return TagResult(file=name, duration=float(out.duration), segment_times=out.times, labels=results,
                         peak=out.peak)


class _IdentityOnly:
    """Adapter: check a model's embedder identity against an embedder's store meta."""

    def __init__(self, meta: Any):
        self.meta = meta
        self.path = "(this embedder)"

    def check_compatible(self, identity: dict, *, what: str = "model") -> None:
        from ._errors import StoreError
        from .data.store import identity_mismatch

        problem = identity_mismatch(self.meta.identity(), identity)
        if problem:
            raise StoreError(f"the embedder {problem} by {what}")


def available_models() -> list[str]:
    """Names accepted by :func:`load_model` besides a model directory."""
    return ["default"] if (DEFAULT_MODEL_DIR / "config.json").is_file() else []


def load_model(name: str | os.PathLike[str] = "default", **options: Any) -> Tagger:
    """The shipped default model (``"default"``) or a model directory written by ``zsa train``."""
    from .checkpoint import TrainedModel

    if str(name) == "default":
        if not (DEFAULT_MODEL_DIR / "config.json").is_file():
            raise ParameterError(f"the default model is not shipped in this installation ({DEFAULT_MODEL_DIR})")
        path = DEFAULT_MODEL_DIR
    else:
        path = Path(name)
    return Tagger(TrainedModel.load(path), path=path, **options)

"""Planted data: segment embeddings and label embeddings with a known, learnable structure.

Every class ``c`` has an audio signature ``a_c`` (a unit vector in ``R^Da``) and a text embedding
``phi_c = normalise(M a_c + noise)``: the text space is a noisy linear image of the audio signatures, so a
projection learned on some classes transfers to others. A clip has ``T`` segments of background:
each segment is one of a pool of loud distractor sounds plus noise. A clip holds 0-3 events of distinct
classes; an event adds its class signature to only 1-2 of the ``T`` segments. Averaging over time dilutes
an event by the distractors of the other segments; attention can find it. The strong labels are known
exactly and come with the data as events.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset import Dataset, Event
from .memstore import MemoryStore
from .store import StoreMeta

__all__ = ["SyntheticData", "make_synthetic"]


@dataclass
class SyntheticData:
    dataset: Dataset
    store: MemoryStore
    class_embeddings: np.ndarray  # [C, Ds], rows follow dataset.classes


def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=-1, keepdims=True)


def make_synthetic(
    *,
    n_classes: int = 40,
    n_clips: int = 3000,
    n_segments: int = 10,
    audio_dim: int = 64,
    text_dim: int = 32,
    latent_dim: int = 12,
    n_distractors: int = 24,
    distractor_gain: float = 2.0,
    event_gain: tuple[float, float] = (0.8, 1.6),
    noise: float = 0.3,
    text_noise: float = 0.3,
    seed: int = 0,
) -> SyntheticData:
    """Generate a planted dataset in memory (deterministic for a seed).

    Returns
    -------
    SyntheticData
        ``dataset`` (clips with a 70/10/20 train/val/test split and exact events), ``store`` (segment
        embeddings ``[N, T, Da]``, hop 1 s) and ``class_embeddings [C, Ds]``.
    """
    rng = np.random.default_rng(seed)
    classes = [f"class{c:03d}" for c in range(n_classes)]
    latent = rng.standard_normal((n_classes, latent_dim))
    signatures = _unit(latent @ rng.standard_normal((latent_dim, audio_dim)))
    mixing = rng.standard_normal((text_dim, audio_dim)) / np.sqrt(audio_dim)
    text = _unit(signatures @ mixing.T + text_noise * rng.standard_normal((n_classes, text_dim)) / np.sqrt(text_dim))
    distractors = _unit(rng.standard_normal((n_distractors, audio_dim))) * distractor_gain

    segs = distractors[rng.integers(0, n_distractors, size=(n_clips, n_segments))]
    segs = segs + noise * rng.standard_normal(segs.shape) / np.sqrt(audio_dim)
    n_events = rng.choice([0, 1, 2, 3], size=n_clips, p=[0.1, 0.4, 0.3, 0.2])
    labels: list[tuple[str, ...]] = []
    events: list[Event] = []
    filenames = [f"clip{n:05d}.wav" for n in range(n_clips)]
    for n in range(n_clips):
        chosen = rng.choice(n_classes, size=n_events[n], replace=False)
        for c in chosen:
            length = int(rng.integers(1, 3))
            onset = int(rng.integers(0, n_segments - length + 1))
            segs[n, onset : onset + length] += rng.uniform(*event_gain) * signatures[c]
            events.append(Event(filenames[n], float(onset), float(onset + length), classes[c]))
        labels.append(tuple(classes[c] for c in sorted(chosen)))
    split = rng.choice(["train", "val", "test"], size=n_clips, p=[0.7, 0.1, 0.2])
    dataset = Dataset(
        root=Path("<synthetic>"),
        filenames=filenames,
        labels=labels,
        splits=[str(s) for s in split],
        families=list(filenames),
        classes=classes,
        descriptions={c: "" for c in classes},
        events=events,
    )
    meta = StoreMeta(embedder="synthetic", embedder_version=str(seed), dim=audio_dim, hop=1.0, sample_rate=16000)
    store = MemoryStore(filenames, segs.astype(np.float32), meta=meta)
    return SyntheticData(dataset=dataset, store=store, class_embeddings=text.astype(np.float32))

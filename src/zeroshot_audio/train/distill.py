"""YAMNet's own knowledge as auxiliary training labels ("distillation" into the shared space).

YAMNet was trained on 521 named AudioSet classes. Its clip-level probabilities on the training clips give
pseudo-labels for hundreds of named classes, so the projections learn how audio relates to label text from
far more classes than a small dataset's seen classes. Without them, a few dozen seen classes leave the
bilinear map between a 1024-d audio space and a 384-d text space badly under-determined.

Held-out classes must stay unheard: an auxiliary class whose label embedding is close (cosine >=
``exclude_similarity``) to ANY class of the dataset is dropped, so neither an unseen class nor a near
synonym of it (e.g. "Bark" for "Dog" when close enough) is trained through the back door; the dataset's own
labels stay the only source for its classes. The threshold is reported with the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._errors import ParameterError
from .._math import sigmoid

__all__ = ["AuxLabels", "yamnet_aux_labels", "yamnet_own_scores"]


@dataclass
class AuxLabels:
    """Auxiliary classes with their label embeddings and per-clip pseudo-labels.

    Attributes
    ----------
    names : list of str
        ``K`` auxiliary class names.
    embeddings : np.ndarray [K, Ds]
    targets : np.ndarray [N, K] bool
        Pseudo-labels, rows aligned with the dataset's clips.
    excluded : list of str
        Auxiliary classes dropped as too close to a class of the dataset.
    probabilities : np.ndarray [N, K]
        YAMNet's clip-level probability of every kept auxiliary class (its most confident segment).
    """

    names: list[str]
    embeddings: np.ndarray
    targets: np.ndarray
    excluded: list[str]
    probabilities: np.ndarray | None = None

    def semantic_scores(self, class_embeddings: np.ndarray, rows: np.ndarray, *, top_k: int = 5) -> np.ndarray:
        """Training-free semantic transfer: ``[len(rows), C]`` scores of the classes of ``class_embeddings``.

        A class is scored by YAMNet's probabilities of its ``top_k`` most similar auxiliary classes, weighted
        by their label-embedding cosine similarity (negative similarities count zero).
        """
        if self.probabilities is None:
            raise ParameterError("these auxiliary labels carry no probabilities")
        sim = np.asarray(class_embeddings, dtype=np.float32) @ self.embeddings.T  # [C, K]
        k = min(top_k, sim.shape[1])
        kth = np.sort(sim, axis=1)[:, -k][:, None]
        weights = np.where(sim >= kth, np.maximum(sim, 0.0), 0.0)
        return self.probabilities[rows].astype(np.float32) @ weights.T


def yamnet_own_scores(logits_store, keys: Sequence[str], classes: Sequence[str], yamnet_names: Sequence[str], *,
                      column: slice = slice(None), missing: float | None = None) -> np.ndarray:
    """YAMNet's own score for each class that is one of its classes: ``[len(keys), C]``, the logit of its most
    confident segment (the reference for labels that are AudioSet names).

    ``column`` selects the logits in the store's vectors (``slice(1024, None)`` for a ``yamnet+logits`` store); a
    class YAMNet lacks scores ``missing``, or is a :class:`ParameterError` when ``missing`` is None.
    """
    lacking = [c for c in classes if c not in yamnet_names]
    if lacking and missing is None:
        raise ParameterError(f"{len(lacking)} class(es) are not YAMNet classes, e.g. {lacking[0]!r}")
    x, mask = logits_store.batch(logits_store.index_of(list(keys)))
    top = np.where(mask[..., None], x[..., column], -np.inf).max(axis=1)
    return np.stack([top[:, yamnet_names.index(c)] if c in yamnet_names else np.full(len(top), missing)
                     for c in classes], axis=1)


def yamnet_aux_labels(
    filenames: Sequence[str],
    logits_store,
    class_names: Sequence[str],
    class_embeddings: np.ndarray,
    encoder,
    *,
    yamnet_names: Sequence[str],
    threshold: float = 0.5,
    exclude_similarity: float = 0.8,
) -> AuxLabels:
    """Pseudo-labels from YAMNet logits (``max_t sigmoid(logit) >= threshold``) for the clips ``filenames``.

    Parameters
    ----------
    filenames : sequence of str
        Clip keys, in dataset order.
    logits_store : EmbeddingStore
        A ``yamnet-logits`` store of those clips (``zsa embed --embedder yamnet-logits``).
    class_names, class_embeddings : the dataset's classes and their label embeddings ``[C, Ds]``.
    encoder : LabelEncoder
        Embeds the 521 YAMNet class names (the same encoder as ``class_embeddings``).
    yamnet_names : sequence of str
        The 521 class names in logit order.
    """
    if logits_store.meta.embedder != "yamnet-logits":
        raise ParameterError(f"store {logits_store.path} holds {logits_store.meta.embedder!r} embeddings, "
                             "distillation needs a yamnet-logits store")
    if len(yamnet_names) != logits_store.meta.dim:
        raise ParameterError(f"{len(yamnet_names)} YAMNet class names for {logits_store.meta.dim} logits")
    aux_emb = encoder.encode(list(yamnet_names))
    sim = aux_emb @ np.asarray(class_embeddings, dtype=np.float32).T  # [K, C]
    keep = (sim.max(axis=1) < exclude_similarity) & ~np.isin(np.asarray(yamnet_names), np.asarray(class_names))
    rows = logits_store.index_of(list(filenames))
    probs = np.zeros((len(rows), int(keep.sum())), dtype=np.float16)
    for start in range(0, len(rows), 512):
        x, mask = logits_store.batch(rows[start : start + 512])
        x = np.where(mask[..., None], x, -np.inf)
        top = np.clip(x.max(axis=1), -60.0, 60.0)  # clip level: the most confident segment
        probs[start : start + 512] = sigmoid(top, np.float32)[:, keep]
    names = [n for n, k in zip(yamnet_names, keep) if k]
    excluded = [n for n, k in zip(yamnet_names, keep) if not k]
    return AuxLabels(names=names, embeddings=aux_emb[keep], targets=probs >= threshold, excluded=excluded,
                     probabilities=probs)

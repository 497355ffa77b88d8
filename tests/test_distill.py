"""Auxiliary labels from YAMNet's class scores: exclusion of held-out classes, pseudo-labels, semantic transfer."""

import numpy as np
import pytest

from zeroshot_audio import ParameterError, StoreMeta
from zeroshot_audio.data.memstore import MemoryStore
from zeroshot_audio.text import HashingLabelEncoder
from zeroshot_audio.train.distill import yamnet_aux_labels


def _store(logits, embedder="yamnet-logits"):
    meta = StoreMeta(embedder=embedder, embedder_version="1", dim=logits.shape[2], hop=0.96)
    return MemoryStore([f"c{i}" for i in range(len(logits))], logits, meta=meta)


def test_pseudo_labels_exclusion_and_semantic_scores():
    enc = HashingLabelEncoder(dim=64)
    yam = ["Dog", "Bark", "Car horn", "Rain", "Church bell"]
    classes = ["Dog", "Thunder"]
    logits = np.full((4, 3, 5), -8.0, dtype=np.float32)
    logits[0, 1, 1] = 4.0  # clip 0: one segment sure of "Bark"
    logits[1, :, 2] = 0.5  # clip 1: "Car horn" at p = 0.62 everywhere
    logits[2, 2, 3] = -0.5  # clip 2: "Rain" at p = 0.38
    aux = yamnet_aux_labels([f"c{i}" for i in range(4)], _store(logits), classes, enc.encode(classes), enc,
                            yamnet_names=yam, threshold=0.5, exclude_similarity=0.8)
    # "Dog" is a class of the dataset: never an auxiliary class; the others are lexically unrelated
    assert "Dog" in aux.excluded and aux.names == ["Bark", "Car horn", "Rain", "Church bell"]
    np.testing.assert_array_equal(aux.targets, [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert aux.probabilities[2, 2] == pytest.approx(1 / (1 + np.exp(0.5)), abs=1e-3)
    # semantic transfer scores a label through its most similar auxiliary classes
    q = enc.encode(["rain storm", "church bell ringing"])
    s = aux.semantic_scores(q, np.arange(4), top_k=1)
    assert s.shape == (4, 2) and s[2, 0] > 0 and s[2, 0] > s[0, 0] and s[:, 1].max() < 1e-3


def test_a_near_synonym_of_a_class_is_excluded():
    enc = HashingLabelEncoder(dim=64)
    classes = ["dog barking"]
    aux = yamnet_aux_labels(["c0"], _store(np.zeros((1, 2, 2), np.float32)), classes, enc.encode(classes), enc,
                            yamnet_names=["barking dog", "cat"], exclude_similarity=0.8)
    assert aux.excluded == ["barking dog"] and aux.names == ["cat"]


def test_needs_a_logits_store():
    enc = HashingLabelEncoder(dim=8)
    with pytest.raises(ParameterError, match="yamnet-logits"):
        yamnet_aux_labels(["c0"], _store(np.zeros((1, 2, 2), np.float32), embedder="yamnet"), ["a"],
                          enc.encode(["a"]), enc, yamnet_names=["x", "y"])

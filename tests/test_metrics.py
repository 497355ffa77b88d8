import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from zeroshot_audio import ParameterError
from zeroshot_audio.evaluation.metrics import average_precision, evaluate_scores, f1_at_k, mean_average_precision


def test_average_precision_matches_sklearn_with_ties(rng):
    for _ in range(20):
        n = int(rng.integers(5, 200))
        y = rng.random(n) < rng.uniform(0.05, 0.6)
        if not y.any():
            y[0] = True
        scores = np.round(rng.standard_normal(n), 1)  # rounding makes many ties
        assert average_precision(y, scores) == pytest.approx(average_precision_score(y, scores), abs=1e-12)


def test_constant_scores_give_the_prevalence():
    y = np.array([1, 0, 0, 1, 0, 0, 0, 0], dtype=bool)
    assert average_precision(y, np.full(8, 0.3)) == pytest.approx(0.25)


def test_classes_without_positives_are_excluded_not_zero():
    y = np.array([[1, 0, 0], [0, 0, 1], [1, 0, 0]], dtype=bool)
    s = np.array([[0.9, 0.1, 0.2], [0.1, 0.5, 0.8], [0.8, 0.3, 0.1]])
    value, per_class = mean_average_precision(y, s)
    assert np.isnan(per_class[1])
    assert value == pytest.approx(1.0)
    out = evaluate_scores(y, s, ["a", "b", "c"])
    assert out["per_class"] == {"a": 1.0, "b": None, "c": 1.0}
    assert out["n_classes_without_positives"] == 1 and out["n_clips"] == 3


def test_f1_at_k_hand_computed():
    y = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=bool)
    s = np.array([[0.9, 0.8, 0.1, 0.0], [0.9, 0.8, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]])
    # top-1: clip0 -> 0 (TP), clip1 -> 0 (FP), clip2 -> 3 (FP): P = 1/3, R = 1/3
    assert f1_at_k(y, s, 1) == pytest.approx(1 / 3)
    # top-3: TP = 2 (clip0: 0,2) + 1 (clip1: 1) = 3, P = 3/9, R = 3/3 -> F1 = 0.5
    assert f1_at_k(y, s, 3) == pytest.approx(0.5)
    # k larger than the class count predicts every class once
    assert f1_at_k(y, s, 10) == f1_at_k(y, s, 4)


def test_bad_shapes_and_values():
    with pytest.raises(ParameterError, match=r"\(3, 2\) and \(3, 3\)"):
        mean_average_precision(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ParameterError, match="NaN"):
        f1_at_k(np.zeros((2, 2)), np.array([[0.0, np.nan], [0.0, 1.0]]), 1)

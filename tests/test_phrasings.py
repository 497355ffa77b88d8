"""Per-phrasing evaluation (``zeroshot_audio.evaluation.phrasings``) and top-k accuracy, on planted scores."""

from __future__ import annotations

import numpy as np
import pytest

from zeroshot_audio._errors import DataError
from zeroshot_audio.evaluation.metrics import average_precision, top_k_accuracy
from zeroshot_audio.evaluation.phrasings import evaluate_phrasings, phrasing_variants, read_phrasings

CLASSES = ["Dog", "Cat", "Bell", "Rain"]


def test_top_k_accuracy_by_hand():
    y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [0, 0, 0]], dtype=bool)
    s = np.array([[0.9, 0.5, 0.1],  # right first
                  [0.9, 0.5, 0.1],  # right second
                  [0.9, 0.5, 0.1],  # right third
                  [0.2, 0.9, 0.5],  # one of two labels second
                  [0.9, 0.5, 0.1]])  # no label: not counted
    assert top_k_accuracy(y, s, 1) == pytest.approx(1 / 4)
    assert top_k_accuracy(y, s, 2) == pytest.approx(3 / 4)
    assert top_k_accuracy(y, s, 3) == pytest.approx(1.0)
    assert top_k_accuracy(y, s, 10) == pytest.approx(1.0)
    assert np.isnan(top_k_accuracy(y[4:], s[4:], 1))


def write_table(tmp_path, body: str):
    p = tmp_path / "phrasings.csv"
    p.write_text("label,phrasing,kind\n" + body, encoding="utf-8")
    return p


def test_read_phrasings_and_variants(tmp_path):
    table = read_phrasings(write_table(tmp_path, "# comment\nDog,a dog barking,free\nDog,woof,free\n"
                                                 "Dog,dog,short\nCat,\"a cat, meowing\",free\n"))
    assert table == {"Dog": {"free": ["a dog barking", "woof"], "short": ["dog"]}, "Cat": {"free": ["a cat, meowing"]}}
    variants, missing = phrasing_variants(["Dog", "Cat", "Bell"], table, "free")
    # two variants (Dog has two free phrasings); Cat cycles through its one; Bell has none: its name
    assert variants == [["a dog barking", "a cat, meowing", "Bell"], ["woof", "a cat, meowing", "Bell"]]
    assert missing == 1
    assert phrasing_variants(["Dog", "Cat"], table, "name") == ([["Dog", "Cat"]], 2)


@pytest.mark.parametrize("body, match", [
    ("Dog,dog,loose\n", r"phrasings\.csv:2: kind must be one of name, free, short, got 'loose'"),
    ("Dog,,free\n", r"phrasings\.csv:2: label and phrasing must not be empty"),
    ("Dog,a,dog,free\n", r"phrasings\.csv:2: expected 3 columns, got 4"),
])
def test_read_phrasings_errors_name_the_line(tmp_path, body, match):
    with pytest.raises(DataError, match=match):
        read_phrasings(write_table(tmp_path, body))
    bad = tmp_path / "bad.csv"
    bad.write_text("label,text,kind\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.csv:1: header must be label,phrasing,kind"):
        read_phrasings(bad)


def test_evaluate_phrasings_on_a_planted_scorer():
    """A scorer that knows the audio: a text that names a class (its name or its "good" phrasing) scores that
    class's clips high; any other text (the "bad" phrasing) scores noise. Each kind's figures must be those of
    its variants, computed here directly."""
    rng = np.random.default_rng(0)
    n = 80
    truth = rng.integers(0, len(CLASSES), size=n)
    y = np.zeros((n, len(CLASSES)), dtype=bool)
    y[np.arange(n), truth] = True
    y[:, 3] = False  # Rain has no clip: in top-k as a distractor, out of the mAP
    y[truth == 3, 0] = True  # ...those clips are dogs
    noise = rng.normal(0, 1, size=(n, len(CLASSES)))
    meaning = {c: i for i, c in enumerate(CLASSES)} | {f"good {c}": i for i, c in enumerate(CLASSES)}
    calls = []

    def score_texts(texts):
        calls.append(list(texts))
        s = noise.copy()
        for j, t in enumerate(texts):
            if t in meaning:
                s[:, j] += 3.0 * y[:, meaning[t]]
        return s

    table = {c: {"free": [f"good {c}", f"bad {c}"], "short": [f"good {c}"]} for c in CLASSES}
    table["Bell"]["short"] = []  # Bell has no short phrasing: worded by its name
    res = evaluate_phrasings(y, score_texts, CLASSES, table)
    # free has two phrasings per class: also scored as one ensemble label per class, "good X|bad X"
    assert list(res) == ["name", "free", "free+ensemble", "short"]
    assert [r["variants"] for r in res.values()] == [1, 2, 1, 1]
    assert res["short"]["n_classes_by_name"] == 1 and res["free"]["n_classes_by_name"] == 0
    assert all(r["n_classes_map"] == 3 for r in res.values())
    assert all(res[k]["n_clips_with_labels"] == n for k in ("name", "free", "short"))
    ensemble = [f"good {c}|bad {c}" for c in CLASSES]
    assert res["free+ensemble"]["per_variant"][0]["texts"] == ensemble and ensemble in calls

    def direct(texts):
        s = score_texts(texts)
        keep = y.sum(axis=0) >= 2
        return (np.mean([average_precision(y[:, c], s[:, c]) for c in np.flatnonzero(keep)]),
                top_k_accuracy(y, s, 1), top_k_accuracy(y, s, 3))

    name = direct(CLASSES)
    good = direct([f"good {c}" for c in CLASSES])
    bad = direct([f"bad {c}" for c in CLASSES])
    assert name == pytest.approx(good)  # the good phrasing carries the same meaning as the name
    assert name[0] > bad[0] + 0.3 and name[1] > bad[1] + 0.3  # the bad one is noise
    for key, i in (("map", 0), ("top1", 1), ("top3", 2)):
        assert res["name"][key] == pytest.approx(name[i])
        assert res["free"][key] == pytest.approx((good[i] + bad[i]) / 2)  # the mean over the two variants
        assert res["short"][key] == pytest.approx(name[i])  # good phrasings and one name
    assert res["free"]["per_variant"][1]["texts"] == [f"bad {c}" for c in CLASSES]
    ens = direct(ensemble)
    assert [res["free+ensemble"][k] for k in ("map", "top1", "top3")] == pytest.approx(list(ens))
    assert list(evaluate_phrasings(y, score_texts, CLASSES, table, ensemble=False)) == ["name", "free", "short"]
    assert top_k_accuracy(y, score_texts(CLASSES), 3) >= top_k_accuracy(y, score_texts(CLASSES), 1)

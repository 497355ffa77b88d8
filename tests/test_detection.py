"""Event detection metrics, checked against sed_scores_eval's own computation."""

import pytest

from zeroshot_audio.evaluation.detection import evaluate_detection
from zeroshot_audio.events import frame_timestamps


def test_metrics_equal_sed_scores_eval_and_reward_localisation(rng):
    from sed_scores_eval import segment_based
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    classes = ["dog", "cat", "bird"]
    scores, stamps, gt, dur = {}, {}, {}, {}
    for i in range(30):
        t = 10
        s = 0.3 * rng.random((t, 3))
        onset = int(rng.integers(0, 8))
        s[onset : onset + 2, 0] += 0.6  # the dog is found where it barks
        gt[f"c{i}"] = [(onset * 0.96, (onset + 2) * 0.96, "dog")]
        if i % 3 == 0:
            gt[f"c{i}"].append((1.0, 2.5, "cat"))  # the cat is not found
        scores[f"c{i}"], stamps[f"c{i}"], dur[f"c{i}"] = s, frame_timestamps(t, 0.96, 10.0), 10.0
    out = evaluate_detection(scores, stamps, classes, gt, dur)
    assert out["n_classes_with_events"] == 2 and "bird" not in out["per_class"]
    assert out["per_class"]["dog"]["auroc"] > 0.95 > 0.75 > out["per_class"]["cat"]["auroc"]
    frames = {k: create_score_dataframe(v[:, :2], stamps[k], classes[:2]) for k, v in scores.items()}
    ap, _ = segment_based.average_precision(frames, gt, dur, segment_length=1.0)
    assert out["per_class"]["dog"]["ap"] == pytest.approx(ap["dog"])
    assert out["segment_ap"] == pytest.approx((ap["dog"] + ap["cat"]) / 2)

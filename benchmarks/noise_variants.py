"""Can the model's evidence be explained away by YAMNet's noise classes? An experiment, not a shipped option.

Prints, for the shipped model and for two ways of letting YAMNet's noise classes (Hum, Noise, Environmental
noise, Static, Mains hum, White noise, Pink noise) explain a segment instead of the label, what they do to
debian-eval's recordings (mAP and top-1 with AudioSet-style names and with the free phrasings averaged) and to
the two noise files of ``quality_targets.py`` (events and best label):

- ``fade``: the label's non-noise evidence ``q`` is multiplied by ``(1 - n)^g``, ``n`` the summed noise-class
  probability of the segment;
- ``compete``: ``q * q / (q + n)``, ``n`` the largest noise-class probability.

A label whose own anchor classes are noise classes keeps that part of its evidence. Run (about 2 min)::

    python benchmarks/noise_variants.py [--eval ~/zsa-eval]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibration_datasets import recording_probabilities, recordings_set  # noqa: E402
from quality_targets import NOISE_LABELS, noise_clips  # noqa: E402

NOISE = ("Hum", "Noise", "Environmental noise", "Static", "Mains hum", "White noise", "Pink noise")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eval", default=str(Path.home() / "zsa-eval"))
    args = ap.parse_args()
    from zeroshot_audio import load_model
    from zeroshot_audio import model as model_module
    from zeroshot_audio._math import sigmoid
    from zeroshot_audio.evaluation.phrasings import scoring_metrics

    tagger = load_model("default")
    names = list(tagger.embedder.class_names)
    noise = [names.index(n) for n in NOISE]
    shipped = model_module.NumpyModel.anchor_scores
    variant = {"name": "shipped"}

    def anchor_scores(self, logits, weights):
        if variant["name"] == "shipped":
            return shipped(self, logits, weights)
        lead = logits.shape[:-1]
        prob = sigmoid(logits.reshape(-1, logits.shape[-1])).astype(np.float32)
        q = prob @ weights.T
        own = prob[:, noise] @ weights[:, noise].T
        other = q - own
        if variant["name"] == "fade":
            n = np.clip(prob[:, noise].sum(axis=1, keepdims=True), 0, 1)
            q = own + other * (1 - n) ** 3
        else:
            n = prob[:, noise].max(axis=1, keepdims=True)
            q = own + other * other / np.maximum(other + n, 1e-9)
        sem = np.clip(q, np.float32(1e-6), np.float32(1 - 1e-6))
        out = self.params["anchor_scale"][0] * (np.log(sem) - np.log1p(-sem)) + self.params["anchor_bias"][0]
        return out.reshape(*lead, weights.shape[0]).astype(np.float32)

    model_module.NumpyModel.anchor_scores = anchor_scores

    _, _, xs, y, classes, table = recordings_set(Path(args.eval))
    free = ["|".join(table.get(c, {}).get("free", [c])) for c in classes]

    sr = 16000
    _, pink, loud = noise_clips(sr)
    labels = NOISE_LABELS

    print("| variant | names mAP | names top-1 | free mAP | free top-1 | pink noise 45 min | white noise 1 min |")
    print("|---|---|---|---|---|---|---|")
    for name in ("shipped", "fade", "compete"):
        variant["name"] = name
        m_names = scoring_metrics(y, recording_probabilities(tagger, xs, classes))
        m_free = scoring_metrics(y, recording_probabilities(tagger, xs, free))
        cells = []
        for wav in (pink, loud):
            res = tagger.tag(wav, labels=labels, sample_rate=sr)
            top = res.labels[0]
            cells.append(f"{sum(len(r.events) for r in res.labels)} events, {top.label} {100 * top.probability:.0f} %")
        print(f"| {name} | {m_names['map']:.3f} | {m_names['top1']:.3f} | {m_free['map']:.3f} | {m_free['top1']:.3f} "
              f"| {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()

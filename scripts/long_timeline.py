"""One long recording a person can read: docs/figures/long_timeline.png.

    python scripts/long_timeline.py [--data ~/zsa-eval/recordings] [--out docs/figures/long_timeline.png]

Builds a 5-6 minute recording from debian-eval recordings (`zsa corpus build debian-eval --out ~/zsa-eval`): up to
four recordings each of five classes, in a shuffled order, separated by 8-30 s of silence, over a quiet white
noise bed (-50 dBFS); tags it with the shipped default model and eight free phrasings (five of the classes
placed, three absent) and draws one lane per label: the per-segment probability, the event threshold, the
detected events and the true events (the recordings' strong labels, shifted to where they were placed).
Prints, per label, the true and detected events and the share of true time inside a detected event.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

#: class -> the free phrasing it is tagged with
PRESENT = {"Bark": "a dog barking", "Thunder": "thunder rumbling", "Piano": "someone playing the piano",
           "Applause": "an audience clapping", "Owl": "an owl hooting"}
ABSENT = ["church bells ringing", "rain falling", "a car horn"]
SR = 16000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path.home() / "zsa-eval" / "recordings"))
    ap.add_argument("--out", default=str(Path(__file__).parents[1] / "docs" / "figures" / "long_timeline.png"))
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()

    from zeroshot_audio import load_model
    from zeroshot_audio.audio import load_audio
    from zeroshot_audio.events import frame_timestamps
    from zeroshot_audio.plots import plot_timeline

    data = Path(args.data)
    rng = np.random.default_rng(args.seed)
    with open(data / "clips.csv", newline="", encoding="utf-8") as f:
        clips = [(r["filename"], r["labels"]) for r in csv.DictReader(f)]
    with open(data / "events.tsv", newline="", encoding="utf-8") as f:
        events: dict[str, list[tuple[float, float, str]]] = {}
        for r in csv.DictReader(f, delimiter="\t"):
            events.setdefault(r["filename"], []).append((float(r["onset"]), float(r["offset"]), r["event_label"]))
    chosen = []
    for cls in PRESENT:
        files = [fn for fn, lab in clips if lab == cls]
        chosen += [(fn, cls) for fn in rng.permutation(files)[:4]]
    order = rng.permutation(len(chosen))
    pieces, truth, t = [], [], 0.0
    for i in order:
        fn, cls = chosen[i]
        gap = float(rng.uniform(8, 30))
        pieces.append(np.zeros(int(gap * SR), np.float32))
        t += gap
        wav = load_audio(data / fn, sample_rate=SR)[: 20 * SR]  # at most 20 s of a long loop
        wav = (0.3 * wav / max(float(np.abs(wav).max()), 1e-6)).astype(np.float32)
        for a, b, _ in events.get(fn, [(0.0, len(wav) / SR, cls)]):
            if a < len(wav) / SR:
                truth.append((t + a, t + min(b, len(wav) / SR), PRESENT[cls]))
        pieces.append(wav)
        t += len(wav) / SR
    pieces.append(np.zeros(int(10 * SR), np.float32))
    audio = np.concatenate(pieces)
    audio += (10 ** (-50 / 20) * rng.standard_normal(audio.size)).astype(np.float32)

    labels = [*PRESENT.values(), *ABSENT]
    tagger = load_model("default")
    res = tagger.tag(audio, labels=labels, sample_rate=SR)
    by = {r.label: r for r in res.labels}
    stamps = frame_timestamps(len(res.segment_times), tagger.embedder.hop, res.duration)
    print(f"{res.duration / 60:.1f} min, {len(truth)} true events of {len(PRESENT)} classes; labels: {labels}")
    for lab in labels:
        r = by[lab]
        true = [(a, b) for a, b, x in truth if x == lab]
        inside = sum(max(0.0, min(b, e_b) - max(a, e_a)) for a, b in true for e_a, e_b, _ in r.events)
        total = sum(b - a for a, b in true)
        print(f"  {lab:28s} probability {r.probability:5.1%}  true events {len(true)}  detected {len(r.events)}"
              + (f"  true time inside detected events {inside / total:.0%}" if total else ""))
    plot_timeline(args.out, timestamps=stamps, probability=np.stack([by[lab].detection for lab in labels], axis=1),
                  labels=labels, events=[(a, b, lab) for lab in labels for a, b, _ in by[lab].events], truth=truth,
                  clip_probability=np.array([by[lab].probability for lab in labels]), waveform=audio, width=14,
                  title=f"{res.duration / 60:.1f} min of debian-eval recordings with silent gaps and a -50 dBFS "
                        "noise bed: 5 labels placed, 3 absent")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

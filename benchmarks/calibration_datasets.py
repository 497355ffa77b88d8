"""Are the default model's probabilities usable as decisions on datasets it was not calibrated on?

    python benchmarks/calibration_datasets.py [--corpus ~/zsa-corpus] [--eval ~/zsa-eval] [--plot FIG.png]

Per dataset and wording, over every clip x label pair, with the probabilities ``zsa tag`` reports (the shipped
model's calibration of its best 10 s window): F1 of the decision ``probability >= 0.5`` next to the F1 at the best
threshold (the target: within 0.05), precision and recall at 0.5, and the expected calibration error (10 equal
bins). The calibration was fitted on the corpus's test clips with AudioSet names (their figure here is in-sample;
the model card gives the cross-validated one); debian-eval (recordings and scenes) never took part. ``--plot``
draws the reliability diagrams, one panel per dataset.

Needs the corpus embedded at hop 0.96 s with `yamnet` and `yamnet-logits`, and debian-eval built with its
recordings (and, when present, scenes and scenes-clean) embedded with `yamnet+logits` (or the `yamnet` and
`yamnet-logits` stores side by side, as `zsa benchmark --distill` leaves them).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np


def recording_probabilities(tagger, xs: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """``[N, L]`` probabilities as ``zsa tag`` gives them: the calibrated clip score of each recording's best
    10 s window (:meth:`~zeroshot_audio.tagging.Tagger.recording_scores`)."""
    return tagger.probability(tagger.recording_scores(xs, tagger.label_embeddings(labels)))


def corpus_test_set(corpus: Path) -> tuple[list[np.ndarray], np.ndarray, list[str], dict[str, str]]:
    """The corpus's test scenes as the default model reads them: per scene its YAMNet embeddings and logits side
    by side ``[T, 1024 + 521]``, the labels ``[N, C]``, the class names and their paraphrases
    (``scripts/paraphrases.csv``, label -> paraphrase)."""
    from zeroshot_audio.data import open_store, read_dataset
    from zeroshot_audio.train.recipes import dataset_clips

    ds = read_dataset(corpus)
    store = open_store(corpus / "stores" / "yamnet-hop0.96")
    logits = open_store(corpus / "stores" / "yamnet-logits-hop0.96")
    classes = list(ds.classes)
    clips = dataset_clips(ds, store, classes=classes, seed=0)
    test = clips.ids("test")
    xs = [np.concatenate([store.get(ds.filenames[i]), logits.get(ds.filenames[i])], axis=1) for i in test]
    with open(Path(__file__).parents[1] / "scripts" / "paraphrases.csv", newline="", encoding="utf-8") as f:
        para = {r["label"]: r["paraphrase"] for r in csv.DictReader(f)}
    return xs, clips.labels[test], classes, para


def recordings_set(eval_root: Path):
    """debian-eval's recordings as the default model reads them: ``(dataset, store, xs, y, classes, phrasings)``,
    ``xs`` the stored YAMNet embeddings and logits ``[T, 1024 + 521]`` per recording, ``y [N, C]`` its labels and
    ``phrasings`` the table of ``phrasings.csv`` (:func:`zeroshot_audio.evaluation.phrasings.read_phrasings`)."""
    from zeroshot_audio.data import open_store, read_dataset
    from zeroshot_audio.evaluation.phrasings import read_phrasings

    root = Path(eval_root) / "recordings"
    ds = read_dataset(root)
    store = open_store(root / "stores" / "yamnet+logits-hop0.96")
    classes = list(ds.classes)
    xs = [store.get(f) for f in ds.filenames]
    return ds, store, xs, ds.label_matrix(classes), classes, read_phrasings(Path(eval_root) / "phrasings.csv")


def _segments(store, row: int) -> np.ndarray:
    x, mask = store.batch([row])
    return x[0, : int(mask[0].sum())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(Path.home() / "zsa-corpus"))
    ap.add_argument("--eval", default=str(Path.home() / "zsa-eval"))
    ap.add_argument("--plot", default=None, help="write the reliability diagrams to this PNG")
    args = ap.parse_args()
    from zeroshot_audio import load_model
    from zeroshot_audio.data import open_store, read_dataset
    from zeroshot_audio.evaluation.calibration_report import decision_report
    from zeroshot_audio.evaluation.phrasings import read_phrasings

    tagger = load_model("default")
    runs: list[tuple[str, str, np.ndarray, np.ndarray]] = []  # dataset, wording, prob, y

    xs, y, classes, para = corpus_test_set(Path(args.corpus))
    runs.append(("corpus test scenes (in-sample)", "names", recording_probabilities(tagger, xs, classes), y))
    runs.append(("corpus test scenes (in-sample)", "paraphrases",
                 recording_probabilities(tagger, xs, [para.get(c, c) for c in classes]), y))

    ev = Path(args.eval)
    table = read_phrasings(ev / "phrasings.csv")
    from zeroshot_audio.data.joined import JoinedStore

    for part in ("recordings", "scenes", "scenes-clean"):
        stores = ev / part / "stores"
        if (stores / "yamnet+logits-hop0.96").is_dir():
            st = open_store(stores / "yamnet+logits-hop0.96")
        elif (stores / "yamnet-hop0.96").is_dir() and (stores / "yamnet-logits-hop0.96").is_dir():
            st = JoinedStore(open_store(stores / "yamnet-hop0.96"), open_store(stores / "yamnet-logits-hop0.96"))
        else:
            print(f"(skipped debian-eval {part}: no yamnet+logits store, nor yamnet and yamnet-logits, in {stores})")
            continue
        ds = read_dataset(ev / part)
        classes = list(ds.classes)
        rows = st.index_of(list(ds.filenames))
        keep = [i for i, r in enumerate(rows) if st.counts[r] > 0]
        xs = [_segments(st, rows[i]) for i in keep]
        y = ds.label_matrix(classes)[keep]
        runs.append((f"debian-eval {part}", "names", recording_probabilities(tagger, xs, classes), y))
        free = ["|".join(table.get(c, {}).get("free", [c])) for c in classes]
        runs.append((f"debian-eval {part}", "free phrasings (3 per label, averaged)",
                     recording_probabilities(tagger, xs, free), y))

    results = []
    print(f"{'dataset':34s} {'wording':40s} {'F1@0.5':>7s} {'F1best':>7s} {'gap':>6s} {'P@0.5':>6s} {'R@0.5':>6s} "
          f"{'ECE':>6s} {'pairs':>7s}")
    for name, wording, prob, y in runs:
        r = decision_report(prob, y)
        results.append({"dataset": name, "wording": wording, **r})
        p, rc = r["precision_at_0.5"], r["recall_at_0.5"]
        print(f"{name:34s} {wording:40s} {r['f1_at_0.5']:7.3f} {r['f1_best']:7.3f} "
              f"{r['f1_best'] - r['f1_at_0.5']:6.3f} {p if p is not None else float('nan'):6.2f} "
              f"{rc if rc is not None else float('nan'):6.2f} {r['ece']:6.3f} {r['n_pairs']:7d}")
    print(json.dumps([{k: v for k, v in r.items() if k != "bins"} for r in results]))
    if args.plot:
        plot(results, args.plot)


def plot(results: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in results if r["wording"] == "names" or r["dataset"] == "debian-eval recordings"]
    cols = 3
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.4 * rows), sharey=True, squeeze=False)
    for ax in axes.ravel()[len(shown) :]:
        ax.axis("off")
    for ax, r in zip(axes.ravel(), shown):
        bins = [b for b in r["bins"] if b["n"]]
        mid = [(b["lo"] + b["hi"]) / 2 for b in bins]
        ax.bar(mid, [b["frequency"] for b in bins], width=0.09, color="#4c78a8", alpha=0.8, label="observed")
        ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
        ax.plot([b["probability"] for b in bins], [b["frequency"] for b in bins], "o-", color="#e45756", ms=3,
                label="reliability curve")
        ax.axvline(0.5, color="black", lw=0.6)
        for m, b in zip(mid, bins):
            ax.text(m, 0.02, str(b["n"]), ha="center", fontsize=6, rotation=90, color="white")
        ax.set_title(f"{r['dataset']}\n{r['wording'].split(' (')[0]}: ECE {r['ece']:.3f}", fontsize=8)
        ax.set_xlabel("predicted probability", fontsize=8)
        ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("fraction present", fontsize=8)
    axes[0, 0].legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

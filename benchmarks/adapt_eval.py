"""Few-shot adaptation (``zsa adapt``) measured on debian-eval's recordings, and what it leaves untouched.

    python benchmarks/adapt_eval.py [--eval ~/zsa-eval] [--corpus ~/zsa-corpus] [--draws 5]
                                    [--split all|selection|report]

``--split`` (``examples_eval.eval_split``): ``selection`` uses only debian-eval's selection recordings (families whose
sources made corpus train/val scenes), for examples and test; ``report`` scores only the report recordings (the other
families), with examples drawn first from a label's selection families (whole families), and adapts the labels that
keep a report family for test. ``all`` (default) is the protocol below.

Per seeded draw, each debian-eval label with recordings of at least two families is adapted on ``--shots``
example recordings drawn from some of its families (whole families, so that no take of a test recording's source
is an example); the recordings of its other families are its test clips. The adapted model is the default model
plus :func:`zeroshot_audio.train.adapt.fit_adaptation` (what ``zsa adapt`` runs), with the other labels'
examples as negatives and, with ``--generic N``, N corpus training scenes whose classes are not within label
cosine 0.7 of the label. On the recordings that are no label's example, scored for all 92 labels as ``zsa tag``
scores them (best 10 s window, calibrated probability):

- adapted labels: mAP (labels with >= 1 test recording) and top-1 over all labels of their test recordings,
  before and after; F1 at probability 0.5 and at the best threshold of the adapted labels' (recording, label)
  pairs (does 0.5 stay a sound decision?);
- not adapted (debian-eval labels without two families): mAP before and after (equal by construction: their
  columns of the forward are never touched) and top-1 of their recordings (which can move: an adapted label may
  now outscore the right one);
- the corpus's test scenes (``--corpus``), its 71 classes by name: mAP before and after, over the classes whose
  text is not an adapted label's (equal by construction) and over those that are (the adaptation transferred
  from debian-eval recordings to the corpus's scenes);
- the time of the fit.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def _split(families: dict[str, list[int]], shots: int, rng: np.random.Generator,
           last: set[str] | None = None) -> tuple[list[int], list[int]]:
    """Example rows (``shots`` at most, from whole families, leaving one family or more for test) and test rows;
    the families in ``last`` are the last to give examples."""
    fams = list(families)
    rng.shuffle(fams)
    if last:
        fams = [f for f in fams if f not in last] + [f for f in fams if f in last]
    examples: list[int] = []
    used = 0
    for f in fams[:-1]:
        if len(examples) >= shots:
            break
        rows = list(families[f])
        rng.shuffle(rows)
        examples += rows[: shots - len(examples)]
        used += 1
    test = [r for f in fams[used:] for r in families[f]]
    return examples, test


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eval", default=str(Path.home() / "zsa-eval"))
    ap.add_argument("--corpus", default=str(Path.home() / "zsa-corpus"))
    ap.add_argument("--skip-corpus-check", action="store_true", help="do not score the corpus's test scenes")
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--shots", type=int, default=3, help="examples per label (default: %(default)s)")
    ap.add_argument("--min-examples", type=int, default=3,
                    help="adapt only labels that get this many examples (default: %(default)s; 1 adapts every "
                         "label with two families, with 1 to --shots examples)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--strength", type=float, default=None)
    ap.add_argument("--features", default=None)
    ap.add_argument("--positive-share", type=float, default=None)
    ap.add_argument("--residual", default=None, help="full or direction (default: the library's)")
    ap.add_argument("--generic", type=int, default=0, help="corpus training scenes as generic negatives")
    ap.add_argument("--json", help="write the per-draw figures here")
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from examples_eval import add_split_option, eval_split

    add_split_option(ap)
    args = ap.parse_args()

    from zeroshot_audio import load_model
    from zeroshot_audio.data import open_store, read_dataset
    from zeroshot_audio.evaluation.calibration_report import decision_report
    from zeroshot_audio.evaluation.metrics import mean_average_precision, top_k_accuracy
    from zeroshot_audio.model import NumpyModel
    from zeroshot_audio.train import adapt as A

    steps = args.steps or A.DEFAULT_STEPS
    strength = A.DEFAULT_STRENGTH if args.strength is None else args.strength
    base = load_model("default")
    ev = Path(args.eval) / "recordings"
    ds = read_dataset(ev)
    st = open_store(ev / "stores" / "yamnet+logits-hop0.96")
    classes = list(ds.classes)
    part = eval_split(ev, args.split)
    keep = np.asarray([args.split != "selection" or f in part for f in ds.filenames])
    names = [f for f, k in zip(ds.filenames, keep) if k]
    y = ds.label_matrix(classes)[keep]
    xs = [st.get(f) for f in names]
    scored = np.asarray([args.split != "report" or f in part for f in names])
    fam = {r["filename"]: r["family"] for r in _rows(ev / "clips.csv")}
    emb = base.label_embeddings(classes)
    p_before = base.probability(base.recording_scores(xs, emb))

    corpus = None
    if not args.skip_corpus_check:
        from calibration_datasets import corpus_test_set

        cxs, cy, cclasses, _ = corpus_test_set(Path(args.corpus))
        cemb = base.label_embeddings(cclasses)
        corpus = (cxs, cy, cclasses, cemb, base.recording_scores(cxs, cemb))
    generic, generic_classes = [], []
    if args.generic:
        cds = read_dataset(Path(args.corpus))
        cst = open_store(Path(args.corpus) / "stores" / "yamnet-hop0.96")
        clg = open_store(Path(args.corpus) / "stores" / "yamnet-logits-hop0.96")
        train = [i for i, s in enumerate(cds.splits) if s == "train"]
        pick = np.random.default_rng(12345).choice(train, size=args.generic, replace=False)
        generic = [np.concatenate([cst.get(cds.filenames[i]), clg.get(cds.filenames[i])], axis=1) for i in pick]
        cmat = cds.label_matrix(list(cds.classes))[pick]
        generic_classes = [[c for c, on in zip(cds.classes, row) if on] for row in cmat]
        cls_emb = dict(zip(cds.classes, base.label_embeddings(list(cds.classes))))

    single = y.sum(axis=1) == 1
    by_label: dict[int, dict[str, list[int]]] = {}
    for i in np.flatnonzero(single):
        c = int(np.flatnonzero(y[i])[0])
        by_label.setdefault(c, {}).setdefault(fam[names[i]], []).append(int(i))
    report_fams = {fam[n] for n, s in zip(names, scored) if s} if args.split == "report" else set()
    eligible = [c for c, f in by_label.items() if len(f) >= 2 and (args.split != "report" or set(f) & report_fams)]

    rows = []
    for draw in range(args.draws):
        rng = np.random.default_rng(draw)
        ex_rows: dict[int, list[int]] = {}
        for c in sorted(eligible):
            e, _ = _split(by_label[c], args.shots, rng, report_fams)
            if len(e) >= args.min_examples:
                ex_rows[c] = e
        adapted = sorted(ex_rows)
        used = {r for e in ex_rows.values() for r in e}
        test = np.asarray([i for i in range(len(xs)) if i not in used and scored[i]])
        clips = [xs[r] for c in adapted for r in ex_rows[c]] + generic
        owner = [c for c in adapted for _ in ex_rows[c]] + [-1] * len(generic)
        positive = np.stack([np.asarray(owner) == c for c in adapted], axis=1)
        negative = ~positive
        if generic:
            aemb = emb[adapted]
            for j, cl in enumerate(generic_classes):
                near = [max((float(cls_emb[k] @ aemb[a]) for k in cl), default=0.0) >= 0.7
                        for a in range(len(adapted))]
                negative[len(clips) - len(generic) + j] = ~np.asarray(near)
        t0 = time.perf_counter()
        adaptation, _ = A.fit_adaptation(base.trained.model, [classes[c] for c in adapted], emb[adapted], clips,
                                         positive, negative, scale=base.scale, bias=base.bias,
                                         window=base.window_segments, steps=steps, strength=strength,
                                         features=args.features or A.DEFAULT_FEATURES,
                                         positive_share=args.positive_share or (
                                             A.POSITIVE_SHARE if generic else A.POSITIVE_SHARE_WITHOUT_NEGATIVES),
                                         residual=args.residual or A.DEFAULT_RESIDUAL)
        fit_s = time.perf_counter() - t0
        model = NumpyModel(base.trained.config, base.trained.model.params, adaptation=adaptation)
        tagger = _with_model(base, model)
        p_after = tagger.probability(tagger.recording_scores(xs, emb))
        yt, pb, pa = y[test], p_before[test], p_after[test]
        ad = np.zeros(len(classes), bool)
        ad[adapted] = True
        has = yt.sum(axis=0) >= 1
        other = ~ad & (yt.sum(axis=0) >= 2)
        ad_clip = yt[:, ad].any(axis=1)
        ot_clip = yt[:, ~ad].any(axis=1)
        r = {"draw": draw, "labels": int(ad.sum()), "examples": len(used), "test": len(test),
             "fit_seconds": fit_s,
             "map_adapted": (mean_average_precision(yt[:, ad & has], pb[:, ad & has])[0],
                             mean_average_precision(yt[:, ad & has], pa[:, ad & has])[0]),
             "top1_adapted": (top_k_accuracy(yt[ad_clip], pb[ad_clip], 1), top_k_accuracy(yt[ad_clip], pa[ad_clip], 1)),
             "map_other": (mean_average_precision(yt[:, other], pb[:, other])[0],
                           mean_average_precision(yt[:, other], pa[:, other])[0]),
             "max_diff_other": float(np.abs(pa[:, ~ad] - pb[:, ~ad]).max()),
             "top1_other": (top_k_accuracy(yt[ot_clip], pb[ot_clip], 1), top_k_accuracy(yt[ot_clip], pa[ot_clip], 1)),
             "decision_before": _decision(decision_report, pb[:, ad], yt[:, ad]),
             "decision_after": _decision(decision_report, pa[:, ad], yt[:, ad])}
        if corpus is not None:
            cxs, cy, cclasses, cemb, cscore = corpus
            after = tagger.recording_scores(cxs, cemb)
            same = np.isin(cclasses, [classes[c] for c in adapted])
            r["corpus_not_adapted"] = (mean_average_precision(cy[:, ~same], cscore[:, ~same])[0],
                                       mean_average_precision(cy[:, ~same], after[:, ~same])[0])
            r["corpus_max_diff"] = float(np.abs(after[:, ~same] - cscore[:, ~same]).max())
            r["corpus_same_text"] = (int(same.sum()), mean_average_precision(cy[:, same], cscore[:, same])[0],
                                     mean_average_precision(cy[:, same], after[:, same])[0])
        rows.append(r)
        print(json.dumps(r, default=float))

    def mean(key, i=None):
        v = [r[key] if i is None else r[key][i] for r in rows]
        return float(np.mean(v))

    print()
    print(f"debian-eval recordings (--split {args.split}), {args.draws} draws, {args.shots} examples per label "
          f"(min {args.min_examples}), "
          f"steps {steps}, strength {strength}, features {args.features or A.DEFAULT_FEATURES}, "
          f"generic negatives {args.generic}")
    print(f"adapted labels per draw {mean('labels'):.1f}, example recordings {mean('examples'):.1f}, "
          f"test recordings {mean('test'):.1f}; fit {mean('fit_seconds'):.2f} s (mean), "
          f"{max(r['fit_seconds'] for r in rows):.2f} s (max)")
    print(f"{'measure':58s} {'before':>7s} {'after':>7s}")
    table = [("adapted labels: mAP", "map_adapted"), ("adapted labels: top-1 of their test recordings", "top1_adapted"),
             ("not adapted: mAP (labels with >= 2 recordings)", "map_other"),
             ("not adapted: top-1 of their recordings (over all labels)", "top1_other")]
    for name, key in table:
        print(f"{name:58s} {mean(key, 0):7.3f} {mean(key, 1):7.3f}")
    for k in ("f1_at_0.5", "f1_best", "precision_at_0.5", "recall_at_0.5"):
        print(f"{'adapted labels: ' + k + ' (recording, label pairs)':58s} "
              f"{np.mean([r['decision_before'][k] or 0 for r in rows]):7.3f} "
              f"{np.mean([r['decision_after'][k] or 0 for r in rows]):7.3f}")
    print(f"{'not adapted: largest probability change':58s} {'':7s} {max(r['max_diff_other'] for r in rows):7.1e}")
    if corpus is not None:
        print(f"{'corpus test scenes, classes not adapted: mAP':58s} {mean('corpus_not_adapted', 0):7.3f} "
              f"{mean('corpus_not_adapted', 1):7.3f}")
        print(f"{'corpus: largest score change, classes not adapted':58s} {'':7s} "
              f"{max(r['corpus_max_diff'] for r in rows):7.1e}")
        print(f"{'corpus classes with an adapted label text (' + str(rows[0]['corpus_same_text'][0]) + '): mAP':58s} "
              f"{mean('corpus_same_text', 1):7.3f} {mean('corpus_same_text', 2):7.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, default=float, indent=1))


def _decision(report, prob: np.ndarray, y: np.ndarray) -> dict:
    r = report(prob, y)
    return {k: r[k] for k in ("f1_at_0.5", "f1_best", "best_threshold", "precision_at_0.5", "recall_at_0.5", "ece")}


def _with_model(base, model):
    """A Tagger of ``base`` whose model is ``model`` (the adapted parameters in memory)."""
    import dataclasses

    from zeroshot_audio.tagging import Tagger

    trained = dataclasses.replace(base.trained, model=model)
    trained.__dict__["_encoder"] = base.trained.__dict__.get("_encoder")
    return Tagger(trained, path=base.path, window_segments=base.window_segments)


def _rows(path: Path) -> list[dict]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


if __name__ == "__main__":
    main()

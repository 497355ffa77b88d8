"""Labels given by example clips: quality next to text and to the mean-embedding baseline, and speed, with the
three targets of issue 13 PASS/FAIL.

    python benchmarks/examples_eval.py [--corpus ~/zsa-corpus] [--eval ~/zsa-eval] [--draws 5] [--fit]

Scores come from the shipped model's real path (:meth:`Tagger.label_set` classes scored by
:meth:`Tagger.recording_scores`) on stored YAMNet embeddings and logits; classes are built by
:func:`zeroshot_audio.examples.prototype` from the stored segments of the example clips.

- debian-eval recordings (single-label real recordings): each test clip is scored against its own label with
  examples drawn from *other families* (takes of other sources); labels with a single family are not scored
  (their clips stay as negatives for every label); a label with fewer than k clips outside the family uses them all.
- corpus test scenes, all 71 classes (every class is held out in one of the 5 class folds; the shipped model
  was not trained on any): examples are training-split scenes holding the class, single-label scenes where there
  are k of them, whose source recording of the class (scene_sources.csv package + original_path) is in no test
  scene.

Systems: text (the label's name), examples only, text + examples, and the baseline: the mean YAMNet embedding of
the examples' segments, cosine with each segment (max) or with the clip's mean embedding (the better of the two
is reported). Mean ± std over ``--draws`` seeded draws of examples. ``--fit`` prints the fit of
``EXAMPLE_SCALE``/``EXAMPLE_BIAS`` and ``EXAMPLE_LIFT`` on the corpus's validation scenes (k = 3, train examples).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

SPLITS = ("all", "selection", "report")


def eval_split(root: Path, split: str = "all") -> set[str] | None:
    """debian-eval recordings (``clips.csv`` filenames) of a split, by family; ``None`` for ``"all"``.

    ``provenance.csv`` (next to ``recordings/``) gives each source recording's ``scene_split`` (the corpus split
    of the scenes built from it: train, val, test or empty). A family (``clips.csv`` ``family``: takes of one
    source) is in **selection** when all its recordings are train or val, else in **report** (test or empty;
    a family with both goes to report), so settings chosen on selection are reported on recordings and sources
    they never saw. ``root`` is the ``recordings/`` folder or its parent."""
    if split not in SPLITS:
        raise ValueError(f"--split: {split!r} is not one of {', '.join(SPLITS)}")
    if split == "all":
        return None
    root = Path(root)
    rec = root if (root / "clips.csv").exists() else root / "recordings"
    with open(rec.parent / "provenance.csv", newline="", encoding="utf-8") as f:
        scene = {r["recording"]: r["scene_split"] for r in csv.DictReader(f)}
    with open(rec / "clips.csv", newline="", encoding="utf-8") as f:
        fam = {r["filename"]: r["family"] for r in csv.DictReader(f)}
    report = {fam[f] for f in fam if scene.get(f, "") not in ("train", "val")}
    part = {f for f in fam if (fam[f] in report) == (split == "report")}
    return part


def add_split_option(ap: argparse.ArgumentParser) -> None:
    """The ``--split`` option shared by the debian-eval benchmarks."""
    ap.add_argument("--split", choices=SPLITS, default="all",
                    help="debian-eval recordings: selection (families of corpus train/val sources; choose here), "
                         "report (the other families; report here) or all (default: %(default)s)")


def proto_classes(tagger, groups, text=None):
    """label_set-equivalent classes from stored clips: ``(emb, Prototypes)`` for example groups (lists of
    [T, D] arrays), with ``text`` (names, one per group) lifted by them when given."""
    from zeroshot_audio.examples import EXAMPLE_BIAS, EXAMPLE_LIFT, EXAMPLE_SCALE, prototype
    from zeroshot_audio.model import Prototypes

    cfg = tagger.trained.config
    silence = list(tagger.embedder.class_names).index("Silence")
    v = np.stack([prototype(g, audio_dim=cfg.audio_dim, silence=silence) for g in groups])
    if text is None:
        emb = np.zeros((len(groups), cfg.text_dim), np.float32)
        return emb, Prototypes(v, np.ones(len(groups), np.float32), EXAMPLE_SCALE, EXAMPLE_BIAS)
    return tagger.label_embeddings(text), Prototypes(v, np.zeros(len(groups), np.float32), EXAMPLE_SCALE,
                                                     EXAMPLE_BIAS, np.full(len(groups), EXAMPLE_LIFT, np.float32))


def baseline(xs, groups):
    """Mean-embedding baseline: ``(max over segments, clip mean)`` cosine scores ``[N, C]``."""
    protos = np.stack([np.concatenate([x[:, :1024] for x in g]).mean(0) for g in groups])
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    smax = np.zeros((len(xs), len(groups)), np.float32)
    smean = np.zeros_like(smax)
    for i, x in enumerate(xs):
        e = x[:, :1024]
        smax[i] = ((e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-9)) @ protos.T).max(0)
        m = e.mean(0)
        smean[i] = (m / max(np.linalg.norm(m), 1e-9)) @ protos.T
    return smax, smean


def metrics(y, s):
    from zeroshot_audio.evaluation.metrics import mean_average_precision, top_k_accuracy

    keep = y.sum(1) > 0
    return mean_average_precision(y, s)[0], top_k_accuracy(y[keep], s[keep], 1)


def run_systems(tagger, xs, y, names, groups, pick):
    """``{system: (mAP, top1)}``; ``groups[j]`` examples of class j, ``names[j]`` its label, ``pick [N, L]`` the
    class each clip is scored with per label."""
    rows = np.arange(len(xs))[:, None]
    out = {}
    uniq = sorted(set(names))
    tix = {n: i for i, n in enumerate(uniq)}
    st = tagger.recording_scores(xs, tagger.label_embeddings(uniq))
    out["text"] = st[:, [tix[n] for n in names]][rows, pick]
    emb, pr = proto_classes(tagger, groups)
    out["examples"] = tagger.recording_scores(xs, emb, prototypes=pr)[rows, pick]
    emb, pr = proto_classes(tagger, groups, text=names)
    out["text + examples"] = tagger.recording_scores(xs, emb, prototypes=pr)[rows, pick]
    smax, smean = baseline(xs, groups)
    b = [metrics(y, smax[rows, pick]), metrics(y, smean[rows, pick])]
    res = {k: metrics(y, v) for k, v in out.items()}
    res["baseline (mean embedding, cosine)"] = max(b)
    probs = {k: tagger.probability(v) for k, v in out.items()}
    return res, probs


def debian_eval(tagger, root: Path, k: int, seed: int, split: str = "all"):
    from zeroshot_audio.data import open_store, read_dataset

    ds = read_dataset(root)
    part = eval_split(root, split)
    # selection: clips and examples from the selection part only; report: report clips are scored, with examples
    # from any other family (the selection part included: examples are inputs, not scored)
    keep = [i for i, f in enumerate(ds.filenames) if split != "selection" or f in part]
    st = open_store(root / "stores" / "yamnet+logits-hop0.96")
    xs = [st.get(ds.filenames[i]) for i in keep]
    labels = [ds.labels[i][0] for i in keep]
    fams = [ds.families[i] for i in keep]
    by = defaultdict(list)
    for i, lab in enumerate(labels):
        by[lab].append(i)
    scored = sorted(lab for lab, ii in by.items() if len({fams[i] for i in ii}) >= 2)
    rng = np.random.default_rng(seed)
    names, groups, key = [], [], {}
    for li, lab in enumerate(scored):
        for c in sorted({fams[i] for i in by[lab]}) + [None]:
            pool = [i for i in by[lab] if fams[i] != c]
            key[(li, c)] = len(groups)
            groups.append([xs[i] for i in rng.choice(pool, size=min(k, len(pool)), replace=False)])
            names.append(lab)
    y = np.array([[lab == s for s in scored] for lab in labels], np.float32)
    pick = np.array([[key[(li, fams[i])] if labels[i] == s else key[(li, None)] for li, s in enumerate(scored)]
                     for i in range(len(xs))])
    if split == "report":
        rows = [i for i, j in enumerate(keep) if ds.filenames[j] in part]
        cols = np.flatnonzero(y[rows].sum(0) > 0)
        xs, y, pick = [xs[i] for i in rows], y[np.ix_(rows, cols)], pick[np.ix_(rows, cols)]
    return xs, y, names, groups, pick


class Corpus:
    def __init__(self, root: Path):
        from zeroshot_audio.data import open_store, read_dataset

        self.ds = ds = read_dataset(root)
        self.emb = open_store(root / "stores" / "yamnet-hop0.96")
        self.log = open_store(root / "stores" / "yamnet-logits-hop0.96")
        self.classes = list(ds.classes)
        self.split = dict(zip(ds.filenames, ds.splits))
        self.labs = {f: ds.labels[i] for i, f in enumerate(ds.filenames)}
        src = defaultdict(set)
        with open(root / "scene_sources.csv", newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                src[(r["filename"], r["label"])].add((r["package"], r["original_path"]))
        held = defaultdict(set)
        for f in ds.filenames:
            if self.split[f] in ("test", "val"):
                for c in self.labs[f]:
                    held[c] |= src[(f, c)]
        self.cand = {}
        for c in self.classes:
            ok = [f for f in ds.filenames
                  if self.split[f] == "train" and c in self.labs[f] and not src[(f, c)] & held[c]]
            self.cand[c] = ([f for f in ok if len(self.labs[f]) == 1], ok)
        self._x: dict[str, np.ndarray] = {}

    def x(self, f):
        if f not in self._x:
            self._x[f] = np.concatenate([self.emb.get(f), self.log.get(f)], axis=1)
        return self._x[f]

    def split_set(self, split):
        fs = [f for f in self.ds.filenames if self.split[f] == split]
        return [self.x(f) for f in fs], np.array([[c in self.labs[f] for c in self.classes] for f in fs], np.float32)

    def draw(self, k, seed):
        rng = np.random.default_rng(seed)
        out = []
        for c in self.classes:
            single, ok = self.cand[c]
            out.append([self.x(f) for f in rng.choice(single if len(single) >= k else ok, size=k, replace=False)])
        return out


def fit(tagger, corpus):
    """The fit behind EXAMPLE_SCALE, EXAMPLE_BIAS (fixed point: the scale changes attention) and EXAMPLE_LIFT."""
    from zeroshot_audio.evaluation.calibration_report import decision_report, fit_decision_calibration
    from zeroshot_audio.examples import EXAMPLE_LIFT
    from zeroshot_audio.model import Prototypes

    xs, y = corpus.split_set("val")
    groups = corpus.draw(3, 100)
    emb, pr = proto_classes(tagger, groups)
    a = 10.0
    for _ in range(6):
        p = Prototypes(pr.vectors, pr.mix, a, 0.0)
        f = tagger.recording_scores(xs, emb, prototypes=p)
        s, b, shift = fit_decision_calibration(f.ravel(), y.ravel())
        new_a, bias = a * s / tagger.scale, (b + shift - tagger.bias) / tagger.scale
        print(f"scale {a:.2f} -> {new_a:.2f}, bias {bias:.3f}")
        if abs(new_a - a) < 0.02 * a:
            break
        a = new_a
    print(f"fitted EXAMPLE_SCALE {new_a:.2f} EXAMPLE_BIAS {bias:.2f}")
    temb = tagger.label_embeddings(corpus.classes)
    for m in np.round(np.arange(0, 1.01, 0.1), 2):  # the lift of text by examples, fixed for every label
        p = Prototypes(pr.vectors, np.zeros(len(groups), np.float32), new_a, bias, np.full(len(groups), m, np.float32))
        f = tagger.recording_scores(xs, temb, prototypes=p)
        r = decision_report(tagger.probability(f), y)
        mp, t1 = metrics(y, f)
        print(f"EXAMPLE_LIFT {m:.1f}: val mAP {mp:.3f} top-1 {t1:.3f} F1@0.5 {r['f1_at_0.5']:.3f} "
              f"best {r['f1_best']:.3f}" + ("  <- shipped" if abs(m - EXAMPLE_LIFT) < 1e-6 else ""))


def speed(tagger):
    """Seconds to build 100 example-defined labels from 300 clips of 3 s (files on disk, the real path), and tagging
    60 s of audio with 100 text labels vs 100 example labels."""
    import soundfile as sf

    from zeroshot_audio import examples as ex_mod

    rng = np.random.default_rng(0)
    sr = 16000
    t = np.arange(3 * sr) / sr
    with tempfile.TemporaryDirectory() as d:
        for lab in range(100):
            (Path(d) / f"label{lab:03d}").mkdir()
            for j in range(3):
                f0 = 100 + 30 * lab + 5 * j
                wav = 0.3 * np.sin(2 * np.pi * f0 * t) * (1 + np.sin(2 * np.pi * (1 + lab % 7) * t)) / 2
                wav += 0.02 * rng.standard_normal(t.size)
                sf.write(Path(d) / f"label{lab:03d}" / f"{j}.wav", wav.astype(np.float32), sr)
        ex_mod._CACHE.clear()
        t0 = time.perf_counter()
        labels, emb, pr, _ = tagger.label_set(None, d)
        build = time.perf_counter() - t0
    audio = (0.1 * rng.standard_normal(60 * sr)).astype(np.float32)
    text = [f"sound number {i}" for i in range(100)]
    temb = tagger.label_embeddings(text)
    tagger.tag_encoded(audio, text, temb, sample_rate=sr)
    times = {"text": [], "examples": []}
    for _ in range(5):
        for kind in times:
            t0 = time.perf_counter()
            if kind == "text":
                tagger.tag_encoded(audio, text, temb, sample_rate=sr)
            else:
                tagger.tag_encoded(audio, labels, emb, sample_rate=sr, prototypes=pr)
            times[kind].append(time.perf_counter() - t0)
    return build, len(labels), float(np.median(times["text"])), float(np.median(times["examples"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(Path.home() / "zsa-corpus"))
    ap.add_argument("--eval", default=str(Path.home() / "zsa-eval"))
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--fit", action="store_true", help="print the fit of the constants (corpus validation scenes)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON (read by corpus_results.py)")
    add_split_option(ap)
    args = ap.parse_args()
    from zeroshot_audio import load_model
    from zeroshot_audio.evaluation.calibration_report import decision_report

    tagger = load_model("default")
    corpus = Corpus(Path(args.corpus))
    if args.fit:
        fit(tagger, corpus)
    cxs, cy = corpus.split_set("test")
    table = {}
    calib = {}
    for k in (1, 3, 5):
        for name in ("debian-eval recordings", "corpus test scenes"):
            runs = []
            for seed in range(args.draws):
                if name.startswith("debian"):
                    xs, y, names, groups, pick = debian_eval(tagger, Path(args.eval) / "recordings", k, seed,
                                                             args.split)
                else:
                    xs, y, names, groups = cxs, cy, corpus.classes, corpus.draw(k, seed)
                    pick = np.tile(np.arange(len(names)), (len(xs), 1))
                res, probs = run_systems(tagger, xs, y, names, groups, pick)
                runs.append(res)
                if k == 3 and seed == 0:
                    calib[name] = {s: decision_report(p, y) for s, p in probs.items()}
            table[(name, k)] = {s: np.array([r[s] for r in runs]) for s in runs[0]}
    print(f"mean ± std over {args.draws} draws of examples; debian-eval recordings: --split {args.split}\n")
    print("| dataset | examples per class | system | mAP | top-1 |\n|---|---|---|---|---|")
    for (name, k), systems in table.items():
        for s, v in systems.items():
            print(f"| {name} | {k} | {s} | {v[:, 0].mean():.3f} ± {v[:, 0].std():.3f} | "
                  f"{v[:, 1].mean():.3f} ± {v[:, 1].std():.3f} |")
    print("\ncalibration, k = 3, first draw: F1 at probability 0.5 vs at the best threshold")
    for name, systems in calib.items():
        for s, r in systems.items():
            print(f"  {name:24s} {s:16s} F1@0.5 {r['f1_at_0.5']:.3f}  best {r['f1_best']:.3f} "
                  f"(at {r['best_threshold']:.2f})")
    build, n, t_text, t_ex = speed(tagger)
    print(f"\nbuilding {n} example-defined labels from 300 clips of 3 s: {build:.2f} s; tagging 60 s of audio: "
          f"100 text labels {t_text * 1000:.0f} ms, 100 example labels {t_ex * 1000:.0f} ms")
    print("\ntargets")
    for name in ("debian-eval recordings", "corpus test scenes"):
        s = table[(name, 3)]
        m = {k: v[:, 0].mean() for k, v in s.items()}
        base = m["baseline (mean embedding, cosine)"]
        print(f"  {'PASS' if m['examples'] >= base + 0.05 else 'FAIL'}  (a) {name}: 3 examples, mAP {m['examples']:.3f}"
              f" >= baseline {base:.3f} + 0.05")
        best = max(m["text"], m["examples"])
        print(f"  {'PASS' if m['text + examples'] >= best else 'FAIL'}  (b) {name}: text + 3 examples "
              f"{m['text + examples']:.3f} >= the better alone {best:.3f}")
    ok = build < 10 and t_ex <= 1.1 * t_text
    print(f"  {'PASS' if ok else 'FAIL'}  (c) 100 labels from 300 clips in {build:.2f} s (< 10 s); tagging "
          f"{t_ex * 1000:.0f} ms with example labels vs {t_text * 1000:.0f} ms with text (within 10 %)")
    if args.json:
        argv = [a.replace(str(Path.home()), "~") for a in sys.argv[1:]]
        out = {"command": "python benchmarks/examples_eval.py " + " ".join(argv), "draws": args.draws,
               "split": args.split,
               "table": [{"dataset": name, "k": k, "system": s, "map": float(v[:, 0].mean()),
                          "map_std": float(v[:, 0].std()), "top1": float(v[:, 1].mean()),
                          "top1_std": float(v[:, 1].std())}
                         for (name, k), systems in table.items() for s, v in systems.items()],
               "calibration": {name: {s: {k: float(r[k]) for k in ("f1_at_0.5", "f1_best")} for s, r in sy.items()}
                               for name, sy in calib.items()},
               "speed": {"build_seconds": build, "labels": n, "tag_text_ms": t_text * 1000,
                         "tag_examples_ms": t_ex * 1000}}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

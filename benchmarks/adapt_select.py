"""Choose ``zsa adapt``'s defaults on the corpus, not on the data they are reported on.

    python benchmarks/adapt_select.py [--corpus ~/zsa-corpus] [--draws 3] [--labels 15] [--on corpus|selection]

``--on selection`` chooses on debian-eval's *selection* recordings instead (``examples_eval.eval_split``: families
whose sources made corpus train/val scenes): per draw (seeds 1000, 1001, ...), each selection label with two
families or more is adapted on 3 examples from whole families (``adapt_eval._split``), the other selection
recordings are the test clips, scored for the adapted labels as ``zsa tag`` scores them; generic negatives are
corpus training scenes whose classes are not within label cosine 0.7 of the label (as ``adapt_eval --generic``).
The report recordings are not read; ``adapt_eval.py --split report`` reports there.

Per seeded draw, ``--labels`` corpus classes are adapted on 3 examples each from the corpus's *training* scenes
(``examples_eval.Corpus.draw``: single-label scenes whose source recording of the class is in no validation or test
scene), with the other adapted classes' examples as negatives and, with generic negatives, N other training scenes
(negatives for every class they do not hold). Each setting is scored on the 1000 *validation* scenes, for the
adapted classes, as ``zsa tag`` scores them (best 10 s window, calibrated probability): mAP, and F1 at probability
0.5 against the best F1 (is 0.5 still a decision?). The criterion is mAP + F1 at 0.5 (ranking and decision
together). A coordinate search from the previous defaults: one setting at a time over its grid, keeping the best,
twice. With no generic negatives, the positives' share of the loss is chosen separately (the default ``zsa adapt``
uses when ``--negatives`` is not given). debian-eval and the corpus's test scenes are not read here; they are for
reporting (``benchmarks/adapt_eval.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from adapt_eval import _split, _with_model  # noqa: E402
from examples_eval import Corpus, eval_split  # noqa: E402

GRID = {"features": ["embedding", "both", "logits"], "positive_share": [0.03, 0.1, 0.2, 0.5],
        "steps": [30, 100, 300], "strength": [0.1, 0.3, 1.0, 3.0], "generic": [0, 50, 200, 500],
        "residual": ["full", "direction"]}


class Setup:
    def __init__(self, corpus_root: Path, draws: int, n_labels: int):
        from zeroshot_audio import load_model
        from zeroshot_audio.model import NumpyModel

        self.NumpyModel = NumpyModel
        self.base = load_model("default")
        self.corpus = c = Corpus(corpus_root)
        self.xs, self.y = c.split_set("val")
        self.emb = self.base.label_embeddings(c.classes)
        self.p0 = self.base.probability(self.base.recording_scores(self.xs, self.emb))
        train = [f for f in c.ds.filenames if c.split[f] == "train"]
        self.draws = []
        for d in range(draws):
            rng = np.random.default_rng(1000 + d)
            ok = [i for i in range(len(c.classes)) if self.y[:, i].sum() >= 1]
            labs = sorted(rng.choice(ok, size=n_labels, replace=False).tolist())
            groups = c.draw(3, 1000 + d)
            clips, owner = [], []
            for i in labs:
                clips += groups[i]
                owner += [i] * len(groups[i])
            # generic negatives: training scenes, in a fixed random order (the first N are used)
            order = rng.permutation(len(train))
            gen = [train[j] for j in order[:max(GRID["generic"])]]
            self.draws.append((labs, clips, owner, gen))

    def run(self, features, positive_share, steps, strength, generic, residual="full"):
        from zeroshot_audio.evaluation.calibration_report import decision_report
        from zeroshot_audio.evaluation.metrics import mean_average_precision
        from zeroshot_audio.train.adapt import fit_adaptation

        c, base = self.corpus, self.base
        out = []
        for labs, clips, owner, gen in self.draws:
            g = gen[:generic]
            allc = clips + [c.x(f) for f in g]
            positive = np.stack([np.asarray(owner + [-1] * len(g)) == i for i in labs], axis=1)
            negative = ~positive
            for j, f in enumerate(g):
                negative[len(clips) + j] = [c.classes[i] not in c.labs[f] for i in labs]
            ad, _ = fit_adaptation(base.trained.model, [c.classes[i] for i in labs], self.emb[labs], allc,
                                   positive, negative, scale=base.scale, bias=base.bias,
                                   window=base.window_segments, steps=steps, strength=strength,
                                   features=features, positive_share=positive_share, residual=residual)
            t = _with_model(base, self.NumpyModel(base.trained.config, base.trained.model.params, adaptation=ad))
            pa = t.probability(t.recording_scores(self.xs, self.emb[labs]))
            y = self.y[:, labs]
            r0, r1 = decision_report(self.p0[:, labs], y), decision_report(pa, y)
            out.append([mean_average_precision(y, self.p0[:, labs])[0], mean_average_precision(y, pa)[0],
                        r0["f1_at_0.5"], r1["f1_at_0.5"], r1["f1_best"], r1["precision_at_0.5"] or 0.0])
        return np.mean(out, axis=0)


class DebianSetup:
    """The same ``run`` on debian-eval's selection recordings (``--on selection``)."""

    def __init__(self, eval_root: Path, corpus_root: Path, draws: int):
        from zeroshot_audio import load_model
        from zeroshot_audio.data import open_store, read_dataset
        from zeroshot_audio.model import NumpyModel

        self.NumpyModel = NumpyModel
        self.base = base = load_model("default")
        rec = eval_root / "recordings"
        ds = read_dataset(rec)
        part = eval_split(rec, "selection")
        names = [f for f in ds.filenames if f in part]
        rows = [i for i, f in enumerate(ds.filenames) if f in part]
        self.classes = list(ds.classes)
        self.y = ds.label_matrix(self.classes)[rows]
        st = open_store(rec / "stores" / "yamnet+logits-hop0.96")
        self.xs = [st.get(f) for f in names]
        fams = [ds.families[i] for i in rows]
        self.emb = base.label_embeddings(self.classes)
        self.p0 = base.probability(base.recording_scores(self.xs, self.emb))
        by: dict[int, dict[str, list[int]]] = {}
        for i in np.flatnonzero(self.y.sum(1) == 1):
            by.setdefault(int(np.flatnonzero(self.y[i])[0]), {}).setdefault(fams[i], []).append(int(i))
        eligible = sorted(c for c, f in by.items() if len(f) >= 2)
        c = Corpus(corpus_root)
        train = [f for f in c.ds.filenames if c.split[f] == "train"]
        cls_emb = dict(zip(c.classes, base.label_embeddings(c.classes)))
        self.draws = []
        for d in range(draws):
            rng = np.random.default_rng(1000 + d)
            ex = {k: e for k in eligible if len(e := _split(by[k], 3, rng)[0]) >= 3}
            labs = sorted(ex)
            used = {r for e in ex.values() for r in e}
            test = np.asarray([i for i in range(len(self.xs)) if i not in used])
            clips = [self.xs[r] for k in labs for r in ex[k]]
            owner = [k for k in labs for _ in ex[k]]
            order = rng.permutation(len(train))[:max(GRID["generic"])]
            gen, gneg = [], []
            for j in order:
                f = train[j]
                gen.append(c.x(f))
                gneg.append([max((float(cls_emb[k] @ self.emb[a]) for k in c.labs[f]), default=0.0) < 0.7
                             for a in labs])
            self.draws.append((labs, clips, owner, gen, np.asarray(gneg, bool), test))

    def run(self, features, positive_share, steps, strength, generic, residual="full"):
        from zeroshot_audio.evaluation.calibration_report import decision_report
        from zeroshot_audio.evaluation.metrics import mean_average_precision
        from zeroshot_audio.train.adapt import fit_adaptation

        base = self.base
        out = []
        for labs, clips, owner, gen, gneg, test in self.draws:
            allc = clips + gen[:generic]
            positive = np.stack([np.asarray(owner + [-1] * generic) == i for i in labs], axis=1)
            negative = ~positive
            negative[len(clips):] = gneg[:generic]
            ad, _ = fit_adaptation(base.trained.model, [self.classes[i] for i in labs], self.emb[labs], allc,
                                   positive, negative, scale=base.scale, bias=base.bias,
                                   window=base.window_segments, steps=steps, strength=strength,
                                   features=features, positive_share=positive_share, residual=residual)
            t = _with_model(base, self.NumpyModel(base.trained.config, base.trained.model.params, adaptation=ad))
            xs = [self.xs[i] for i in test]
            pa = t.probability(t.recording_scores(xs, self.emb[labs]))
            y = self.y[np.ix_(test, labs)]
            has = y.sum(0) >= 1
            p0 = self.p0[np.ix_(test, labs)]
            r0, r1 = decision_report(p0, y), decision_report(pa, y)
            out.append([mean_average_precision(y[:, has], p0[:, has])[0],
                        mean_average_precision(y[:, has], pa[:, has])[0],
                        r0["f1_at_0.5"], r1["f1_at_0.5"], r1["f1_best"], r1["precision_at_0.5"] or 0.0])
        return np.mean(out, axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(Path.home() / "zsa-corpus"))
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--labels", type=int, default=15)
    ap.add_argument("--eval", default=str(Path.home() / "zsa-eval"))
    ap.add_argument("--on", choices=("corpus", "selection"), default="corpus",
                    help="choose on the corpus's validation scenes or debian-eval's selection recordings")
    args = ap.parse_args()
    from zeroshot_audio.train import adapt as A

    if args.on == "corpus":
        s = Setup(Path(args.corpus), args.draws, args.labels)
        where = "val"
    else:
        s = DebianSetup(Path(args.eval), Path(args.corpus), args.draws)
        where = "selection"
    cache: dict[tuple, np.ndarray] = {}

    def score(cfg):
        key = tuple(sorted(cfg.items()))
        if key not in cache:
            cache[key] = s.run(**cfg)
            m = cache[key]
            print(f"  {cfg}: {where} mAP {m[0]:.3f} -> {m[1]:.3f}, F1@0.5 {m[2]:.3f} -> {m[3]:.3f} (best {m[4]:.3f}), "
                  f"precision@0.5 {m[5]:.3f}, criterion {m[1] + m[3]:.3f}", flush=True)
        return cache[key][1] + cache[key][3]

    def search(start, names):
        cfg = dict(start)
        for _ in range(2):
            for name in names:
                best = max(GRID[name], key=lambda v: score({**cfg, name: v}))
                cfg[name] = best
        return cfg

    previous = {"features": A.DEFAULT_FEATURES, "positive_share": A.POSITIVE_SHARE, "steps": A.DEFAULT_STEPS,
                "strength": A.DEFAULT_STRENGTH, "generic": 200, "residual": A.DEFAULT_RESIDUAL}
    if args.on == "corpus":
        print(f"corpus validation scenes, {args.draws} draws of {args.labels} classes, 3 training-scene examples each")
    else:
        print(f"debian-eval selection recordings, {args.draws} draws, labels per draw "
              f"{np.mean([len(d[0]) for d in s.draws]):.1f}, 3 examples each from whole families, test recordings "
              f"{np.mean([len(d[-1]) for d in s.draws]):.1f}")
    print("with generic negatives (previous defaults first):")
    chosen = search(previous, ["residual", "features", "positive_share", "steps", "strength", "generic"])
    print(f"chosen: {chosen}, criterion {score(chosen):.3f} (previous {score(previous):.3f})")
    print("without generic negatives (the other labels' examples only): positives' share and strength")
    no_gen = search({**chosen, "generic": 0}, ["positive_share", "strength"])
    print(f"chosen without negatives: {no_gen}, criterion {score(no_gen):.3f} "
          f"(with the share chosen with negatives: {score({**chosen, 'generic': 0}):.3f})")


if __name__ == "__main__":
    main()

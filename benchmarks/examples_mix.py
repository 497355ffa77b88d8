"""How to combine a label's text and its examples: variants of the combination, chosen on the corpus's validation
scenes.

    python benchmarks/examples_mix.py [--corpus ~/zsa-corpus] [--eval ~/zsa-eval] [--draws 3]
                                      [--choose corpus-val|selection] [--split all|selection|report]

``--choose selection`` chooses each variant's parameters on debian-eval's *selection* recordings instead
(``examples_eval.eval_split``: families whose sources made corpus train/val scenes; draws 100, 101, ...), and
``--split`` says which debian-eval recordings the chosen settings are reported on (``report``: the other families).

With 3 examples per class. Each variant's parameters are chosen by mAP on the corpus's *validation* scenes
(examples from training scenes, draws 100, 101, ...), then the chosen setting is reported on debian-eval's
recordings and the corpus's test scenes (the protocol of ``benchmarks/examples_eval.py``, draws 0, 1, ...).
``s`` is a segment's text score, ``e`` its examples' score, ``m`` the examples' weight per label.

Lifting (shipped: ``s <- s + m * max(0, e - s)``, the examples raise the text's segments toward theirs and never
lower them; ``zeroshot_audio.model.Prototypes`` ``lift``):

- lift, fixed (shipped: ``zeroshot_audio.examples.EXAMPLE_LIFT``): ``m`` one number;
- lift, agreement: ``m = lo + (hi - lo) * a``, ``a`` the cosine between the examples' YAMNet class profile (mean
  class probabilities of their sound segments, per clip then over clips: ``class_profile``) and the text's anchor
  weights over the same classes.

Blending (shipped before: ``s <- (1 - m) s + m e``, which also lowers the text's segments that the examples do not
sound like):

- fixed: ``m`` one number;
- agreement: ``m = lo + (hi - lo) * a`` as above (shipped before, lo 0.25, hi 1);
- text anchor: ``m = lo + (hi - lo) * t``, ``t`` the text's largest cosine with an AudioSet class name (a text far
  from every class trusts the examples more when ``lo > hi``);
- leave-one-out: ``m = lo + (hi - lo) * r``, ``r`` the share of the label's examples that the examples-only class
  built from the others ranks better (among the other labels' examples) than the text-only class does;
- clip scores: the text and examples classes pooled separately, ``F = (1 - m) F_text + m F_examples``;
- clip probabilities: ``p = (1 - m) p_text + m p_examples``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from examples_eval import Corpus, add_split_option, debian_eval, metrics  # noqa: E402

LEVELS = [0.0, 0.25, 0.5, 0.75, 1.0]


def class_profile(clips, *, audio_dim, silence):
    """``[K]``: YAMNet's class probabilities of the examples' sound segments, averaged per clip, then over clips."""
    from zeroshot_audio._math import sigmoid
    from zeroshot_audio.examples import sound_segments

    per_clip = []
    for x in clips:
        keep = sound_segments(x, audio_dim=audio_dim, silence=silence)
        per_clip.append(sigmoid(np.asarray(x, np.float64)[keep, audio_dim:]).mean(axis=0))
    return np.mean(per_clip, axis=0)


class Case:
    """One draw on one dataset: clips, truth, and per class group its text, prototype and statistics."""

    def __init__(self, tagger, xs, y, names, groups, pick):
        from zeroshot_audio.examples import EXAMPLE_BIAS, EXAMPLE_SCALE, prototype
        from zeroshot_audio.model import Prototypes

        self.tagger, self.xs, self.y, self.pick = tagger, xs, y, pick
        self.rows = np.arange(len(xs))[:, None]
        cfg = tagger.trained.config
        model = tagger.trained.model
        silence = list(tagger.embedder.class_names).index("Silence")
        self.P = lambda v, m: Prototypes(v, np.asarray(m, np.float32), EXAMPLE_SCALE, EXAMPLE_BIAS)
        self.L = lambda v, m: Prototypes(v, np.zeros(len(v), np.float32), EXAMPLE_SCALE, EXAMPLE_BIAS,
                                         np.asarray(m, np.float32))
        self.v = np.stack([prototype(g, audio_dim=cfg.audio_dim, silence=silence) for g in groups])
        self.temb = tagger.label_embeddings(names)
        w = model.anchor_weights(self.temb)
        prof = np.stack([class_profile(g, audio_dim=cfg.audio_dim, silence=silence) for g in groups])
        self.agree = (prof * w).sum(1) / (np.linalg.norm(prof, axis=1) * np.linalg.norm(w, axis=1))
        e = self.temb / np.linalg.norm(self.temb, axis=1, keepdims=True)
        self.textmax = (e @ model._anchor.T).max(1)
        self.loo = self._loo(groups, names, cfg, silence, prototype)
        zero = np.zeros_like(self.temb)
        self.f_text = tagger.recording_scores(xs, self.temb)[self.rows, pick]
        self.f_ex = tagger.recording_scores(xs, zero, prototypes=self.P(self.v, np.ones(len(groups))))[self.rows, pick]

    def _loo(self, groups, names, cfg, silence, prototype):
        """Per group: share of its examples ranked better by the examples-only class of the others than by text."""
        pool = [x for g in groups for x in g]
        owner = np.asarray([names[j] for j, g in enumerate(groups) for _ in g])
        uniq = sorted(set(names))
        st = self.tagger.recording_scores(pool, self.tagger.label_embeddings(uniq))
        col = {n: i for i, n in enumerate(uniq)}
        vecs, which = [], []
        start = 0
        for j, g in enumerate(groups):
            for i in range(len(g)):
                if len(g) > 1:
                    vecs.append(prototype([x for t, x in enumerate(g) if t != i], audio_dim=cfg.audio_dim,
                                          silence=silence))
                    which.append((j, start + i))
            start += len(g)
        if not vecs:
            return np.full(len(groups), 0.5)
        v = np.stack(vecs)
        se = self.tagger.recording_scores(pool, np.zeros((len(v), self.temb.shape[1]), np.float32),
                                          prototypes=self.P(v, np.ones(len(v))))
        wins = [[] for _ in groups]
        for c, (j, r) in enumerate(which):
            neg = owner != names[j]
            pt = (st[neg, col[names[j]]] < st[r, col[names[j]]]).mean()
            pe = (se[neg, c] < se[r, c]).mean()
            wins[j].append(1.0 if pe > pt else 0.5 if pe == pt else 0.0)
        return np.asarray([np.mean(x) if x else 0.5 for x in wins])

    def blend(self, m):
        f = self.tagger.recording_scores(self.xs, self.temb, prototypes=self.P(self.v, m))
        return metrics(self.y, f[self.rows, self.pick])[0]

    def lift(self, m):
        f = self.tagger.recording_scores(self.xs, self.temb, prototypes=self.L(self.v, m))
        return metrics(self.y, f[self.rows, self.pick])[0]

    def variant(self, kind, params):
        if kind == "lift, fixed":
            return self.lift(np.full(len(self.v), params[0]))
        if kind == "lift, agreement":
            lo, hi = params
            return self.lift(np.clip(lo + (hi - lo) * self.agree, 0, 1))
        if kind == "fixed":
            return self.blend(np.full(len(self.v), params[0]))
        if kind in ("agreement", "text anchor", "leave-one-out"):
            x = {"agreement": self.agree, "text anchor": self.textmax, "leave-one-out": self.loo}[kind]
            lo, hi = params
            return self.blend(np.clip(lo + (hi - lo) * x, 0, 1))
        m = params[0]
        if kind == "clip scores":
            return metrics(self.y, (1 - m) * self.f_text + m * self.f_ex)[0]
        p = self.tagger.probability
        return metrics(self.y, (1 - m) * p(self.f_text) + m * p(self.f_ex))[0]


GRIDS = {"lift, fixed": [(m,) for m in np.round(np.arange(0, 1.01, 0.1), 2)],
         "lift, agreement": list(itertools.product(LEVELS, LEVELS)),
         "fixed": [(m,) for m in np.round(np.arange(0, 1.01, 0.1), 2)],
         "agreement": list(itertools.product(LEVELS, LEVELS)),
         "text anchor": list(itertools.product(LEVELS, LEVELS)),
         "leave-one-out": list(itertools.product(LEVELS, LEVELS)),
         "clip scores": [(m,) for m in np.round(np.arange(0, 1.01, 0.1), 2)],
         "clip probabilities": [(m,) for m in np.round(np.arange(0, 1.01, 0.1), 2)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(Path.home() / "zsa-corpus"))
    ap.add_argument("--eval", default=str(Path.home() / "zsa-eval"))
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--choose", choices=("corpus-val", "selection"), default="corpus-val",
                    help="choose the parameters on the corpus's validation scenes or debian-eval's selection "
                         "recordings (default: %(default)s)")
    add_split_option(ap)
    args = ap.parse_args()
    from zeroshot_audio import load_model
    from zeroshot_audio.examples import EXAMPLE_LIFT

    tagger = load_model("default")
    corpus = Corpus(Path(args.corpus))
    rec = Path(args.eval) / "recordings"
    ident = lambda n: np.tile(np.arange(len(corpus.classes)), (n, 1))  # noqa: E731
    if args.choose == "corpus-val":
        vx, vy = corpus.split_set("val")
        val = [Case(tagger, vx, vy, corpus.classes, corpus.draw(3, 100 + d), ident(len(vx)))
               for d in range(args.draws)]
        chooser = "corpus val"
    else:
        val = [Case(tagger, *debian_eval(tagger, rec, 3, 100 + d, "selection")) for d in range(args.draws)]
        chooser = "debian-eval selection"
    tx, ty = corpus.split_set("test")
    test = [Case(tagger, tx, ty, corpus.classes, corpus.draw(3, d), ident(len(tx))) for d in range(args.draws)]
    deb = [Case(tagger, *debian_eval(tagger, rec, 3, d, args.split)) for d in range(args.draws)]
    dname = f"debian-eval {args.split}"
    text = {n: np.mean([metrics(c.y, c.f_text)[0] for c in cs]) for n, cs in
            (("val", val), ("test", test), ("debian", deb))}
    ex = {n: np.mean([metrics(c.y, c.f_ex)[0] for c in cs]) for n, cs in (("val", val), ("debian", deb))}
    print(f"3 examples per class, {args.draws} draws; text alone: {chooser} {text['val']:.3f}, corpus test "
          f"{text['test']:.3f}, {dname} {text['debian']:.3f}; examples alone: {chooser} {ex['val']:.3f}, "
          f"{dname} {ex['debian']:.3f}")
    print(f"| variant | chosen on {chooser} | {chooser} mAP | corpus test mAP | {dname} mAP | "
          f"(b) {dname} |\n|---|---|---|---|---|---|")

    def row(kind, label, p, score=None):
        score = np.mean([c.variant(kind, p) for c in val]) if score is None else score
        t = np.mean([c.variant(kind, p) for c in test])
        d = np.mean([c.variant(kind, p) for c in deb])
        ok = "PASS" if d >= max(text["debian"], ex["debian"]) else "FAIL"
        print(f"| {label} | {', '.join(f'{v:g}' for v in p)} | {score:.3f} | {t:.3f} | {d:.3f} | {ok} |", flush=True)

    row("lift, fixed", "lift, fixed, shipped", (EXAMPLE_LIFT,))
    row("agreement", "blend, agreement, shipped before", (0.25, 1.0))
    for kind, grid in GRIDS.items():
        scores = {p: np.mean([c.variant(kind, p) for c in val]) for p in grid}
        best = max(grid, key=lambda p: scores[p])
        row(kind, kind if kind.startswith("lift") else f"blend, {kind}", best, scores[best])
    for name, cs in ((chooser, val), (dname, deb)):
        c = np.concatenate([x.agree for x in cs]), np.concatenate([x.textmax for x in cs]), \
            np.concatenate([x.loo for x in cs])
        print(f"statistics on {name}: agreement {c[0].mean():.2f} ± {c[0].std():.2f}, text anchor "
              f"{c[1].mean():.2f} ± {c[1].std():.2f}, leave-one-out {c[2].mean():.2f} ± {c[2].std():.2f}")


if __name__ == "__main__":
    main()

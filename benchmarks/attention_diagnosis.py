"""Why does the paper's attention pooling trail mean and max pooling on some datasets? Measurements per fold.

    python benchmarks/attention_diagnosis.py DATA [--variants base,shared,...] [--folds 5] [--json OUT]

Runs the protocol's zero-shot pooled systems (``--distill`` setting: YAMNet's pseudo-labels as auxiliary
classes, strict, 5 class folds, seed 0, as ``zsa benchmark DATA --distill``) in several variants and prints,
per variant, mean +- sd over folds of:

- ``zsl``: ZSL mAP of the unseen classes on the test clips; ``seen``: mAP of the seen classes there (GZSL seen);
- ``ep``: the epoch early stopping kept, ``val``: its validation mAP, ``ep1..``: validation mAP after each of the
  first epochs (the training curve of fold 0);
- ``on_event``: for each test clip and each of its unseen labels, the share of the pooling weights (attention,
  the max's one-hot, the mean's uniform weights) on segments that overlap an event of that label, averaged;
  ``uniform`` is that share under uniform weights (the fraction of the clip the label sounds in): weights that
  look at the right place are well above it;
- ``argmax_on_event``: how often the most attended segment overlaps an event of the label.

With ``--curves EPOCHS``: how well the validation mAP that early stopping watches tracks the test mAP of the
unseen classes, epoch by epoch (see ``--help``).

Variants (``NAME=pooling[:key=value,...]``, model options of :class:`~zeroshot_audio.model.ModelConfig` and
training options of :class:`~zeroshot_audio.train.options.TrainOptions`) default to the paper's three poolings
and the attention variants examined in ``docs/attention.md``. Reads the stores ``DATA/stores/yamnet-hop0.96``
and ``DATA/stores/yamnet-logits-hop0.96`` (made by ``zsa benchmark DATA --distill``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from zeroshot_audio.data import open_store, read_dataset
from zeroshot_audio.data.folds import class_folds, fold_roles
from zeroshot_audio.evaluation.metrics import mean_average_precision
from zeroshot_audio.evaluation.protocol import ProtocolOptions
from zeroshot_audio.evaluation.systems import Fold, PooledModel
from zeroshot_audio.model import ModelConfig
from zeroshot_audio.train.options import TrainOptions
from zeroshot_audio.train.recipes import dataset_clips

DEFAULT_VARIANTS = [
    "mean=mean", "max=max", "attention=attention",
    "shared=attention:attention=shared",
]
MODEL_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)}
TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainOptions)}


def parse_variant(text: str) -> tuple[str, str, dict, dict]:
    name, spec = text.split("=", 1)
    pooling, _, rest = spec.partition(":")
    model, train = {}, {}
    for item in filter(None, rest.split(",")):
        k, v = item.split("=", 1)
        value: object = v
        for cast in (int, float):
            try:
                value = cast(v)
                break
            except ValueError:
                pass
        if v in ("true", "false"):
            value = v == "true"
        if k in MODEL_FIELDS:
            model[k] = value
        elif k in TRAIN_FIELDS:
            train[k] = value
        else:
            raise SystemExit(f"variant {name}: unknown option {k}")
    return name, pooling, model, train


def load(data: Path):
    from zeroshot_audio.assets.fetch import yamnet_class_map_path
    from zeroshot_audio.embedders.yamnet import read_yamnet_class_names
    from zeroshot_audio.text import class_matrix, get_label_encoder
    from zeroshot_audio.train.distill import yamnet_aux_labels

    dataset = read_dataset(data)
    store = open_store(data / "stores" / "yamnet-hop0.96")
    logits = open_store(data / "stores" / "yamnet-logits-hop0.96")
    encoder = get_label_encoder("minilm")
    emb = class_matrix(encoder, dataset.classes, descriptions=dataset.descriptions, text="name", templates="none")
    names = read_yamnet_class_names(yamnet_class_map_path())
    aux = yamnet_aux_labels(dataset.filenames, logits, dataset.classes, emb, encoder, yamnet_names=names,
                            threshold=0.3, exclude_similarity=0.8)  # the defaults of zsa benchmark
    return dataset, store, np.asarray(emb, dtype=np.float32), aux


def silent_share(store, step: int = 10) -> tuple[float, float, float]:
    """Share of the segments (every ``step``-th clip) equal, to 0.01, to the most common segment embedding, that
    embedding's norm and the median segment norm."""
    x, mask = store.batch(np.arange(0, len(store), step))
    seg = np.asarray(x, dtype=np.float32)[np.asarray(mask, dtype=bool)]
    rounded, counts = np.unique(np.round(seg, 2), axis=0, return_counts=True)
    top = rounded[np.argmax(counts)]
    return float(counts.max() / len(seg)), float(np.linalg.norm(top)), float(np.median(np.linalg.norm(seg, axis=1)))


def event_overlap(dataset, files, classes, hop: float, n_segments: list[int]) -> list[np.ndarray]:
    """Per clip ``[T, C]`` bool: segment t (``[t hop, t hop + 0.96)``) overlaps an event of class c."""
    pos = {c: i for i, c in enumerate(classes)}
    by_file: dict[str, list] = {}
    for e in dataset.events:
        by_file.setdefault(e.filename, []).append(e)
    out = []
    for f, t in zip(files, n_segments):
        m = np.zeros((t, len(classes)), dtype=bool)
        starts = np.arange(t) * hop
        for e in by_file.get(f, []):
            if e.label in pos:
                m[:, pos[e.label]] |= (starts < e.offset) & (starts + 0.96 > e.onset)
        out.append(m)
    return out


def localisation(outputs, overlap, y_test, cols) -> dict[str, float]:
    share, uniform, argmax_hit = [], [], []
    for (_seg, att, _), ov, y in zip(outputs, overlap, y_test):
        for j, c in enumerate(cols):
            if not y[c] or not ov[:, c].any():
                continue
            a = att[:, j]
            share.append(float(a[ov[:, c]].sum()))
            uniform.append(float(ov[:, c].mean()))
            argmax_hit.append(bool(ov[int(np.argmax(a)), c]))
    return {"on_event": float(np.mean(share)), "uniform": float(np.mean(uniform)),
            "argmax_on_event": float(np.mean(argmax_hit))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--variants", default=";".join(DEFAULT_VARIANTS),
                    help="';'-separated NAME=pooling[:key=value,...]")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--only-folds", default=None, help="comma-separated fold numbers to run (default: all)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--curves", type=int, default=0, metavar="EPOCHS",
                    help="instead: train each variant EPOCHS epochs without early stopping, twice (the training is "
                         "the same), scored each epoch on the validation classes of the val split alone (val), of the "
                         "val split and the train clips dropped for a validation class (val+, what training now "
                         "watches), and on the test clips' unseen classes; print the curves and the test mAP of the "
                         "epoch each validation picks")
    args = ap.parse_args()
    variants = [parse_variant(v) for v in args.variants.split(";") if v.strip()]
    t0 = time.perf_counter()
    dataset, store, emb, aux = load(args.data.expanduser())
    share, norm, typical = silent_share(store)
    print(f"segments equal to the most common segment embedding (digital silence): {share:.1%} of a sample; its norm "
          f"{norm:.1f}, a median segment's {typical:.1f}", flush=True)
    opts = ProtocolOptions(distill=True, systems=("mean",))
    classes = list(dataset.classes)
    clips = dataset_clips(dataset, store, classes=classes, seed=opts.seed)
    aux_targets = np.asarray(aux.targets, dtype=bool)
    part = {s: clips.ids(s) for s in ("train", "val", "test")}
    folds = class_folds(classes, n_folds=args.folds, seed=opts.seed)
    pos = {c: i for i, c in enumerate(classes)}
    test_ids = part["test"]
    files = [dataset.filenames[i] for i in test_ids]
    hop = float(store.meta.hop)
    results: dict[str, list[dict]] = {v[0]: [] for v in variants}
    only = None if args.only_folds is None else {int(x) for x in args.only_folds.split(",")}
    for k in range(args.folds):
        if only is not None and k not in only:
            continue
        roles = fold_roles(folds, k, classes)
        idx = {r: np.array([pos[c] for c in getattr(roles, r)], dtype=np.int64) for r in ("seen", "val", "unseen")}
        held = np.concatenate([idx["unseen"], idx["val"]])
        zs = clips.select(train_classes=idx["seen"], val_classes=idx["val"], unheard=held, extra_targets=aux_targets)
        y_test = clips.labels[test_ids]
        for name, pooling, model_kw, train_kw in variants:
            train = dataclasses.replace(opts.train, **train_kw)
            if args.curves:
                results[name].append(curves(name, pooling, model_kw, train, k, clips, part, idx, zs, emb, aux, store,
                                            args.curves))
                continue
            fold = Fold(k=k, classes=classes, class_embeddings=emb, clips=clips, part=part, idx=idx, zero_shot=zs,
                        store=store, model=model_kw, train=train, aux=aux, aux_targets=aux_targets, dataset=dataset,
                        device=None)
            t = time.perf_counter()
            system = PooledModel(pooling, name=name)
            system.fit(fold)
            from zeroshot_audio.train.fit import predict_segments

            rows = clips.rows[test_ids]
            outputs = predict_segments(system.model_, store, rows, emb)
            scores = np.stack([o[2] for o in outputs])
            zsl, _ = mean_average_precision(y_test[:, idx["unseen"]], scores[:, idx["unseen"]])
            seen, _ = mean_average_precision(y_test[:, idx["seen"]], scores[:, idx["seen"]])
            overlap = event_overlap(dataset, files, classes, hop, [len(o[0]) for o in outputs])
            unseen_out = [(s[:, idx["unseen"]], a[:, idx["unseen"]], c) for s, a, c in outputs]
            loc = localisation(unseen_out, overlap, y_test, idx["unseen"])
            seen_out = [(s[:, idx["seen"]], a[:, idx["seen"]], c) for s, a, c in outputs]
            loc_seen = localisation(seen_out, overlap, y_test, idx["seen"])
            row = {"fold": k, "zsl": zsl, "seen": seen, "ep": system.info_["best_epoch"],
                   "val": system.info_["val_map"], "curve": system.history_, **loc,
                   "on_event_seen": loc_seen["on_event"], "argmax_on_event_seen": loc_seen["argmax_on_event"],
                   "seconds": round(time.perf_counter() - t, 1)}
            results[name].append(row)
            curve = " ".join(f"{r.get('val_map', float('nan')):.3f}" for r in system.history_[:8])
            print(f"fold {k} {name:>14}: zsl {zsl:.3f} seen {seen:.3f} ep {row['ep']:>2} val "
                  f"{row['val'] or float('nan'):.3f} on_event {loc['on_event']:.3f} (uniform {loc['uniform']:.3f}, "
                  f"argmax {loc['argmax_on_event']:.3f}; seen {loc_seen['on_event']:.3f}) | val curve {curve} "
                  f"| {row['seconds']} s", flush=True)
    print()
    if args.curves:
        keys = ("picked[val]", "test_at_picked[val]", "spearman[val]", "picked[val+]", "test_at_picked[val+]",
                "spearman[val+]", "oracle_epoch", "test_at_oracle", "test_at_5", "test_at_10", "test_at_20")
        print("| variant | " + " | ".join(keys) + " |")
        print("|---|" + "---|" * len(keys))
        for name, rows in results.items():
            print(f"| {name} | " + " | ".join(_cell([r[key] for r in rows]) for key in keys) + " |")
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=float) + "\n", encoding="utf-8")
        return
    keys = ("zsl", "seen", "ep", "on_event", "uniform", "argmax_on_event", "on_event_seen")
    print("| variant | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, rows in results.items():
        cells = []
        for key in keys:
            v = np.array([r[key] for r in rows], dtype=float)
            cells.append(f"{v.mean():.3f} ± {v.std(ddof=1) if v.size > 1 else 0.0:.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\n{args.data}: {len(test_ids)} test clips, {len(classes)} classes, {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float) + "\n", encoding="utf-8")


def _cell(values) -> str:
    v = np.array(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std(ddof=1) if v.size > 1 else 0.0:.3f}"


def curves(name, pooling, model_kw, train, k, clips, part, idx, zs, emb, aux, store, epochs) -> dict:
    """Validation and test-unseen mAP after every epoch of one training run (early stopping off)."""
    from zeroshot_audio.train.fit import fit
    from zeroshot_audio.train.recipes import ClipSet

    config = ModelConfig(audio_dim=int(store.meta.dim), text_dim=int(emb.shape[1]), pooling=pooling, **model_kw)
    train = dataclasses.replace(train, seed=train.seed + k, epochs=epochs, patience=0)
    train_emb = np.concatenate([emb[idx["seen"]], aux.embeddings], axis=0)
    test_ids = part["test"]
    test = ClipSet(store, clips.rows[test_ids], clips.labels[np.ix_(test_ids, idx["unseen"])])
    runs = {}
    old_val = clips.clip_set(part["val"], idx["val"])  # the val split alone (before watch_dropped)
    for role, val, val_emb in (("val", old_val, emb[idx["val"]]), ("val+", zs.val, emb[idx["val"]]),
                               ("test", test, emb[idx["unseen"]])):
        res = fit(config, dataclasses.replace(zs.train, store=store), train_emb,
                  val=dataclasses.replace(val, store=store), val_class_emb=val_emb, options=train)
        runs[role] = np.array([r["val_map"] for r in res.history], dtype=float)
    from scipy.stats import spearmanr

    t = runs["test"]
    row = {"fold": k, "oracle_epoch": int(np.argmax(t)) + 1, "test_at_oracle": float(t.max()), "test_at_last": t[-1],
           "curves": {r: v.tolist() for r, v in runs.items()}, "n_val": len(old_val), "n_val+": len(zs.val)}
    for role in ("val", "val+"):
        v = runs[role]
        picked = int(np.nanargmax(v))
        row[f"picked[{role}]"] = picked + 1
        row[f"test_at_picked[{role}]"] = t[picked]
        row[f"spearman[{role}]"] = float(spearmanr(v, t)[0])
    for e in (1, 5, 10, 20):
        row[f"test_at_{e}"] = t[min(e, len(t)) - 1]
    print(f"fold {k} {name:>14}: val ({len(old_val)} clips) picks ep {row['picked[val]']} -> test "
          f"{row['test_at_picked[val]']:.3f}, spearman {row['spearman[val]']:.2f}; val+ ({len(zs.val)} clips) picks ep "
          f"{row['picked[val+]']} -> {row['test_at_picked[val+]']:.3f}, spearman {row['spearman[val+]']:.2f}; oracle "
          f"ep {row['oracle_epoch']} -> {t.max():.3f}; ep5 {row['test_at_5']:.3f} ep10 {row['test_at_10']:.3f}",
          flush=True)
    for role, v in runs.items():
        print(f"   {role:<5}" + " ".join(f"{x:.2f}" for x in v), flush=True)
    return row


if __name__ == "__main__":
    main()

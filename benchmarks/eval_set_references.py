"""YAMNet's own scores on the debian-eval recordings, next to which `zsa evaluate --phrasings` is read.

    python benchmarks/eval_set_references.py [--data ~/zsa-eval/recordings]

Needs `zsa corpus build debian-eval --out ~/zsa-eval` and its recordings embedded with `yamnet+logits`
(`zsa embed ~/zsa-eval/recordings --embedder yamnet+logits --out ~/zsa-eval/recordings/stores/yamnet+logits-hop0.96`).
Every debian-eval label is an AudioSet class; YAMNet scores 521 of the 527: a label it lacks scores lowest.
Prints mAP (classes with >= 2 clips) and top-1 / top-3 accuracy over the dataset's labels, as `zsa evaluate
--phrasings` does for the AudioSet names.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path.home() / "zsa-eval" / "recordings"))
    args = ap.parse_args()
    from zeroshot_audio.assets.fetch import yamnet_class_map_path
    from zeroshot_audio.data import open_store, read_dataset
    from zeroshot_audio.embedders.yamnet import read_yamnet_class_names
    from zeroshot_audio.evaluation.metrics import mean_average_precision, top_k_accuracy
    from zeroshot_audio.train.distill import yamnet_own_scores

    ds = read_dataset(args.data)
    store = open_store(Path(args.data) / "stores" / "yamnet+logits-hop0.96")
    names = read_yamnet_class_names(yamnet_class_map_path())
    classes = list(ds.classes)
    y = ds.label_matrix(classes)
    own = yamnet_own_scores(store, ds.filenames, classes, names, column=slice(1024, None), missing=-1e9)
    cols = y.sum(axis=0) >= 2
    out = {"reference": "yamnet_own", "map": mean_average_precision(y[:, cols], own[:, cols])[0],
           "top1": top_k_accuracy(y, own, 1), "top3": top_k_accuracy(y, own, 3), "n_clips": int(len(y)),
           "n_classes": len(classes), "n_classes_map": int(cols.sum()),
           "labels_yamnet_lacks": [c for c in classes if c not in names]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

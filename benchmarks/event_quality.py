"""Events of the shipped default model against strong labels: before (attention-relative runs) and after
(per-segment probabilities, hysteresis, gap joining, interpolated boundaries).

    python benchmarks/event_quality.py --data ~/zsa-corpus --split val --grid    # chooses EventOptions' defaults
    python benchmarks/event_quality.py --data ~/zsa-corpus --split test          # the corpus's test scenes
    python benchmarks/event_quality.py --data ~/zsa-eval/scenes                  # debian-eval: the independent test

The labels are the dataset's class names, every one unseen (the default model's residual is untrained). The
store is ``DATA/stores/yamnet+logits-hop0.96``, or the ``yamnet`` and ``yamnet-logits`` stores of DATA joined
(``--store`` names another). Debian-eval's scenes are embedded with
``zsa embed ~/zsa-eval/scenes --embedder yamnet+logits --out ~/zsa-eval/scenes/stores/yamnet+logits-hop0.96``.

Printed, with sed_scores_eval, per system: segment-based F1 (1 s segments) and collar-based event F1 (onset
collar 0.2 s and 1.0 s, offset collar max(that, 20 % of the event)) of the emitted events, macro over classes
with events; the threshold-free intersection-based PSDS (DTC = GTC = 0.7, alpha_ct = 0, alpha_st = 1, max eFPR
100 per hour) of the detection curves; events per clip against the truth's; events on a minute of noise
(-40 and -26 dBFS white noise, the dataset's labels). Systems:

- ``before``: main's events (segments whose attention relative to its window's peak is >= 0.5, in windows whose
  probability is >= 0.5; detection curve: relative attention x window probability);
- ``threshold``: runs of ``p_t >= 0.5`` only (no hysteresis, no joining, segment boundaries);
- ``after``: :class:`zeroshot_audio.events.EventOptions` defaults (detection curve: ``p_t``); ``after, interp.
  curve`` scores ``p_t`` linearly interpolated between segment centres on a 0.12 s grid for PSDS.

``--grid`` also scores a grid of options (low, min_gap, min_duration, refine) and prints them best first by the
mean of segment F1 and 1 s collar F1: how the defaults were chosen (on the corpus's validation scenes).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")


def _writable_sed_scores_eval() -> None:
    """sed_scores_eval's Cython ``onset_offset_curves`` refuses the read-only arrays that pandas >= 3 (copy on
    write) gives from ``DataFrame.to_numpy()``: hand it copies (collar- and intersection-based metrics)."""
    from sed_scores_eval.base_modules import statistics

    if getattr(statistics.onset_offset_curves, "_copies", False):
        return
    original = statistics.onset_offset_curves

    def copying(scores, timestamps, change_point_candidates=None):
        cands = None if change_point_candidates is None else np.array(change_point_candidates)
        return original(np.array(scores), np.array(timestamps), cands)

    copying._copies = True
    statistics.onset_offset_curves = copying


def open_data_store(data: Path, store: str | None):
    from zeroshot_audio.data import open_store
    from zeroshot_audio.data.joined import JoinedStore

    if store:
        return open_store(store)
    stores = data / "stores"
    if (stores / "yamnet+logits-hop0.96").is_dir():
        return open_store(stores / "yamnet+logits-hop0.96")
    return JoinedStore(open_store(stores / "yamnet-hop0.96"), open_store(stores / "yamnet-logits-hop0.96"))


def old_detection(tagger, att: np.ndarray, clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Main's detection score (relative attention x window probability) and its event mask."""
    from zeroshot_audio.tagging import PRESENT

    t, n = att.shape
    w = tagger.window_segments
    n_win = clip.shape[0]
    win_of = np.arange(t) // w
    padded = np.zeros((n_win * w, n), np.float32)
    padded[:t] = att
    peak = np.maximum(padded.reshape(n_win, w, n).max(axis=1), 1e-12)
    prob = tagger.probability(clip)[win_of]
    rel = att / peak[win_of]
    return rel * prob, (rel >= 0.5) & (prob >= PRESENT)


def mask_events(mask: np.ndarray, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from zeroshot_audio.events import active_runs

    col, start, stop = active_runs(mask)
    return col, stamps[start], stamps[stop]


class Scored:
    """Per clip: timestamps, duration, attention, segment scores, clip scores (window) of the dataset's labels."""

    def __init__(self, tagger, store, ds, split: str | None, limit: int | None):
        from zeroshot_audio.events import frame_timestamps

        rows = [i for i, s in enumerate(ds.splits) if split in (None, "all") or s == split]
        if limit:
            rows = rows[:limit]
        self.files = [ds.filenames[i] for i in rows]
        self.classes = list(ds.classes)
        emb = tagger.label_embeddings(self.classes)
        srow = store.index_of(self.files)
        self.clips = []
        for a in range(0, len(rows), 256):
            x, m = store.batch(srow[a : a + 256])
            for j in range(x.shape[0]):
                n = int(m[j].sum())
                clip, att, seg = tagger._scores(np.asarray(x[j, :n], np.float32), emb)
                f = self.files[a + j]
                dur = float(store.durations[srow[a + j]])
                self.clips.append((f, frame_timestamps(n, tagger.embedder.hop, dur), dur, att, seg, clip))
        keep = set(self.files)
        self.truth = {f: [] for f in self.files}
        for e in ds.events:
            if e.filename in keep:
                self.truth[e.filename].append((float(e.onset), float(e.offset), e.label))
        self.with_events = sorted({lab for evs in self.truth.values() for *_, lab in evs})


def event_frames(events: dict[str, list[tuple[float, float, str]]], durations: dict[str, float], classes: list[str]):
    """Binary score frames (1 inside an event) that sed_scores_eval turns back into the events at threshold 0.5."""
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    index = {c: i for i, c in enumerate(classes)}
    frames = {}
    for f, evs in events.items():
        dur = durations[f]
        evs = [(max(0.0, a), min(dur, b), lab) for a, b, lab in evs if lab in index]
        cuts = np.unique(np.r_[0.0, dur, [a for a, _, _ in evs], [b for _, b, _ in evs]].round(6))
        mid = 0.5 * (cuts[:-1] + cuts[1:])
        sc = np.zeros((mid.size, len(classes)))
        for a, b, lab in evs:
            sc[(mid > a) & (mid < b), index[lab]] = 1.0
        frames[f] = create_score_dataframe(sc, cuts, classes)
    return frames


def score_events(sc: Scored, events: dict[str, list[tuple[float, float, str]]], *, fast: bool = False) -> dict:
    from sed_scores_eval import collar_based, segment_based

    classes = sc.with_events
    dur = {f: d for f, _, d, *_ in sc.clips}
    frames = event_frames(events, dur, classes)
    gt = {f: [e for e in sc.truth[f] if e[2] in classes] for f in sc.files}
    seg_f1 = segment_based.fscore(frames, gt, dur, 0.5, segment_length=1.0)[0]["macro_average"]
    out = {"segment_f1": seg_f1}
    for collar in ((1.0,) if fast else (0.2, 1.0)):
        f1 = collar_based.fscore(frames, gt, 0.5, onset_collar=collar, offset_collar=collar,
                                 offset_collar_rate=0.2)[0]["macro_average"]
        out[f"event_f1_{collar:g}s"] = f1
    out["events_per_clip"] = sum(len([e for e in evs if e[2] in classes]) for evs in events.values()) / len(events)
    return out


def psds(sc: Scored, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> float:
    from sed_scores_eval import intersection_based
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    classes = sc.with_events
    cols = [sc.classes.index(c) for c in classes]
    frames = {f: create_score_dataframe(np.asarray(v)[:, cols], ts, classes) for f, (ts, v) in curves.items()}
    dur = {f: d for f, _, d, *_ in sc.clips}
    gt = {f: [e for e in sc.truth[f] if e[2] in classes] for f in sc.files}
    return float(intersection_based.psds(frames, gt, dur, dtc_threshold=0.7, gtc_threshold=0.7, alpha_ct=0.0,
                                         alpha_st=1.0, unit_of_time="hour", max_efpr=100.0)[0])


def interpolated_curve(stamps: np.ndarray, p: np.ndarray, step: float = 0.12) -> tuple[np.ndarray, np.ndarray]:
    """``p [T, C]`` linear between segment centres (constant before the first and after the last) on a grid."""
    centres = 0.5 * (stamps[:-1] + stamps[1:])
    grid = np.r_[np.arange(0.0, stamps[-1], step), stamps[-1]]
    mid = 0.5 * (grid[:-1] + grid[1:])
    out = np.stack([np.interp(mid, centres, p[:, c]) for c in range(p.shape[1])], axis=1)
    return grid, out


def after_events(tagger, sc: Scored, options) -> dict[str, list[tuple[float, float, str]]]:
    from zeroshot_audio.events import probability_events
    from zeroshot_audio.tagging import PRESENT

    out = {}
    for f, stamps, _, _, seg, clip in sc.clips:
        p = tagger.probability(seg)
        win_of = np.arange(seg.shape[0]) // tagger.window_segments
        present = (tagger.probability(clip) >= PRESENT)[win_of]
        col, on, off, _ = probability_events(p, stamps, options, present=present)
        out[f] = [(a, b, sc.classes[c]) for c, a, b in zip(col.tolist(), on.tolist(), off.tolist())]
    return out


def before_events(tagger, sc: Scored) -> dict[str, list[tuple[float, float, str]]]:
    out = {}
    for f, stamps, _, att, _, clip in sc.clips:
        _, mask = old_detection(tagger, att, clip)
        col, on, off = mask_events(mask, stamps)
        out[f] = [(a, b, sc.classes[c]) for c, a, b in zip(col.tolist(), on.tolist(), off.tolist())]
    return out


def noise_events(tagger, labels: list[str], options) -> dict[str, dict[str, int]]:
    """Events on a minute of white noise at -40 and -26 dBFS: before and after."""
    from zeroshot_audio.events import frame_timestamps

    rng = np.random.default_rng(4)
    emb = tagger.label_embeddings(labels)
    out: dict[str, dict[str, int]] = {"before": {}, "after": {}}
    for db in (-40, -26):
        wav = (10 ** (db / 20) * rng.standard_normal(16000 * 60)).astype(np.float32)
        _, o = tagger._embed(wav, 16000)
        clip, att, seg = tagger._scores(o.embeddings, emb)
        stamps = frame_timestamps(o.embeddings.shape[0], tagger.embedder.hop, o.duration)
        out["before"][f"{db} dBFS"] = int(mask_events(old_detection(tagger, att, clip)[1], stamps)[0].size)
        res = tagger.tag_encoded(wav, labels, emb, sample_rate=16000, event_options=options)
        out["after"][f"{db} dBFS"] = sum(len(r.events) for r in res.labels)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path.home() / "zsa-eval" / "scenes"))
    ap.add_argument("--store", default=None, help="a yamnet+logits store of DATA (default: see above)")
    ap.add_argument("--split", default="test", help="train, val, test or all (default: %(default)s)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N clips of the split")
    ap.add_argument("--grid", action="store_true", help="also score a grid of event options")
    args = ap.parse_args()

    from zeroshot_audio import load_model
    from zeroshot_audio.data import read_dataset
    from zeroshot_audio.events import EventOptions

    _writable_sed_scores_eval()
    t0 = time.perf_counter()
    tagger = load_model("default")
    ds = read_dataset(args.data)
    store = open_data_store(Path(args.data), args.store)
    sc = Scored(tagger, store, ds, args.split, args.limit)
    n_truth = sum(len([e for e in v if e[2] in sc.with_events]) for v in sc.truth.values()) / len(sc.files)
    print(f"{args.data} split {args.split}: {len(sc.files)} clips, {len(sc.with_events)} classes with events, "
          f"{n_truth:.2f} true events per clip; scored in {time.perf_counter() - t0:.0f} s")
    defaults = EventOptions()
    plain = EventOptions(threshold=0.5, low=0.5, min_gap=0.0, min_duration=0.0, refine="none")
    rows = {"before": before_events(tagger, sc), "threshold": after_events(tagger, sc, plain),
            "after": after_events(tagger, sc, defaults)}
    results = {k: score_events(sc, v) for k, v in rows.items()}
    results["before"]["psds"] = psds(sc, {f: (ts, old_detection(tagger, att, clip)[0])
                                          for f, ts, _, att, _, clip in sc.clips})
    results["after"]["psds"] = psds(sc, {f: (ts, tagger.probability(seg)) for f, ts, _, _, seg, _ in sc.clips})
    results["after, interp. curve"] = {"psds": psds(sc, {f: interpolated_curve(ts, tagger.probability(seg))
                                                         for f, ts, _, _, seg, _ in sc.clips})}
    noise = noise_events(tagger, sc.classes, defaults)
    results["before"]["noise_events"] = noise["before"]
    results["after"]["noise_events"] = noise["after"]
    print(f"defaults: {defaults}")
    print(f"{'system':22s} {'seg F1':>7s} {'ev F1 .2s':>9s} {'ev F1 1s':>8s} {'PSDS':>6s} {'ev/clip':>7s}  "
          f"noise events (-40 / -26 dBFS)")
    def fmt(r, key, width):
        v = r.get(key)
        return f"{v:{width}.3f}" if isinstance(v, float) else " " * (width - 1) + "-"

    for k, r in results.items():
        nz = r.get("noise_events")
        print(f"{k:22s} {fmt(r, 'segment_f1', 7)} {fmt(r, 'event_f1_0.2s', 9)} {fmt(r, 'event_f1_1s', 8)} "
              f"{fmt(r, 'psds', 6)} {fmt(r, 'events_per_clip', 7)}  {' / '.join(map(str, nz.values())) if nz else '-'}")
    print(f"{'truth':22s} {'':7s} {'':9s} {'':8s} {'':6s} {n_truth:7.3f}")
    print(json.dumps({"data": args.data, "split": args.split, "n_clips": len(sc.files), "truth_per_clip": n_truth,
                      "defaults": defaults.__dict__, "results": results}))

    if args.grid:
        grid = []
        for low, gap, mind, ref in itertools.product((0.5, 0.4, 0.3, 0.2, 0.1), (0.0, 0.5, 1.0, 2.0),
                                                     (0.0, 0.5, 1.0), ("none", "interpolate")):
            opts = EventOptions(threshold=0.5, low=low, min_gap=gap, min_duration=mind, refine=ref)
            r = score_events(sc, after_events(tagger, sc, opts), fast=True)
            grid.append(((r["segment_f1"] + r["event_f1_1s"]) / 2, opts, r))
        grid.sort(key=lambda g: -g[0])
        print("grid, best first by (segment F1 + 1 s collar event F1) / 2:")
        for score, o, r in grid[:15]:
            print(f"  {score:.3f}  low {o.low:.1f}  min_gap {o.min_gap:.1f}  min_duration {o.min_duration:.1f}  "
                  f"{o.refine:11s}  seg F1 {r['segment_f1']:.3f}  ev F1 1s {r['event_f1_1s']:.3f}  "
                  f"ev/clip {r['events_per_clip']:.2f}")


if __name__ == "__main__":
    main()

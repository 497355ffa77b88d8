"""Output writers (``zeroshot_audio.writers``) on real tagging results of the example clips, and ``zsa tag``'s
``--format jsonl`` and ``--timelines``: every format is read back by an independent reader (json, csv,
sed_scores_eval) and compared with the :class:`TagResult` it came from."""

import csv
import dataclasses
import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from zeroshot_audio import DataError, ParameterError
from zeroshot_audio.cli import main
from zeroshot_audio.events import EventOptions
from zeroshot_audio.writers import FORMATS, get_writer, output_names, select_labels, timeline_rows

EXAMPLES = Path(__file__).parents[1] / "examples"
sys.path.insert(0, str(Path(__file__).parent))
from _event_reference import reference_events  # noqa: E402

LABELS = ["dog barking", "cow mooing", "a rooster crowing", "rain on a roof"]


@pytest.fixture(scope="module")
def results(embedder):
    from zeroshot_audio import load_model

    mp = pytest.MonkeyPatch()
    mp.setenv("ZSA_CACHE_DIR", str(Path(embedder.model_path).parents[2]))
    try:
        tagger = load_model()
        return tagger.tag_batch([EXAMPLES / "dog.flac", EXAMPLES / "cow.flac"], labels=LABELS)
    finally:
        mp.undo()


@pytest.fixture
def yamnet_cache(embedder, monkeypatch):
    monkeypatch.setenv("ZSA_CACHE_DIR", str(Path(embedder.model_path).parents[2]))


def _read_sed_scores(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dcase_util imports pkg_resources
        from sed_scores_eval import io as sed_io

    return sed_io.read_sed_scores(path)


def _written(fmt, results, **options):
    buf = io.StringIO()
    with get_writer(fmt, buf, **options) as w:
        for res in results:
            w.write(res)
    return buf.getvalue()


def test_unknown_format_and_wrong_targets_are_refused(tmp_path):
    with pytest.raises(ParameterError, match="unknown output format 'xml'") as err:
        get_writer("xml")
    for name in FORMATS:
        assert name in str(err.value)
    with pytest.raises(ParameterError, match="events format writes to a file"):
        get_writer("events")
    with pytest.raises(ParameterError, match="timelines format writes to a directory"):
        get_writer("timelines", io.StringIO())
    with pytest.raises(ParameterError, match="text stream"):
        get_writer("csv", tmp_path / "x.csv")
    with pytest.raises(ParameterError, match="threshold"):
        get_writer("table", threshold=1.5)


def test_json_and_jsonl_give_each_result_as_one_line(results):
    text = _written("jsonl", results)
    assert text == _written("json", results)
    lines = text.splitlines()
    assert len(lines) == len(results)
    for line, res in zip(lines, results):
        doc = json.loads(line)
        assert doc == json.loads(json.dumps(res.to_json()))
        assert [x["label"] for x in doc["labels"]] == [r.label for r in res.labels]  # best first, every label


def test_csv_rows_are_the_selected_labels(results):
    rows = list(csv.DictReader(io.StringIO(_written("csv", results, top_k=2))))
    assert len(rows) == 2 * len(results)
    for res, pair in zip(results, (rows[:2], rows[2:])):
        for row, r in zip(pair, res.labels[:2]):
            assert row["file"] == res.file and row["label"] == r.label
            assert float(row["score"]) == pytest.approx(r.score, abs=5e-5)
            assert float(row["probability"]) == pytest.approx(r.probability, abs=5e-5)
    threshold = float(np.median([r.probability for res in results for r in res.labels]))
    rows = list(csv.DictReader(io.StringIO(_written("csv", results, threshold=threshold))))
    expected = [(res.file, r.label) for res in results for r in res.labels if r.probability >= threshold]
    assert [(row["file"], row["label"]) for row in rows] == expected and 0 < len(expected) < 8


def test_table_shows_top_k_lines_per_file_with_the_events_of_likely_labels(results):
    lines = _written("table", results, top_k=3).splitlines()
    assert len(lines) == 4 * len(results)
    dog = results[0]
    assert lines[0].startswith(f"{dog.file}  (6.0 s)")
    best = dog.labels[0]
    assert best.probability >= 0.5 and lines[1].split()[0] == "*"  # judged present: marked
    assert lines[1].split()[3:5] == best.label.split()[:2]
    a, b, _ = best.events[0]
    assert f"[{a:.1f}-{b:.1f} s" in lines[1]
    for line, r in zip(lines[2:4], dog.labels[1:3]):  # the others: marked and with events only when present
        assert (line.split()[0] == "*") == (r.probability >= 0.5) and ("[" in line) == bool(r.events)
        assert bool(r.events) <= (r.probability >= 0.5)


def test_events_tsv_holds_the_best_label_or_the_selection_and_refuses_a_tab(results, tmp_path):
    renamed = dataclasses.replace(results[1], file=str(tmp_path / "bad\tname.flac"))
    path = tmp_path / "ev.tsv"
    with get_writer("events", path) as w:
        for res in (results[0], renamed):
            w.write(res)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "filename\tonset\toffset\tevent_label"
    best = results[0].labels[0]
    assert lines[1:] == [f"{results[0].file}\t{a:.3f}\t{b:.3f}\t{best.label}" for a, b, _ in best.events]
    assert w.skipped == {renamed.file: "file name not representable in TSV"}
    with get_writer("events", path, top_k=2) as w:
        w.write(results[0])
    rows = [ln.split("\t") for ln in path.read_text(encoding="utf-8").splitlines()[1:]]
    assert {r[3] for r in rows} == {r.label for r in select_labels(results[0], top_k=2) if r.events}
    assert len(rows) == sum(len(r.events) for r in results[0].labels[:2])


def test_nan_is_never_written_as_json(results):
    res = results[0]
    bad = dataclasses.replace(res, labels=[dataclasses.replace(res.labels[0], score=float("nan")), *res.labels[1:]])
    buf = io.StringIO()
    w = get_writer("jsonl", buf)
    with pytest.raises(DataError, match="NaN or infinity"):
        w.write(bad)
    assert buf.getvalue() == "" and res.file in w.skipped


def test_non_utf8_names_are_escaped_in_every_text_format(results, tmp_path):
    res = dataclasses.replace(results[0], file="/x/lat\udce9.flac")  # the byte 0xE9 of a Latin-1 name
    for fmt in ("table", "csv"):
        text = _written(fmt, [res])
        assert "/x/lat\\xe9.flac" in text
        text.encode("utf-8")  # printable as UTF-8


def tagger_probability(scores):
    """The default model's calibration from its config.json (independent of :meth:`Tagger.probability`)."""
    from zeroshot_audio.tagging import DEFAULT_MODEL_DIR

    cal = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())["info"]["calibration"]
    return 1 / (1 + np.exp(-(cal["scale"] * np.asarray(scores, np.float64) + cal["bias"])))


def test_timelines_read_back_by_sed_scores_eval_and_give_the_events(results, tmp_path):
    out = tmp_path / "tl"
    with get_writer("timelines", out, labels=LABELS) as w:
        for res in results:
            w.write(res)
    assert sorted(p.name for p in out.iterdir()) == ["cow.flac.tsv", "dog.flac.tsv"]
    scores = _read_sed_scores(out)
    assert sorted(scores) == ["cow.flac", "dog.flac"]
    for res in results:
        df = scores[Path(res.file).name]
        assert list(df.columns) == ["onset", "offset", *LABELS]
        by_name = {r.label: r for r in res.labels}
        t = len(res.segment_times)
        assert len(df) == t
        np.testing.assert_allclose(df["onset"], res.segment_times[:, 0], atol=5e-4)
        assert df["offset"].iloc[-1] == pytest.approx(res.duration, abs=5e-4)
        for lab in LABELS:
            r = by_name[lab]
            col = df[lab].to_numpy()
            np.testing.assert_allclose(col, r.detection, rtol=1e-5, atol=1e-12)
            # the detection is p_t, the calibration applied to the segment scores; one window: the events are those
            # of the written curve (the scalar reference of EventOptions), when the label is judged present
            np.testing.assert_allclose(col, tagger_probability(r.segment_scores), rtol=1e-5)
            stamps = np.r_[df["onset"].to_numpy(), df["offset"].iloc[-1]]
            ref = reference_events(col.tolist(), stamps.tolist(), EventOptions()) if r.probability >= 0.5 else []
            assert [t for e in ref for t in e[:2]] == pytest.approx([t for a, b, _ in r.events for t in (a, b)],
                                                                    abs=2e-3), lab
            if r.events:
                assert max(s for _, _, s in r.events) == pytest.approx(col.max(), rel=1e-5)
    assert sum(len(r.events) for res in results for r in res.labels) >= 2  # not a comparison of empty lists
    # the dog clip's timeline: the dog barks louder than any other label sounds, anywhere
    dog = scores["dog.flac"]
    assert dog["dog barking"].max() > dog[LABELS[1:]].to_numpy().max()


def test_timelines_names_stay_unique_without_a_name_map(results, tmp_path):
    twin = dataclasses.replace(results[1], file=str(tmp_path / "other" / "dog.flac"))
    with get_writer("timelines", tmp_path / "tl") as w:
        w.write(results[0])
        w.write(twin)
    assert [p.name for p in w.written] == ["dog.flac.tsv", "dog.flac-2.tsv"]
    stamps, labels, det = timeline_rows(results[0])
    assert labels == sorted(LABELS) and det.shape == (len(results[0].segment_times), 4)
    assert stamps.shape == (det.shape[0] + 1,) and np.all(np.diff(stamps) > 0)
    assert output_names([tmp_path / "a" / "x.wav", tmp_path / "b" / "x.wav"], ".tsv") == ["a_x.wav.tsv",
                                                                                           "b_x.wav.tsv"]


def test_cli_jsonl_and_timelines(tmp_path, capsys, yamnet_cache):
    for sub, clip in (("a", "dog.flac"), ("b", "cow.flac")):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "x.flac").write_bytes((EXAMPLES / clip).read_bytes())
    argv = ["tag", str(tmp_path / "a"), str(tmp_path / "b"), "--labels", "rain;dog barking", "--quiet"]
    assert main([*argv, "--format", "json"]) == 0
    as_json = capsys.readouterr().out
    assert main([*argv, "--format", "jsonl", "--timelines", str(tmp_path / "tl")]) == 0
    assert capsys.readouterr().out == as_json and len(as_json.splitlines()) == 2
    scores = _read_sed_scores(tmp_path / "tl")
    assert sorted(scores) == ["a_x.flac", "b_x.flac"]  # named like the --plot PNGs
    assert list(scores["a_x.flac"].columns) == ["onset", "offset", "rain", "dog barking"]  # the order given
    docs = [json.loads(line) for line in as_json.splitlines()]
    dog = next(d for d in docs if d["file"].endswith("a/x.flac"))
    best = next(x for x in dog["labels"] if x["label"] == "dog barking")
    assert max(e["score"] for e in best["events"]) == pytest.approx(scores["a_x.flac"]["dog barking"].max(), abs=1e-4)


def test_cli_timelines_into_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "dog", "--timelines", str(tmp_path / "f")]) == 2
    assert "--timelines" in capsys.readouterr().err


def test_table_shows_a_clip_shorter_than_a_second_in_hundredths(results):
    import dataclasses

    short = dataclasses.replace(results[0], duration=0.03)
    assert _written("table", [short], top_k=1).splitlines()[0] == f"{short.file}  (0.03 s)  present  probability  " \
        "score  label  [when]"

"""Parquet results (``zsa tag --format parquet --out DIR``, :class:`zeroshot_audio.writers.ParquetWriter`), in
this process: the rows equal the single-process tagging results, a rerun does nothing, a changed file is tagged
again without a doubled row, a killed run's leftovers are cleaned, and plain ``zsa tag`` never imports pyarrow."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

from zeroshot_audio.cli import main  # noqa: E402
from zeroshot_audio.cluster import tag_to_parquet  # noqa: E402
from zeroshot_audio.writers import ParquetWriter, read_parquet_results  # noqa: E402

EXAMPLES = Path(__file__).parents[1] / "examples"
LABELS = ["dog barking", "cow mooing", "a rooster crowing", "rain on a roof"]


@pytest.fixture
def yamnet_cache(embedder, monkeypatch):
    monkeypatch.setenv("ZSA_CACHE_DIR", str(Path(embedder.model_path).parents[2]))


def make_inputs(folder: Path) -> list[str]:
    """The example clips, generated clips (a stereo 44.1 kHz tone, noise, a clip shorter than a segment, a silent
    one) and a corrupt file; returns their paths, sorted."""
    folder.mkdir(parents=True, exist_ok=True)
    for clip in EXAMPLES.glob("*.flac"):
        (folder / clip.name).write_bytes(clip.read_bytes())
    rng = np.random.default_rng(7)
    t = np.arange(int(44100 * 4.5)) / 44100
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    sf.write(folder / "tone_stereo.wav", np.stack([tone, 0.5 * tone], axis=1), 44100)
    sf.write(folder / "noise.flac", 0.1 * rng.standard_normal(16000 * 12).astype(np.float32), 16000)
    sf.write(folder / "short.wav", 0.2 * rng.standard_normal(4000).astype(np.float32), 16000)
    sf.write(folder / "silent.wav", np.zeros(16000 * 2, np.float32), 16000)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    return sorted(str(p) for p in folder.iterdir())


def reference(tagger, files, labels=LABELS, examples=None):
    """``{(file, label): (score, probability)}``, ``{file: events}`` and the failed files, tagged one by one as
    ``zsa tag`` does (with ``examples``: labels given by example)."""
    labels, emb, prototypes, _ = tagger.label_set(labels, examples)
    tags, events, failed = {}, {}, set()
    for f in files:
        try:
            res = tagger.tag_encoded(f, labels, emb, prototypes=prototypes)
        except Exception:
            failed.add(f)
            continue
        for r in res.labels:
            tags[(f, r.label)] = (r.score, r.probability)
        events[f] = sorted((r.label, a, b, s) for r in res.labels for a, b, s in r.events)
    return tags, events, failed


def check_equal(out: Path, files, ref) -> None:
    """The results directory ``out`` holds exactly the reference rows (scores to 1e-6), each once."""
    tags, events, failed = ref
    got = read_parquet_results(out)
    assert not got.duplicated(["file", "label"]).any()
    assert set(zip(got.file, got.label)) == set(tags)
    for row in got.itertuples():
        score, prob = tags[(row.file, row.label)]
        assert abs(row.score - score) <= 1e-6 and abs(row.probability - prob) <= 1e-6
        assert row.present == (prob >= 0.5)
    ev = read_parquet_results(out, "events")
    for f in set(files) - failed:
        mine = sorted((r.label, r.onset, r.offset, r.score) for r in ev[ev.file == f].itertuples())
        want = sorted(events.get(f, []))
        assert len(mine) == len(want)
        assert np.allclose(np.array([m[1:] for m in mine]).reshape(-1, 3),
                           np.array([w[1:] for w in want]).reshape(-1, 3), atol=1e-6)
        assert [m[0] for m in mine] == [w[0] for w in want]
    fails = read_parquet_results(out, "failures")
    assert set(fails.file) == failed and not fails.file.duplicated().any()
    assert all(Path(f).name in e for f, e in zip(fails.file, fails.error))


def test_local_parquet_equals_single_process_tags_and_a_rerun_does_nothing(tagger, tmp_path, yamnet_cache):
    files = make_inputs(tmp_path / "in")
    ref = reference(tagger, files)
    out = tmp_path / "out"
    s = tag_to_parquet(files, out, labels=LABELS, files_per_part=3, progress=False)
    assert s.n_tagged == len(files) - 1 and set(s.failures) == {str(tmp_path / "in" / "corrupt.wav")}
    assert s.silent == [str(tmp_path / "in" / "silent.wav")]
    check_equal(out, files, ref)
    assert len(list((out / "tags.parquet").glob("part-*.parquet"))) == 3  # 8 files, 3 per part
    again = tag_to_parquet(files, out, labels=LABELS, progress=False)
    assert (again.n_tagged, again.n_skipped, again.failed_before) == (0, len(files), [files[0]])
    check_equal(out, files, ref)
    # pandas reads each table directory as one table
    assert len(pd.read_parquet(out / "tags.parquet")) == len(ref[0])


def test_a_changed_file_is_tagged_again_and_its_old_rows_go(tagger, tmp_path, yamnet_cache):
    files = make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    tag_to_parquet(files, out, labels=LABELS, files_per_part=4, progress=False)
    dog = tmp_path / "in" / "dog.flac"
    dog.write_bytes((EXAMPLES / "cow.flac").read_bytes())  # same name, other content, other size
    s = tag_to_parquet(files, out, labels=LABELS, progress=False)
    assert s.n_tagged == 1 and s.n_skipped == len(files) - 1
    check_equal(out, files, reference(tagger, files))
    # --retry-failed: the corrupt file is tried again (and fails again, once)
    s = tag_to_parquet(files, out, labels=LABELS, progress=False, retry_failed=True)
    assert s.n_tagged == 0 and len(s.failures) == 1 and s.failed_before == []
    assert len(read_parquet_results(out, "failures")) == 1


def test_leftovers_of_a_killed_run_are_removed(tmp_path):
    """A part without its marker (killed before its commit) and temporaries go; a rewrite cut short is finished."""
    out = tmp_path / "out"
    w = ParquetWriter(out, part_files=10)
    w.keys = {"a.wav": (1, 1), "b.wav": (2, 2)}
    w.add_failure("a.wav", "a.wav: broken")
    w.add_failure("b.wav", "b.wav: broken")
    name = w.commit()
    orphan = out / "failures.parquet" / "part-orphan.parquet"
    orphan.write_bytes((out / "failures.parquet" / f"part-{name}.parquet").read_bytes())
    (out / "tags.parquet" / ".part-x.parquet.abc.tmp").write_bytes(b"half")
    w2 = ParquetWriter(out)
    assert w2.resume(["a.wav", "b.wav", "c.wav"], keys=[(1, 1), (3, 3), (4, 4)]) == ["b.wav", "c.wav"]
    assert not orphan.exists() and not list((out / "tags.parquet").glob(".*.tmp"))
    assert sorted(read_parquet_results(out, "failures").file) == ["a.wav"]  # b.wav changed: its row went
    # a rewrite killed after its new part: both markers exist; the next run drops the replaced one
    w3 = ParquetWriter(out)
    w3.keys = {"a.wav": (1, 1)}
    w3.add_failure("a.wav", "a.wav: broken")
    kept = [p.name for p in (out / "_done").iterdir()]
    w3.commit("new", metadata={"replaces": kept[0][len("part-"): -len(".parquet")]})
    assert ParquetWriter(out).resume(["a.wav"], keys=[(1, 1)]) == []
    assert sorted(p.name for p in (out / "_done").iterdir()) == ["part-new.parquet"]
    assert list(read_parquet_results(out, "failures").file) == ["a.wav"]


def test_cli_parquet_exit_codes_and_refusals(tagger, tmp_path, capsys, yamnet_cache):
    files = make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["tag", str(tmp_path / "in"), "--labels", ";".join(LABELS), "--out", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "corrupt.wav" in captured.err and captured.out.startswith(f"tagged {len(files) - 1}, already done 0")
    assert main(["tag", str(tmp_path / "in"), "--labels", ";".join(LABELS), "--out", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "already done 8" in captured.out and "--retry-failed" in captured.err
    assert main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "rain", "--out", str(out)]) == 2
    assert "other labels" in capsys.readouterr().err
    assert main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "rain", "--format", "parquet"]) == 2
    assert "needs --out" in capsys.readouterr().err
    assert main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "rain", "--out", str(out), "--plot", "p"]) == 2
    assert "--plot" in capsys.readouterr().err
    assert main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "rain", "--workers", "2"]) == 2
    assert "--workers is for --format parquet" in capsys.readouterr().err
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two files\n{EXAMPLES / 'dog.flac'}\n\n{EXAMPLES / 'cow.flac'}\n")
    assert main(["tag", "--files-from", str(listing), "--labels", "rain", "--out", str(tmp_path / "o2")]) == 0
    assert sorted(read_parquet_results(tmp_path / "o2").file.unique()) == [str(EXAMPLES / "cow.flac"),
                                                                            str(EXAMPLES / "dog.flac")]


def test_file_urls_are_read_through_pyarrow(tagger, tmp_path, yamnet_cache):
    from zeroshot_audio.cluster import list_inputs

    make_inputs(tmp_path / "in")
    urls = list_inputs([f"file://{tmp_path / 'in'}"])
    assert len(urls) == 8 and all(u.startswith("file://") for u in urls)
    s = tag_to_parquet(urls, tmp_path / "out", labels=LABELS, progress=False)
    assert s.n_tagged == 7 and len(s.failures) == 1
    got = read_parquet_results(tmp_path / "out")
    dog = got[got.file == f"file://{tmp_path / 'in' / 'dog.flac'}"]
    res = tagger.tag(tmp_path / "in" / "dog.flac", labels=LABELS)
    assert np.allclose(sorted(dog.score), sorted(r.score for r in res.labels), atol=1e-6)


def test_plain_tag_imports_neither_pyarrow_nor_ray(embedder, tmp_path):
    code = ("import sys\nfrom zeroshot_audio.cli import main\n"
            f"code = main(['tag', {str(EXAMPLES / 'dog.flac')!r}, '--labels', 'dog barking', '--format', 'jsonl'])\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pyarrow', 'ray', 'pandas'))\n"
            "print(code, heavy, file=sys.stderr)\n")
    env = {**os.environ, "ZSA_CACHE_DIR": str(Path(embedder.model_path).parents[2])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.stderr.strip().splitlines()[-1] == "0 []", done.stderr


def test_a_second_run_into_a_busy_results_directory_stops_with_one_line(tagger, tmp_path, capsys, yamnet_cache):
    """Another process holds the directory (as a running `zsa tag --out` does): a second run refuses it, touches no
    file in it, and runs once the first has ended."""
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom zeroshot_audio.writers import ParquetWriter\n"
         f"with ParquetWriter({str(out)!r}).locked():\n    print('held', flush=True)\n    sys.stdin.readline()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert holder.stdout.readline().strip() == "held"
        before = sorted(p.name for p in out.iterdir())
        assert main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "rain", "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "another run is writing into this results directory" in err[0]
        assert f"pid {holder.pid}" in err[0] and str(out) in err[0]
        assert sorted(p.name for p in out.iterdir()) == before
    finally:
        holder.communicate("\n", timeout=30)
    assert main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "rain", "--out", str(out), "--quiet"]) == 0
    assert list(read_parquet_results(out).file.unique()) == [str(EXAMPLES / "dog.flac")]


def test_labels_given_by_example_into_parquet(tagger, tmp_path, capsys, yamnet_cache):
    """--examples with --out: the same rows as tagging each file with those examples; other examples are refused."""
    files = make_inputs(tmp_path / "in")
    ex = tmp_path / "ex"
    for label, clip in (("dog barking", "dog.flac"), ("farm bird", "rooster.flac")):
        (ex / label).mkdir(parents=True)
        (ex / label / clip).write_bytes((EXAMPLES / clip).read_bytes())
    from zeroshot_audio.examples import read_examples

    ref = reference(tagger, files, LABELS, read_examples(ex))
    assert ("farm bird" in {lab for _, lab in ref[0]}) and len({lab for _, lab in ref[0]}) == len(LABELS) + 1
    out = tmp_path / "out"
    assert main(["tag", str(tmp_path / "in"), "--labels", ";".join(LABELS), "--examples", str(ex), "--out", str(out),
                 "--quiet"]) == 1  # the corrupt file
    check_equal(out, files, ref)
    capsys.readouterr()
    (ex / "farm bird" / "rooster.flac").write_bytes((EXAMPLES / "cow.flac").read_bytes())  # other examples
    assert main(["tag", str(tmp_path / "in"), "--labels", ";".join(LABELS), "--examples", str(ex), "--out", str(out),
                 "--quiet"]) == 2
    assert "other examples" in capsys.readouterr().err
    check_equal(out, files, ref)

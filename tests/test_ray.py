"""``zsa tag`` and ``zsa embed`` on Ray (:mod:`zeroshot_audio.cluster`), on a local Ray instance started once for
the module (2 CPUs, no dashboard): the Parquet rows equal single-process tagging, a rerun does nothing, a worker
killed with SIGKILL mid-run is retried and the run completes with the same rows and none twice, failures are
recorded; the embedding store written by Ray actors holds what ``zsa embed`` writes."""

import logging
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ray = pytest.importorskip("ray")
pytest.importorskip("pyarrow")

sys.path.insert(0, str(Path(__file__).parent))
from test_parquet import EXAMPLES, LABELS, check_equal, make_inputs, reference  # noqa: E402
from zeroshot_audio.cli import main  # noqa: E402
from zeroshot_audio.cluster import embed_to_store_ray, tag_to_parquet  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def ray_instance(embedder):
    """One local Ray instance for the module; its workers inherit ZSA_CACHE_DIR (where YAMNet is set up)."""
    old = os.environ.get("ZSA_CACHE_DIR")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["ZSA_CACHE_DIR"] = str(Path(embedder.model_path).parents[2])
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    finally:
        if old is None:
            os.environ.pop("ZSA_CACHE_DIR", None)
        else:
            os.environ["ZSA_CACHE_DIR"] = old
    yield
    ray.shutdown()


@pytest.fixture
def yamnet_cache(embedder, monkeypatch):
    monkeypatch.setenv("ZSA_CACHE_DIR", str(Path(embedder.model_path).parents[2]))


def test_ray_tag_equals_single_process_and_a_rerun_does_nothing(tagger, tmp_path, yamnet_cache):
    """With labels given by text, by text and examples, and by examples alone."""
    files = make_inputs(tmp_path / "in")
    examples = {"dog barking": [str(EXAMPLES / "dog.flac")], "farm bird": [str(EXAMPLES / "rooster.flac")]}
    ref = reference(tagger, files, LABELS, examples)
    out = tmp_path / "out"
    pids = set()
    s = tag_to_parquet(files, out, labels=LABELS, examples=examples, engine="ray", workers=2, files_per_part=2,
                       progress=False, on_chunk=lambda row: pids.add(row["pid"]))
    assert s.n_tagged == len(files) - 1 and list(s.failures) == [str(tmp_path / "in" / "corrupt.wav")]
    assert "corrupt.wav" in s.failures[str(tmp_path / "in" / "corrupt.wav")]
    # actors did the work, not this process (both of them unless one started late on a busy machine: timing)
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids
    check_equal(out, files, ref)
    again = tag_to_parquet(files, out, labels=LABELS, examples=examples, engine="ray", workers=2, progress=False)
    assert (again.n_tagged, again.n_skipped, len(again.failures)) == (0, len(files), 0)
    check_equal(out, files, ref)


def test_a_worker_killed_mid_run_is_retried_and_no_row_is_lost_or_doubled(tagger, tmp_path, yamnet_cache, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(8):  # 40 s each: a chunk takes a while, so the kill lands while a chunk is being tagged
        t = np.arange(16000 * 40) / 16000
        wav = 0.2 * np.sin(2 * np.pi * (200 + 90 * i) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(folder / f"clip{i}.flac", wav.astype(np.float32), 16000)
    (folder / "corrupt.wav").write_bytes(b"not audio at all")
    files = sorted(str(p) for p in folder.iterdir())
    killed: list[int] = []
    after: list[int] = []

    def kill_first(row):
        if not killed:
            os.kill(int(row["pid"]), signal.SIGKILL)  # the actor has taken its next chunk meanwhile
            killed.append(int(row["pid"]))
        else:
            after.append(int(row["pid"]))

    code_out = tmp_path / "out"
    s = tag_to_parquet(files, code_out, labels=LABELS, engine="ray", workers=2, files_per_part=1, progress=False,
                       on_chunk=kill_first)
    # the kill came with 8 of the 9 chunks still to report (rows the killed actor made before it may still arrive);
    # the chunk it held is retried, by its restarted actor (a new process) or the other one: timing decides
    assert killed and len(after) == 8
    assert s.n_tagged == 8 and len(s.failures) == 1
    check_equal(code_out, files, reference(tagger, files))
    # the CLI over the same directory: nothing to do, and the exit code still says a file failed
    assert main(["tag", str(folder), "--labels", ";".join(LABELS), "--out", str(code_out), "--engine", "ray",
                 "--quiet"]) == 1
    assert "already done 9" in capsys.readouterr().out


def test_ray_embed_writes_the_store_zsa_embed_writes(tmp_path, yamnet_cache):
    from zeroshot_audio.data.store import open_store
    from zeroshot_audio.embed import embed_to_store, resolve_inputs

    make_inputs(tmp_path / "in")
    items = resolve_inputs([tmp_path / "in"])
    local = embed_to_store(items, tmp_path / "local", progress=False)
    pids = set()
    s = embed_to_store_ray(items, tmp_path / "ray", workers=2, files_per_shard=2, progress=False,
                           on_chunk=lambda row: pids.add(row["pid"]))
    assert (s.n_embedded, list(s.failures)) == (local.n_embedded, ["corrupt.wav"]) and len(pids) == 2
    a, b = open_store(tmp_path / "local"), open_store(tmp_path / "ray")
    assert sorted(a.keys) == sorted(b.keys) and b.failures.keys() == {"corrupt.wav"}
    for key in a.keys:
        assert np.array_equal(a.get(key), b.get(key))
    assert np.allclose(a.durations[a.index_of(sorted(a.keys))], b.durations[b.index_of(sorted(a.keys))])
    again = embed_to_store_ray(items, tmp_path / "ray", workers=2, progress=False)
    assert again.n_embedded == 0 and again.n_skipped == len(items) - 1  # only the failed file is tried again
    assert sorted(open_store(tmp_path / "ray").keys) == sorted(a.keys)


def test_cli_embed_on_ray_and_its_failures(tmp_path, capsys, yamnet_cache):
    make_inputs(tmp_path / "in")
    assert main(["embed", str(tmp_path / "in"), "--out", str(tmp_path / "st"), "--engine", "ray", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "corrupt.wav" in captured.err and captured.out.startswith("embedded 7, already in store 0, failed 1")

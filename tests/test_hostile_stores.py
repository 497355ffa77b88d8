"""Hostile inputs and misuse: each case fails with a one-line error naming the input, or is handled safely."""

from __future__ import annotations

import json
import logging
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import zeroshot_audio
from zeroshot_audio._errors import DataError, StoreError
from zeroshot_audio.cli import main
from zeroshot_audio.data import StoreMeta, StoreWriter, open_store

sys.path.insert(0, str(Path(__file__).parent))
from test_embed import BandEnergy  # noqa: E402  (the cheap deterministic embedder of the embed tests)

# ----------------------------------------------------------------------------------------------------------------
# Issue 8, items 2 (two writers, one store), 10 (stores and directories) and the store / TFRecord parts of item 6
# (0-byte shard, malformed index, huge counts, TFRecord length fields of 2^40 and 2^63).

SRC = str(Path(zeroshot_audio.__file__).resolve().parents[1])
META = StoreMeta(embedder="toy", embedder_version="1", dim=8, hop=0.5, dtype="float32")


def _seg(key: str, dim: int = 8) -> np.ndarray:
    """The deterministic segments of clip ``key`` (what the writer subprocess adds)."""
    rng = np.random.default_rng(sum(map(ord, key)))
    return rng.standard_normal((1 + len(key) % 3, dim)).astype(np.float32)


# A writer process on the real store API (meta.json content in argv[2]): adds a0..a2 (shard size 2: one shard
# written, one clip pending), says "ready", then on a line from stdin adds a3, a4 and closes.
WRITER = """
import json, sys, numpy as np
from zeroshot_audio.data import StoreMeta, StoreWriter
meta = StoreMeta.from_json(json.loads(sys.argv[2]))
def seg(key):
    rng = np.random.default_rng(sum(map(ord, key)))
    return rng.standard_normal((1 + len(key) % 3, meta.dim)).astype(np.float32)
with StoreWriter(sys.argv[1], meta, shard_size=2) as w:
    for k in ("a0", "a1", "a2"):
        w.add(k, seg(k))
    print("ready", flush=True)
    sys.stdin.readline()
    for k in ("a3", "a4"):
        w.add(k, seg(k))
"""


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=SRC, **extra)
    env.pop("COVERAGE_PROCESS_START", None)
    return env


def _start_writer(store: Path, meta: StoreMeta = META) -> subprocess.Popen:
    pipe = subprocess.PIPE
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store), json.dumps(meta.to_json())],
                            stdin=pipe, stdout=pipe, stderr=pipe, text=True, env=_env())
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read()
    return proc


def _tone(path: Path, seconds: float, freq: float = 440.0) -> Path:
    t = np.arange(int(seconds * 16000)) / 16000
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), 16000)
    return path


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("zsa: error: ")
    return lines[0]


def test_second_writer_is_refused_while_readers_go_on(tmp_path, embedder):
    """Item 2: a second `zsa embed` into a store being written exits 1 naming the holder's pid and the lock; a
    reader works meanwhile; the first writer's clips are all kept; the lock is free once the first one closes."""
    store = tmp_path / "store"
    meta = embedder.store_meta()  # the second writer's embedder: only the lock stops it
    dim = meta.dim
    first = _start_writer(store, meta)
    try:
        reader = open_store(store)  # no lock needed: the complete shards as they are now
        assert reader.keys == ["a0", "a1"]
        np.testing.assert_allclose(reader.get("a1"), _seg("a1", dim), atol=2e-3)
        cache = str(Path(embedder.model_path).parents[2])
        second = subprocess.run(
            [sys.executable, "-m", "zeroshot_audio", "embed", str(_tone(tmp_path / "x.wav", 1.0)), "--out", str(store),
             "--quiet"], capture_output=True, text=True, env=_env(ZSA_CACHE_DIR=cache), timeout=120)
        assert second.returncode == 1
        line = _one_error_line(second.stderr)
        assert f"store {store} is being written by another zsa process (pid {first.pid}" in line
        assert f"lock {store / 'writer.lock'}" in line and "wait for it or use another --out" in line
        with pytest.raises(StoreError, match=f"pid {first.pid}"):
            StoreWriter(store, meta)
        out, err = first.communicate("go\n", timeout=60)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
    after = open_store(store)
    assert sorted(after.keys) == ["a0", "a1", "a2", "a3", "a4"] and "x.wav" not in after
    for key in after.keys:
        np.testing.assert_allclose(after.get(key), _seg(key, dim), atol=2e-3)  # float16 store
    with StoreWriter(store, meta) as writer:  # released on close
        writer.add("b0", _seg("b0", dim))
    assert len(open_store(store)) == 6


def test_killed_writer_leaves_a_lock_the_next_writer_takes_over(tmp_path):
    store = tmp_path / "store"
    proc = _start_writer(store)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    lock = store / "writer.lock"
    assert lock.read_text().strip() == str(proc.pid)  # the dead holder's pid is still written there
    with StoreWriter(store, META, shard_size=2) as writer:  # the kernel released the lock with the process
        assert "a1" in writer and "a2" not in writer  # the flushed shard survives, the pending clip is lost
        writer.add("a2", _seg("a2"))
    assert lock.read_text().strip() == str(os.getpid())
    assert open_store(store).keys == ["a0", "a1", "a2"]


def test_shard_names_never_collide_even_without_the_lock(tmp_path, monkeypatch):
    """Item 2: two writers that bypass the lock (a file system without locks) still write distinct shards."""
    import zeroshot_audio.data.store_writer as writer_mod

    monkeypatch.setattr(writer_mod, "_lock_store", lambda path: None)
    one, two = StoreWriter(tmp_path, META), StoreWriter(tmp_path, META)  # both see no shard: both would take 00000
    one.add("a", _seg("a"))
    two.add("b", _seg("b"))
    one.close()
    two.close()
    store = open_store(tmp_path)
    assert sorted(store.keys) == ["a", "b"]
    np.testing.assert_array_equal(store.get("a"), _seg("a"))
    np.testing.assert_array_equal(store.get("b"), _seg("b"))


def _small_store(path: Path, n: int = 5, shard_size: int = 2) -> Path:
    with StoreWriter(path, META, shard_size=shard_size) as writer:
        for i in range(n):
            writer.add(f"c{i}", _seg(f"c{i}"))
    return path


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("keys", "c0c1", "field 'keys' must be a list of strings (got a JSON string)"),
        ("keys", {"c0": 1, "c1": 2}, "field 'keys' must be a list of strings (got a JSON object)"),
        ("keys", ["c0", 7], "field 'keys' must hold non-empty strings (got 7 at position 1)"),
        ("counts", [2.5, 1], "field 'counts' must hold integers >= 1 (got 2.5 at position 0)"),
        ("counts", [-1, 1], "field 'counts' must hold integers >= 1 (got -1 at position 0)"),
        ("counts", [2**70, 1], "field 'counts' must hold integers >= 1 (got 1180591620717411303424 at position 0)"),
        ("offsets", [0, 0.5], "field 'offsets' must hold integers >= 0 (got 0.5 at position 1)"),
        ("durations", [float("nan"), 1.0], "field 'durations' must hold finite numbers of seconds >= 0 (got nan"),
        ("durations", [1.0, -3], "field 'durations' must hold finite numbers of seconds >= 0 (got -3 at position 1)"),
    ],
)
def test_malformed_index_is_refused_naming_file_and_field(tmp_path, field, value, expected):
    """Items 6 and 10: the index of a real store, corrupted; reader and writer refuse it in one line."""
    store = _small_store(tmp_path / "s")
    index = store / "shards" / "00000.index.json"
    doc = json.loads(index.read_text())
    doc[field] = value
    index.write_text(json.dumps(doc))  # json writes NaN as NaN, which json (and older versions of us) read back
    for opener in (open_store, lambda p: StoreWriter(p, META)):
        with pytest.raises(StoreError) as info:
            opener(store)
        msg = str(info.value)
        assert msg.startswith(f"{index}: malformed shard index: ") and expected in msg and "\n" not in msg
        assert info.value.exit_code == 1


def test_huge_counts_are_checked_against_the_shard_before_allocating(tmp_path):
    """Item 6: counts of 2^40 segments (was: a 8 TiB MemoryError when reading) fail on open, naming the shard."""
    store = _small_store(tmp_path / "s")
    index = store / "shards" / "00000.index.json"
    doc = json.loads(index.read_text())
    doc["counts"][1] = 2**40
    index.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match=r"00000\.npy: shard has 6 rows but its index 00000\.index\.json refers to "
                                         r"row 1099511627778"):
        open_store(store)


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "missing"])
def test_damaged_shard_reader_refuses_resuming_writer_repairs(tmp_path, caplog, damage):
    """Items 6 and 10: a reader names the damaged shard; a resuming writer drops its clips (with a warning naming
    it) instead of reporting them as stored, and they are written again."""
    store = _small_store(tmp_path / "s")
    npy = store / "shards" / "00001.npy"
    raw = npy.read_bytes()
    if damage == "missing":
        npy.unlink()
    else:
        npy.write_bytes({"empty": b"", "truncated": raw[:-10], "garbage": b"not a numpy file at all"}[damage])
    with pytest.raises(StoreError) as info:
        open_store(store)
    assert str(info.value).startswith(f"{npy}: shard ") and "\n" not in str(info.value)
    with caplog.at_level(logging.WARNING, logger="zeroshot_audio.data.store"):
        writer = StoreWriter(store, META, shard_size=2)
    assert f"{npy}: shard " in caplog.text and "dropping its 2 clip(s)" in caplog.text
    assert writer.dropped == ["c2", "c3"] and "c2" not in writer and "c0" in writer and "c4" in writer
    with writer:
        for key in writer.dropped:
            writer.add(key, _seg(key))
    repaired = open_store(store)
    assert sorted(repaired.keys) == ["c0", "c1", "c2", "c3", "c4"]
    for key in repaired.keys:
        np.testing.assert_array_equal(repaired.get(key), _seg(key))


def test_resume_on_truncated_shard_embeds_its_clips_again(tmp_path, caplog):
    """Item 10: was "already in store 5", exit 0, with a store that cannot be read."""
    from zeroshot_audio.embed import embed_to_store, resolve_inputs

    items = resolve_inputs([_tone(tmp_path / f"t{i}.wav", 1.0 + 0.3 * i, 200.0 * (i + 1)) for i in range(5)])
    embed_to_store(items, tmp_path / "s", embedder=BandEnergy(), progress=False, shard_size=2)
    before = open_store(tmp_path / "s")
    vectors = {k: before.get(k) for k in before.keys}
    npy = tmp_path / "s" / "shards" / "00001.npy"
    npy.write_bytes(npy.read_bytes()[:-7])
    with caplog.at_level(logging.WARNING, logger="zeroshot_audio.data.store"):
        summary = embed_to_store(items, tmp_path / "s", embedder=BandEnergy(), progress=False, shard_size=2)
    assert "00001.npy: shard is truncated" in caplog.text
    assert (summary.n_embedded, summary.n_skipped) == (2, 3)
    after = open_store(tmp_path / "s")
    assert sorted(after.keys) == sorted(vectors)
    for key, vec in vectors.items():
        np.testing.assert_array_equal(after.get(key), vec)


def test_nan_embeddings_name_the_shard_and_the_clip(tmp_path):
    store = _small_store(tmp_path / "s")
    shard = np.load(store / "shards" / "00001.npy", mmap_mode="r+")
    shard[4, 3] = np.nan  # every clip has 3 segments: rows 3..5 of shard 00001 are clip c3
    shard.flush()
    del shard
    reader = open_store(store)
    msg = f"{store / 'shards' / '00001.npy'}: clip 'c3' (rows 3..5) holds NaN or infinite embeddings"
    with pytest.raises(StoreError, match=msg.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")):
        reader.get("c3")
    with pytest.raises(StoreError, match="clip 'c3'"):
        reader.batch(reader.index_of(["c0", "c3", "c4"]))
    reader.batch(reader.index_of(["c0", "c2", "c4"]))  # the clips around it are fine


def test_store_is_not_written_among_the_users_files(tmp_path):
    """Item 10: an existing non-empty directory that is not a store is refused; empty ones and stores are fine."""
    user = tmp_path / "my documents"
    user.mkdir()
    (user / "thesis.txt").write_text("precious")
    with pytest.raises(StoreError, match=f"{user}: is not empty and is not an embedding store .*'thesis.txt'"):
        StoreWriter(user, META)
    assert sorted(p.name for p in user.iterdir()) == ["thesis.txt"]  # nothing written there
    (tmp_path / "empty").mkdir()
    _small_store(tmp_path / "empty", n=1)
    with StoreWriter(tmp_path / "empty", META) as writer:  # an existing store is resumed
        writer.add("d0", _seg("d0"))
    assert open_store(tmp_path / "empty").keys == ["c0", "d0"]


def test_cli_embed_refuses_foreign_dir_and_repairs_zero_byte_shard(tmp_path, embedder, monkeypatch, capsys):
    """Items 6 and 10 through `zsa embed`: a non-store --out, a malformed index and a 0-byte shard."""
    monkeypatch.setenv("ZSA_CACHE_DIR", str(Path(embedder.model_path).parents[2]))
    audio = tmp_path / "audio"
    audio.mkdir()
    _tone(audio / "a.wav", 1.0)
    _tone(audio / "b.wav", 1.5, 880.0)
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    assert main(["embed", str(audio), "--out", str(user), "--quiet"]) == 1
    assert f"{user}: is not empty and is not an embedding store" in _one_error_line(capsys.readouterr().err)
    assert [p.name for p in user.iterdir()] == ["notes.txt"]

    store = tmp_path / "store"
    assert main(["embed", str(audio), "--out", str(store), "--quiet"]) == 0
    assert "embedded 2, already in store 0" in capsys.readouterr().out
    index = store / "shards" / "00000.index.json"
    good = index.read_text()
    doc = json.loads(good)
    doc["keys"] = dict.fromkeys(doc["keys"], 0)
    index.write_text(json.dumps(doc))
    assert main(["embed", str(audio), "--out", str(store), "--quiet"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"{index}: malformed shard index: field 'keys' must be a list of strings (got a JSON object)" in line
    index.write_text(good)
    (store / "shards" / "00000.npy").write_bytes(b"")
    assert main(["embed", str(audio), "--out", str(store), "--quiet"]) == 0
    assert "embedded 2, already in store 0" in capsys.readouterr().out  # was: "already in store 2", unreadable
    assert sorted(open_store(store).keys) == ["a.wav", "b.wav"]


def _tfrecords(folder: Path, n: int = 3) -> Path:
    from zeroshot_audio.data.audioset.tfrecord import encode_sequence_example, write_tfrecord

    rng = np.random.default_rng(0)
    records = [encode_sequence_example(f"vid{i}", 10.0, 20.0, [i], rng.integers(0, 256, (10, 128), dtype=np.uint8))
               for i in range(n)]
    write_tfrecord(folder / "bal00.tfrecord", records)
    return folder / "bal00.tfrecord"


@pytest.mark.parametrize(("length", "record"), [(2**40, 0), (2**63, 1)])
def test_tfrecord_huge_length_field_is_one_line_error(tmp_path, capsys, length, record):
    """Item 6: a length field of 2^40 (was a MemoryError) or 2^63 (an OverflowError) with a valid length CRC."""
    from zeroshot_audio.data.audioset.tfrecord import masked_crc32c, read_tfrecord

    path = _tfrecords(tmp_path / "tf")
    raw = bytearray(path.read_bytes())
    offset = 0
    for _ in range(record):  # skip to the header of the record to corrupt
        offset += 16 + struct.unpack("<Q", raw[offset : offset + 8])[0]
    header = struct.pack("<Q", length)
    raw[offset : offset + 12] = header + struct.pack("<I", masked_crc32c(header))
    path.write_bytes(bytes(raw))
    remaining = len(raw) - offset - 12
    with pytest.raises(DataError) as info:
        list(read_tfrecord(path))
    expected = f"{path}: record {record} (byte {offset}): truncated: {remaining} of {length + 4} data bytes"
    assert str(info.value) == expected
    assert info.value.exit_code == 1
    code = main(["import", "audioset-features", str(tmp_path / "tf"), "--out", str(tmp_path / "store"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    assert f"zsa: failed: {path} record {record}: truncated: {remaining} of {length + 4} data bytes" in captured.err
    assert f"imported {record} clip(s)" in captured.out  # the records before it are kept


# ---------------------------------------------------------------------------- item 10: atomic directory replacement


def _model(tag: str):
    from zeroshot_audio.checkpoint import TrainedModel
    from zeroshot_audio.model import ModelConfig
    from zeroshot_audio.train.network import ZeroShotModel

    return TrainedModel(model=ZeroShotModel(ModelConfig(audio_dim=8, text_dim=4, dim=4)), classes=["a", "b"],
                        class_embeddings=np.eye(2, 4), embedder=META.identity(),
                        label_encoder={"name": "precomputed", "version": "x", "dim": 4}, info={"tag": tag})


def test_interrupted_model_replacement_keeps_the_old_model(tmp_path, monkeypatch):
    """An interrupt between the two renames of atomic_dir (old aside, new in place) used to leave no model."""
    from zeroshot_audio.checkpoint import TrainedModel

    path = tmp_path / "model"
    _model("old").save(path)
    real_replace = os.replace

    def interrupted(src, dst):
        if Path(dst) == path:  # the new directory is about to take the model's place
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _model("new").save(path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert TrainedModel.load(path).info["tag"] == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary or old copy left


KILLED_SAVE = """
import os, signal, sys
from pathlib import Path
import numpy as np
from zeroshot_audio.checkpoint import TrainedModel
path = Path(sys.argv[1])
model = TrainedModel.load(path)
model.info = {"tag": "new"}
real_replace = os.replace
def killed(src, dst):
    if Path(dst) == path:
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
os.replace = killed
model.save(path)
"""


def test_model_replacement_killed_half_way_is_restored_on_open(tmp_path):
    """A save killed (SIGKILL) between the renames leaves the old model aside; the next open restores it."""
    from zeroshot_audio.checkpoint import TrainedModel

    path = tmp_path / "model"
    _model("old").save(path)
    proc = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(path)], env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not path.exists() and [p.name for p in tmp_path.iterdir() if ".old-" in p.name]  # the dangerous state
    assert TrainedModel.load(path).info["tag"] == "old"
    _model("newer").save(path)
    assert TrainedModel.load(path).info["tag"] == "newer"
    assert not [p.name for p in tmp_path.iterdir() if ".old-" in p.name]

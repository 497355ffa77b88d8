from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from zeroshot_audio._errors import ParameterError, StoreError
from zeroshot_audio.data import EmbeddingStore, StoreMeta, StoreWriter, open_store

DIM = 8
META = StoreMeta(embedder="yamnet", embedder_version="1", dim=DIM, hop=0.96)


def _clips(n: int, seed: int = 0, max_t: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"clip{i:03d}.wav": rng.standard_normal((int(rng.integers(1, max_t + 1)), DIM)) for i in range(n)}


def _write(path: Path, clips: dict[str, np.ndarray], *, shard_size: int = 3, meta: StoreMeta = META) -> None:
    with StoreWriter(path, meta, shard_size=shard_size) as writer:
        for key, seg in clips.items():
            writer.add(key, seg)


class Crash(Exception):
    pass


def test_round_trip_varied_lengths(tmp_path: Path) -> None:
    clips = _clips(10)
    _write(tmp_path / "s", clips)
    store = open_store(tmp_path / "s")
    assert isinstance(store, EmbeddingStore)
    assert store.meta == META
    assert len(store) == 10 and store.keys == list(clips)
    assert len(list((tmp_path / "s" / "shards").glob("*.index.json"))) == 4  # 3 + 3 + 3 + 1
    np.testing.assert_array_equal(store.counts, [len(v) for v in clips.values()])
    assert store.counts.dtype == np.int64 and store.durations.dtype == np.float64
    np.testing.assert_allclose(store.durations, store.counts * 0.96)
    for key, seg in clips.items():
        assert key in store
        got = store.get(key)
        assert got.dtype == np.float32 and got.shape == seg.shape
        np.testing.assert_allclose(got, seg, rtol=1e-3, atol=1e-3)  # float16 storage
    assert "other" not in store
    with pytest.raises(StoreError, match="'other' is not in store"):
        store.get("other")


def test_float32_store_and_duration(tmp_path: Path) -> None:
    meta = StoreMeta("e", "v", dim=DIM, hop=0.5, dtype="float32", window=1.0, extra={"sha": "abc"})
    seg = np.random.default_rng(1).standard_normal((3, DIM))
    with StoreWriter(tmp_path, meta) as writer:
        writer.add("a", seg, duration=1.3)
    store = open_store(tmp_path)
    assert store.meta == meta and store.meta.extra == {"sha": "abc"}
    np.testing.assert_array_equal(store.get("a"), seg.astype(np.float32))
    assert store.durations.tolist() == [1.3]


def test_batch_matches_get_across_shards(tmp_path: Path) -> None:
    clips = _clips(11, seed=2)
    _write(tmp_path, clips, shard_size=3)
    store = open_store(tmp_path)
    rng = np.random.default_rng(3)
    for rows in (rng.permutation(11), rng.integers(0, 11, size=5), np.array([4]), np.array([0, 1, 2])):
        x, mask = store.batch(rows)
        tmax = max(len(clips[store.keys[r]]) for r in rows)
        assert x.shape == (len(rows), tmax, DIM) and x.dtype == np.float32
        assert mask.shape == (len(rows), tmax) and mask.dtype == bool
        for b, r in enumerate(rows):
            got = store.get(store.keys[r])
            t = len(got)
            np.testing.assert_array_equal(x[b, :t], got)
            assert not x[b, t:].any()
            assert mask[b, :t].all() and not mask[b, t:].any()
    x, mask = store.batch(np.array([], dtype=np.int64))
    assert x.shape == (0, 0, DIM) and mask.shape == (0, 0)
    with pytest.raises(ParameterError, match="row 11 is out of range"):
        store.batch([0, 11])


def test_index_of(tmp_path: Path) -> None:
    clips = _clips(5)
    _write(tmp_path, clips)
    store = open_store(tmp_path)
    keys = list(clips)
    np.testing.assert_array_equal(store.index_of([keys[3], keys[0]]), [3, 0])
    assert store.index_of([]).dtype == np.int64
    missing = [f"m{i}" for i in range(7)]
    with pytest.raises(StoreError) as info:
        store.index_of([keys[0], *missing])
    message = str(info.value)
    assert "7 of 8 key(s) are not in store" in message and str(tmp_path) in message
    assert all(f"'m{i}'" in message for i in range(5)) and "'m5'" not in message
    assert message.endswith("and 2 more")


def test_resume_after_crash(tmp_path: Path) -> None:
    clips = _clips(8, seed=4)
    keys = list(clips)
    with pytest.raises(Crash), StoreWriter(tmp_path, META, shard_size=3) as writer:
        for key in keys[:5]:
            writer.add(key, clips[key])
        raise Crash
    # 3 clips went into shard 0 during add(), 2 pending ones were flushed by __exit__
    store = open_store(tmp_path)
    assert store.keys == keys[:5]

    with StoreWriter(tmp_path, META, shard_size=3) as writer:
        assert all(key in writer for key in keys[:5])
        assert keys[5] not in writer
        with pytest.raises(ParameterError, match="already stored"):
            writer.add(keys[0], clips[keys[0]])
        for key in keys:
            if key not in writer:
                writer.add(key, clips[key])
    store = open_store(tmp_path)
    assert sorted(store.keys) == sorted(keys) and len(store.keys) == len(set(store.keys))
    for key in keys:
        np.testing.assert_allclose(store.get(key), clips[key], rtol=1e-3, atol=1e-3)


def test_keyboard_interrupt_keeps_completed_adds(tmp_path: Path) -> None:
    clips = _clips(4, seed=5)
    with pytest.raises(KeyboardInterrupt), StoreWriter(tmp_path, META, shard_size=100) as writer:
        for key, seg in clips.items():
            writer.add(key, seg)
        raise KeyboardInterrupt
    assert open_store(tmp_path).keys == list(clips)


def test_orphan_npy_ignored_by_reader_removed_by_writer(tmp_path: Path) -> None:
    clips = _clips(3, seed=6)
    _write(tmp_path, clips, shard_size=3)
    shards = tmp_path / "shards"
    orphan = shards / "00001.npy"
    np.save(orphan, np.ones((4, DIM), dtype=np.float16))  # an interrupted writer's shard: no index
    (shards / ".00001.index.json.abc.tmp").write_text("{")  # and its half-written index temporary
    store = open_store(tmp_path)
    assert store.keys == list(clips)

    extra = np.full((2, DIM), 0.5)
    with StoreWriter(tmp_path, META, shard_size=3) as writer:
        assert not orphan.exists()
        assert not (shards / ".00001.index.json.abc.tmp").exists()
        writer.add("new", extra)
    store = open_store(tmp_path)
    assert store.keys == [*clips, "new"]
    np.testing.assert_array_equal(store.get("new"), extra)
    assert sorted(p.name for p in shards.iterdir()) == [
        "00000.index.json",
        "00000.npy",
        "00001.index.json",
        "00001.npy",
    ]


def test_writer_refuses_other_embedder(tmp_path: Path) -> None:
    _write(tmp_path, _clips(2))
    other = StoreMeta(embedder="vggish", embedder_version="2", dim=DIM, hop=0.96)
    expected = (
        f"store {re.escape(str(tmp_path))} was made by embedder yamnet v1 \\(dim 8, hop 0.96\\)"
        " but the writer was given embedder vggish v2 \\(dim 8, hop 0.96\\)"
    )
    with pytest.raises(StoreError, match=expected):
        StoreWriter(tmp_path, other)
    with pytest.raises(StoreError, match="hop 0.5"):
        StoreWriter(tmp_path, StoreMeta("yamnet", "1", dim=DIM, hop=0.5))
    # the same identity (hop within tolerance) resumes
    StoreWriter(tmp_path, StoreMeta("yamnet", "1", dim=DIM, hop=0.96 + 1e-9)).close()


def test_add_validation(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path, META)
    with pytest.raises(ParameterError, match=r"shape \(8,\)"):
        writer.add("a", np.zeros(DIM))
    with pytest.raises(ParameterError, match=r"shape \(2, 7\)"):
        writer.add("a", np.zeros((2, 7)))
    with pytest.raises(ParameterError, match="empty"):
        writer.add("a", np.zeros((0, DIM)))
    bad = np.zeros((2, DIM))
    bad[1, 3] = np.nan
    with pytest.raises(ParameterError, match="NaN or infinite"):
        writer.add("a", bad)
    with pytest.raises(ParameterError, match="too large for the store dtype float16"):
        writer.add("a", np.full((1, DIM), 1e6))
    writer.add("a", np.zeros((1, DIM)))
    with pytest.raises(ParameterError, match="already stored"):
        writer.add("a", np.zeros((1, DIM)))
    writer.close()
    with pytest.raises(StoreError, match="closed"):
        writer.add("b", np.zeros((1, DIM)))
    assert open_store(tmp_path).keys == ["a"]


def test_failures_round_trip(tmp_path: Path) -> None:
    with StoreWriter(tmp_path, META, shard_size=2) as writer:
        writer.add_failure("bad, file.wav", 'decode error: "truncated"\nat byte 12')
        writer.add_failure("silent.wav", "no signal")
        writer.add_failure("retry.wav", "timeout")
        writer.add("ok.wav", np.ones((2, DIM)))
    store = open_store(tmp_path)
    assert store.failures == {
        "bad, file.wav": 'decode error: "truncated" at byte 12',
        "silent.wav": "no signal",
        "retry.wav": "timeout",
    }
    assert (tmp_path / "failures.csv").read_text().splitlines()[0] == "key,reason"

    with StoreWriter(tmp_path, META) as writer:
        assert writer.failures["retry.wav"] == "timeout"
        writer.add("retry.wav", np.ones((1, DIM)))
        with pytest.raises(ParameterError, match="already stored"):
            writer.add_failure("ok.wav", "x")
    store = open_store(tmp_path)
    assert "retry.wav" in store
    assert store.failures == {
        "bad, file.wav": 'decode error: "truncated" at byte 12',
        "silent.wav": "no signal",
    }


def test_check_compatible(tmp_path: Path) -> None:
    _write(tmp_path, _clips(1))
    store = open_store(tmp_path)
    store.check_compatible(META.identity())
    store.check_compatible({**META.identity(), "hop": 0.96 + 5e-7})
    for change in ({"embedder": "vggish"}, {"embedder_version": "2"}, {"dim": 16}, {"hop": 0.5}):
        wanted = {**META.identity(), **change}
        with pytest.raises(StoreError) as info:
            store.check_compatible(wanted, what="checkpoint")
        assert str(info.value) == (
            f"store {tmp_path} was made by embedder yamnet v1 (dim 8, hop 0.96) but the checkpoint expects"
            f" embedder {wanted['embedder']} v{wanted['embedder_version']}"
            f" (dim {wanted['dim']}, hop {wanted['hop']})"
        )


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(
        StoreError, match=re.escape(str(tmp_path / "none")) + ": embedding store does not exist"
    ):
        open_store(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match=r"not an embedding store \(no meta.json\)"):
        open_store(tmp_path / "empty")
    (tmp_path / "empty" / "meta.json").write_text("{not json")
    with pytest.raises(
        StoreError, match=re.escape(str(tmp_path / "empty" / "meta.json")) + ": cannot be read"
    ):
        open_store(tmp_path / "empty")
    (tmp_path / "empty" / "meta.json").write_text(json.dumps({**META.to_json(), "format_version": 99}))
    with pytest.raises(StoreError, match="format version 99 is newer"):
        open_store(tmp_path / "empty")


def test_duplicate_key_across_shards(tmp_path: Path) -> None:
    _write(tmp_path, {"a": np.ones((1, DIM)), "b": np.ones((1, DIM))}, shard_size=1)
    index1 = tmp_path / "shards" / "00001.index.json"
    doc = json.loads(index1.read_text())
    doc["keys"] = ["a"]
    index1.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match=r"key 'a' is stored twice \(shards 00000.npy and 00001.npy\)"):
        open_store(tmp_path)


def test_meta_validation() -> None:
    with pytest.raises(ParameterError, match="dtype 'int8'"):
        StoreMeta("e", "1", dim=4, hop=1.0, dtype="int8")
    with pytest.raises(ParameterError, match="dim must be a positive integer"):
        StoreMeta("e", "1", dim=0, hop=1.0)
    with pytest.raises(ParameterError, match="hop must be a positive"):
        StoreMeta("e", "1", dim=4, hop=0)
    assert META.identity() == {"embedder": "yamnet", "embedder_version": "1", "dim": DIM, "hop": 0.96}
    assert StoreMeta.from_json(META.to_json()) == META

from __future__ import annotations

import csv
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from zeroshot_audio._errors import DataError, ParameterError
from zeroshot_audio.data import open_store, read_dataset
from zeroshot_audio.data.audioset import audioset_classes, audioset_descriptions, build_class_table, class_by_name
from zeroshot_audio.data.audioset.importer import AUDIOSET_STORE_META, import_audioset_features
from zeroshot_audio.data.audioset.tfrecord import (
    clip_key,
    crc32c,
    decode_sequence_example,
    dequantize,
    encode_sequence_example,
    masked_crc32c,
    read_tfrecord,
    write_tfrecord,
)

# ------------------------------------------------------------------------------------------ class table


def test_class_table_527() -> None:
    classes = audioset_classes()
    assert len(classes) == 527
    assert [c.index for c in classes] == list(range(527))
    assert len({c.name for c in classes}) == 527 and len({c.mid for c in classes}) == 527
    assert all(c.description for c in classes)
    dog = classes[74]
    assert (dog.name, dog.mid) == ("Dog", "/m/0bt9lr")
    assert "domesticated canid" in dog.description
    assert classes[0].name == "Speech" and classes[526].name == "Field recording"
    assert audioset_descriptions()["Dog"] == dog.description
    assert list(audioset_descriptions()) == [c.name for c in classes]


def test_class_table_full_ontology() -> None:
    every = audioset_classes(only_527=False)
    assert len(every) == 632 and len({c.name for c in every}) == 632
    assert every[:527] == audioset_classes()
    assert all(c.index is None for c in every[527:])
    assert class_by_name("Human sounds").index is None
    assert class_by_name("Dog").index == 74


def test_class_by_name_suggests() -> None:
    with pytest.raises(ParameterError, match="'Dgo'.*did you mean 'Dog'"):
        class_by_name("Dgo")
    with pytest.raises(ParameterError, match="did you mean 'Dog'"):
        class_by_name("dog")


def test_build_class_table(tmp_path: Path) -> None:
    ontology = [{"id": f"/m/{i}", "name": f"Class {i}", "description": f"  about\n class {i} "} for i in range(530)]
    (tmp_path / "ontology.json").write_text(json.dumps(ontology), encoding="utf-8")
    lines = ["index,mid,display_name"] + [f'{i},/m/{528 - i},"Class {528 - i}"' for i in range(527)]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = build_class_table(tmp_path / "ontology.json", tmp_path / "labels.csv")
    assert len(rows) == 530
    assert rows[0].name == "Class 528" and rows[0].index == 0 and rows[0].description == "about class 528"
    assert [r.mid for r in rows[527:]] == ["/m/0", "/m/1", "/m/529"]
    lines[5] = '4,/m/nope,"Nope"'
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"labels\.csv:6: mid '/m/nope'"):
        build_class_table(tmp_path / "ontology.json", tmp_path / "labels.csv")


# ------------------------------------------------------------------------------------------ CRC, format


def test_crc32c_vectors() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(b"6789", crc32c(b"12345")) == 0xE3069283
    c = crc32c(b"123456789")
    assert masked_crc32c(b"123456789") == (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_tfrecord_framing(tmp_path: Path) -> None:
    path = tmp_path / "a.tfrecord"
    assert write_tfrecord(path, [b"hello", b""]) == 2
    raw = path.read_bytes()
    assert len(raw) == 16 + 5 + 16
    length, length_crc = struct.unpack("<QI", raw[:12])
    assert length == 5 and length_crc == masked_crc32c(raw[:8])
    assert struct.unpack("<I", raw[17:21])[0] == masked_crc32c(b"hello")
    assert list(read_tfrecord(path)) == [b"hello", b""]
    path.write_bytes(raw[:-3])
    with pytest.raises(DataError, match=r"a\.tfrecord: record 1 \(byte 21\): truncated: 1 of 4 data bytes"):
        list(read_tfrecord(path))


def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while v > 0x7F:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    return bytes(out) + bytes([v])


def _ld(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def test_sequence_example_round_trip_and_unpacked() -> None:
    emb = np.arange(3 * 128, dtype=np.uint8).reshape(3, 128)
    ex = decode_sequence_example(encode_sequence_example("vid_-x", 12.5, 22.5, [3, 74, 3], emb))
    assert (ex.video_id, ex.start, ex.end, ex.labels) == ("vid_-x", 12.5, 22.5, (3, 74, 3))
    np.testing.assert_array_equal(ex.embeddings, emb)

    # Unpacked repeated scalars, unknown fields and features, map entries in another order.
    def entry(key: str, feature: bytes) -> bytes:
        return _ld(1, _ld(2, feature) + _ld(1, key.encode()))

    labels = _ld(3, _varint(1 << 3 | 0) + _varint(7) + _varint(1 << 3 | 0) + _varint(1))  # Int64List unpacked
    start = _ld(2, _varint(1 << 3 | 5) + struct.pack("<f", 30.0))  # FloatList unpacked
    context = entry("labels", labels) + entry("start_time_seconds", start) + entry("other", _ld(2, b""))
    context += entry("video_id", _ld(1, _ld(1, b"abc")))
    frame = _ld(1, _ld(1, _ld(1, bytes(range(128)))))  # FeatureList.feature{bytes_list{value}}
    lists = _ld(1, _ld(1, b"audio_embedding") + _ld(2, frame + frame))
    msg = _varint(9 << 3 | 0) + _varint(5) + _ld(1, context) + _ld(2, lists)
    ex = decode_sequence_example(msg)
    assert (ex.video_id, ex.start, ex.end, ex.labels) == ("abc", 30.0, None, (7, 1))
    assert ex.embeddings.shape == (2, 128) and ex.embeddings[1, 5] == 5
    with pytest.raises(DataError, match="past the end"):
        decode_sequence_example(msg[:-3])


def test_dequantize() -> None:
    np.testing.assert_allclose(dequantize(np.array([0, 255, 128], np.uint8)), [-2.0, 2.0, 128 * 4 / 255 - 2], atol=1e-6)


# ---------------------------------------------------------------------------------------------- import


def _clip(rng: np.random.Generator, vid: str, start: float, labels: list[int], frames: int = 10) -> dict:
    emb = rng.integers(0, 256, (frames, 128), dtype=np.uint8)
    return {"video_id": vid, "start": start, "end": start + frames, "labels": labels, "embeddings_uint8": emb}


def _write(path: Path, clips: list[dict]) -> None:
    write_tfrecord(path, [encode_sequence_example(**c) for c in clips])


def _check_store(store_path: Path, clips: list[dict]) -> None:
    store = open_store(store_path)
    for c in clips:
        got = store.get(clip_key(c["video_id"], c["start"]))
        np.testing.assert_allclose(got, dequantize(c["embeddings_uint8"]), atol=2e-3)


def test_import_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    a = [_clip(rng, f"vidA{i}", 30.0 * i, [74]) for i in range(5)]
    b = [_clip(rng, f"vidB{i}", 10.0, [0, 137]) for i in range(4)]
    b.append(_clip(rng, "short", 0.5, [74, 0, 74], frames=3))
    (tmp_path / "in" / "sub").mkdir(parents=True)
    _write(tmp_path / "in" / "a.tfrecord", a)
    _write(tmp_path / "in" / "sub" / "b.tfrecord", b)

    summary = import_audioset_features(
        tmp_path / "in", out_store=tmp_path / "store", out_data=tmp_path / "data", split="train"
    )
    assert (summary.files, summary.records, summary.clips, summary.added, summary.skipped) == (2, 10, 10, 10, 0)
    assert summary.failures == []
    store = open_store(tmp_path / "store")
    assert store.meta.identity() == AUDIOSET_STORE_META.identity() and store.meta.dtype == "float16"
    keys = [clip_key(c["video_id"], c["start"]) for c in a + b]
    assert keys[0] == "vidA0_0" and keys[1] == "vidA1_30000" and keys[-1] == "short_500"
    assert sorted(store.keys) == sorted(keys)
    _check_store(tmp_path / "store", a + b)
    rows = store.index_of(keys)
    assert store.counts[rows].tolist() == [10] * 9 + [3]
    np.testing.assert_allclose(store.durations[rows], [10.0] * 9 + [3.0])

    ds = read_dataset(tmp_path / "data")
    assert ds.filenames == keys
    names = [c.name for c in audioset_classes()]
    assert ds.labels[0] == ("Dog",) and ds.labels[5] == ("Speech", names[137]) and ds.labels[-1] == ("Dog", "Speech")
    assert ds.splits == ["train"] * 10 and ds.families[0] == "vidA0"
    assert ds.classes == names and ds.descriptions["Dog"] == class_by_name("Dog").description
    with open(tmp_path / "data" / "classes.csv", encoding="utf-8") as f:
        assert sum(1 for _ in csv.reader(f)) == 528


def test_import_failures(tmp_path: Path, rng: np.random.Generator) -> None:
    good = [_clip(rng, f"g{i}", 0.0, [1]) for i in range(3)]
    bad_crc = tmp_path / "in" / "bad_crc.tfrecord"
    bad_crc.parent.mkdir()
    _write(bad_crc, good)
    raw = bytearray(bad_crc.read_bytes())
    first = struct.unpack("<Q", raw[:8])[0]
    raw[16 + first + 12 + 40] ^= 0x01  # a byte inside record 1's data
    bad_crc.write_bytes(bytes(raw))

    trunc = [_clip(rng, f"t{i}", 0.0, [2]) for i in range(3)]
    truncated = tmp_path / "in" / "truncated.tfrecord"
    _write(truncated, trunc)
    truncated.write_bytes(truncated.read_bytes()[:-100])  # cuts record 2

    framing = tmp_path / "in" / "framing.tfrecord"
    _write(framing, [_clip(rng, "f0", 0.0, [3]), _clip(rng, "f1", 0.0, [3])])
    raw = bytearray(framing.read_bytes())
    raw[0] ^= 0x01  # record 0's length no longer matches its CRC
    framing.write_bytes(bytes(raw))

    odd = [_clip(rng, "empty", 0.0, [5], frames=0), _clip(rng, "label600", 0.0, [600]), _clip(rng, "ok", 0.0, [])]
    _write(tmp_path / "in" / "odd.tfrecord", odd)

    summary = import_audioset_features(tmp_path / "in", out_store=tmp_path / "store", out_data=tmp_path / "data")
    assert summary.files == 4 and summary.added == 5
    by_where = {(Path(f.file).name, f.record): f for f in summary.failures}
    assert set(by_where) == {
        ("bad_crc.tfrecord", 1),
        ("truncated.tfrecord", 2),
        ("framing.tfrecord", 0),
        ("odd.tfrecord", 0),
        ("odd.tfrecord", 1),
    }
    assert "data CRC mismatch" in by_where["bad_crc.tfrecord", 1].reason
    assert "truncated" in by_where["truncated.tfrecord", 2].reason
    assert "length CRC" in str(by_where["framing.tfrecord", 0]) and "framing.tfrecord: record 0" in str(
        by_where["framing.tfrecord", 0]
    )
    assert (
        by_where["odd.tfrecord", 0].key == "empty_0"
        and "no audio_embedding frames" in by_where["odd.tfrecord", 0].reason
    )
    assert "label index 600" in by_where["odd.tfrecord", 1].reason

    store = open_store(tmp_path / "store")
    assert sorted(store.keys) == ["g0_0", "g2_0", "ok_0", "t0_0", "t1_0"]
    assert set(store.failures) == {"empty_0", "label600_0"}
    _check_store(tmp_path / "store", [good[0], good[2], trunc[0], trunc[1], odd[2]])
    ds = read_dataset(tmp_path / "data")
    assert sorted(ds.filenames) == sorted(store.keys)
    assert ds.labels[ds.filenames.index("ok_0")] == () and ds.splits == [None] * 5


def _snapshot(store: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted((store / "shards").iterdir())}


def test_import_resumes_and_merges(tmp_path: Path, rng: np.random.Generator) -> None:
    train = [_clip(rng, f"tr{i}", 0.0, [74]) for i in range(4)]
    _write(tmp_path / "bal" / "x.tfrecord", train)
    first = import_audioset_features(
        tmp_path / "bal", out_store=tmp_path / "store", out_data=tmp_path / "data", split="train"
    )
    assert first.added == 4
    before = _snapshot(tmp_path / "store")

    again = import_audioset_features(
        tmp_path / "bal", out_store=tmp_path / "store", out_data=tmp_path / "data", split="train"
    )
    assert (again.added, again.skipped, again.clips, again.failures) == (0, 4, 4, [])
    assert _snapshot(tmp_path / "store") == before
    store = open_store(tmp_path / "store")
    assert len(store) == 4 and len(set(store.keys)) == 4
    assert read_dataset(tmp_path / "data").filenames == [clip_key(c["video_id"], 0.0) for c in train]

    # A second split into the same store and dataset.
    _write(tmp_path / "eval" / "y.tfrecord", [_clip(rng, "ev0", 0.0, [0])])
    import_audioset_features(tmp_path / "eval", out_store=tmp_path / "store", out_data=tmp_path / "data", split="test")
    ds = read_dataset(tmp_path / "data")
    assert sorted(zip(ds.filenames, ds.splits)) == sorted(
        [("ev0_0", "test")] + [(f"tr{i}_0", "train") for i in range(4)]
    )
    assert len(open_store(tmp_path / "store")) == 5


def test_import_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="unknown split 'dev'"):
        import_audioset_features(tmp_path, out_store=tmp_path / "s", out_data=tmp_path / "d", split="dev")
    with pytest.raises(ParameterError, match="no \\*.tfrecord"):
        import_audioset_features(tmp_path, out_store=tmp_path / "s", out_data=tmp_path / "d")
    assert not os.path.exists(tmp_path / "s")
    _write(tmp_path / "in" / "a.tfrecord", [_clip(np.random.default_rng(0), "v", 0.0, [1])])
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "clips.csv").write_text("filename,labels\nx.wav,NotAnAudioSetClass\n", encoding="utf-8")
    with pytest.raises(DataError, match="clips.csv: label 'NotAnAudioSetClass' is not an AudioSet class"):
        import_audioset_features(tmp_path / "in", out_store=tmp_path / "s", out_data=tmp_path / "d")
    summary = import_audioset_features(tmp_path / "in", out_store=tmp_path / "s", out_data=tmp_path / "d", merge=False)
    assert summary.added == 1 and read_dataset(tmp_path / "d").filenames == ["v_0"]


def test_cli_import_then_benchmark_on_imported_features(tmp_path, capsys):
    """The whole chain on AudioSet-format data: `zsa import audioset-features`, then `zsa benchmark`."""
    from zeroshot_audio.cli import main

    rng = np.random.default_rng(5)
    names = [c.name for c in audioset_classes()][:12]
    signature = rng.integers(0, 256, size=(12, 128))
    records = []
    for n in range(150):
        labels = sorted(rng.choice(12, size=int(rng.integers(1, 3)), replace=False).tolist())
        frames = rng.integers(90, 160, size=(10, 128))
        for c in labels:
            frames[int(rng.integers(0, 10))] = signature[c]
        records.append(encode_sequence_example(f"vid{n:04d}", 30.0, 40.0, labels, frames.astype(np.uint8)))
    write_tfrecord(tmp_path / "tf" / "bal_train00.tfrecord", records)
    code = main(["import", "audioset-features", str(tmp_path / "tf"), "--out", str(tmp_path / "store"), "--quiet"])
    assert code == 0
    assert "imported 150 clip(s)" in capsys.readouterr().out
    ds = read_dataset(tmp_path / "store" / "dataset")
    assert set(c for labels in ds.labels for c in labels) <= set(names)
    code = main(["benchmark", str(tmp_path / "store" / "dataset"), "--store", str(tmp_path / "store"), "--folds", "3",
                 "--systems", "zero_rule,mean", "--epochs", "2", "--label-encoder", "hashing", "--quiet"])
    assert code == 0
    assert "| mean |" in capsys.readouterr().out

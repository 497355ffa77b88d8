"""Offline tests of the debian-sfx scene builder, on synthetic sources written by the test."""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from zeroshot_audio.corpus import build as B
from zeroshot_audio.corpus import scenes
from zeroshot_audio.corpus.sources import Source
from zeroshot_audio.data.dataset import read_dataset

SR = 16000
CLASSES = {  # label -> (kind, base frequency)
    "Piano": ("tone", 440.0),
    "Flute": ("tone", 1200.0),
    "Dog": ("noise", 0.0),
    "Bell": ("chirp", 700.0),
    "Cat": ("am", 300.0),
}


def _sound(kind: str, freq: float, seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    if kind == "tone":
        return 0.5 * np.sin(2 * np.pi * freq * t)
    if kind == "noise":
        return 0.3 * rng.standard_normal(t.size)
    if kind == "chirp":
        return 0.5 * np.sin(2 * np.pi * (freq + 400 * t) * t)
    return 0.5 * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))


def write_sources(root: Path, *, families: int = 5, files: int = 2) -> list[Source]:
    """Padded sounds (silence before and after) at 22.05 kHz, ``families`` x ``files`` per class."""
    rng = np.random.default_rng(7)
    out = []
    root.mkdir(parents=True, exist_ok=True)
    for label, (kind, freq) in CLASSES.items():
        for f in range(families):
            for i in range(files):
                rate = 22050
                body = _sound(kind, freq * (1 + 0.05 * f), 0.4 + 0.3 * i + 0.1 * f, rate, rng)
                pad = np.zeros(int(0.3 * rate))
                wav = np.concatenate([pad, body, pad]).astype(np.float32)
                name = f"{label.lower()}_{f}_{i}.wav"
                sf.write(str(root / name), wav, rate, subtype="PCM_16")
                fam = f"synth:{label}:{f}"
                out.append(Source(root / name, "synth-pkg", "1.0", f"sounds/{name}", label, fam, "CC0"))
    return out


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[Source]:
    return write_sources(tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="module")
def built(tmp_path_factory, sources):
    root = tmp_path_factory.mktemp("build")
    cache = root / "cache"
    a = B.build_from_sources(root / "a", sources, n_scenes=40, seed=3, workers=1, cache=cache)
    return root, cache, a


def _clips(out: Path) -> list[dict]:
    with open(out / "clips.csv", newline="") as f:
        return list(csv.DictReader(f))


def _events(out: Path) -> dict[str, list[tuple[float, float, str]]]:
    ev: dict[str, list] = {}
    with open(out / "events.tsv") as f:
        next(f)
        for line in f:
            fn, on, off, lab = line.rstrip("\n").split("\t")
            ev.setdefault(fn, []).append((float(on), float(off), lab))
    return ev


# --------------------------------------------------------------------------------------------- preparation


def test_trim_finds_active_part():
    rng = np.random.default_rng(0)
    tone = _sound("tone", 500, 1.0, SR, rng)
    wav = np.concatenate([np.zeros(8000), 1e-5 * rng.standard_normal(4000), tone, np.zeros(12000)])
    clip, segs = B.prepare_audio(wav)
    # 1.0 s of tone plus a 10 ms margin on each side (frame-aligned)
    assert abs(clip.shape[0] / SR - 1.02) < 0.011
    assert len(segs) == 1 and segs[0][1] - segs[0][0] == pytest.approx(SR, abs=160)
    assert np.max(np.abs(clip)) == pytest.approx(1.0, abs=1e-6)
    # a fade at both ends
    assert abs(clip[0]) < 0.05 and abs(clip[-1]) < 0.05


def test_long_source_is_cut_to_a_seeded_excerpt():
    rng = np.random.default_rng(0)
    wav = np.concatenate([np.zeros(SR), _sound("am", 300, 9.0, SR, rng)])
    a, segs = B.prepare_audio(wav, seed=1)
    b, _ = B.prepare_audio(wav, seed=1)
    c, _ = B.prepare_audio(wav, seed=2)
    assert a.shape[0] == 4 * SR and np.array_equal(a, b) and not np.array_equal(a, c)
    assert segs[0][0] == 0 and segs[-1][1] == 4 * SR


def test_too_short_or_silent_sources_are_skipped():
    click = np.concatenate([np.zeros(SR), np.ones(400) * 0.5, np.zeros(SR)])
    assert isinstance(B.prepare_audio(click), str)
    assert isinstance(B.prepare_audio(np.zeros(SR)), str)


def test_active_segments_split_at_long_gaps():
    rng = np.random.default_rng(0)
    burst = _sound("tone", 440, 0.3, SR, rng)
    wav = np.concatenate([burst, np.zeros(SR), burst, np.zeros(800), burst])
    segs, _ = B.active_segments(wav)
    assert len(segs) == 2  # the 50 ms gap is merged, the 1 s gap is not
    assert segs[0] == (0, int(0.3 * SR))


# --------------------------------------------------------------------------------------------- splits


def test_assign_splits_families_and_quotas():
    fams = {
        "A": ["a1", "a2"],
        "B": [f"b{i}" for i in range(3)],
        "C": [f"c{i}" for i in range(10)],
        "D": ["shared", "d1", "d2", "d3"],
        "E": ["shared", "e1"],
    }
    split = B.assign_splits(fams, seed=5)
    assert split == B.assign_splits(fams, seed=5)
    for label, fs in fams.items():
        got = [split[f] for f in fs]
        assert "train" in got and "test" in got, label
    assert sorted(split[f] for f in fams["A"]) == ["test", "train"]
    c = [split[f] for f in fams["C"]]
    assert (c.count("train"), c.count("val"), c.count("test")) == (7, 1, 2)


def test_scene_splits_counts():
    s = B.scene_splits(1000, seed=1)
    assert (s.count("train"), s.count("val"), s.count("test")) == (700, 100, 200)
    assert s == B.scene_splits(1000, seed=1) and s != B.scene_splits(1000, seed=2)


def test_strict_estimate():
    # 10 classes, 4 held out: P(keep | k=1) = 0.6
    est = B.estimate_strict_train(1000, 10, probs=(1.0,))
    assert est == pytest.approx(700 * 0.6)
    assert B.estimate_strict_train(10_000, 70) > 2000


# --------------------------------------------------------------------------------------------- built corpus


def test_build_outputs(built):
    root, _, summary = built
    out = root / "a"
    for name in ("clips.csv", "events.tsv", "classes.csv", "provenance.csv", "scene_sources.csv",
                 "LICENSES.md", "build.json"):
        assert (out / name).is_file(), name
    ds = read_dataset(out)
    assert len(ds) == 40
    assert summary.scenes == {"train": 28, "val": 4, "test": 8}
    assert sorted(summary.classes) == sorted(CLASSES)
    assert "CC0" in (out / "LICENSES.md").read_text()
    for c in _clips(out):
        info = sf.info(str(out / c["filename"]))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 1, 10 * SR, "PCM_16")
        assert c["filename"].startswith(f"audio/{c['split']}/")


def test_families_never_cross_splits(built):
    root, _, _ = built
    fam_split: dict[str, set[str]] = {}
    with open(root / "a" / "provenance.csv", newline="") as f:
        for row in csv.DictReader(f):
            fam_split.setdefault(row["family"], set()).add(row["split"])
    assert fam_split and all(len(s) == 1 for s in fam_split.values())
    # and the sources of each scene come from the scene's split
    by_path = {}
    with open(root / "a" / "provenance.csv", newline="") as f:
        for row in csv.DictReader(f):
            by_path[row["original_path"]] = row["split"]
    with open(root / "a" / "scene_sources.csv", newline="") as f:
        for row in csv.DictReader(f):
            assert row["filename"].split("/")[1] == by_path[row["original_path"]]


def test_scenes_have_1_to_4_distinct_labels_matching_events(built):
    root, _, _ = built
    ev = _events(root / "a")
    counts = set()
    for c in _clips(root / "a"):
        labels = c["labels"].split(";")
        assert 1 <= len(labels) <= 4 and len(set(labels)) == len(labels)
        assert {e[2] for e in ev[c["filename"]]} == set(labels)
        counts.add(len(labels))
    assert len(counts) >= 3  # the event-count distribution is exercised


def test_events_match_the_audio(built):
    root, _, _ = built
    ev = _events(root / "a")
    for c in _clips(root / "a"):
        y, _ = sf.read(str(root / "a" / c["filename"]))
        inside = np.zeros(y.shape[0], dtype=bool)
        for on, off, _ in ev[c["filename"]]:
            assert 0 <= on < off <= 10.0
            inside[int(round(on * SR)):int(round(off * SR))] = True
        rms_in = np.sqrt(np.mean(y[inside] ** 2))
        rms_out = np.sqrt(np.mean(y[~inside] ** 2)) if (~inside).any() else 0.0
        assert 20 * np.log10(rms_in / max(rms_out, 1e-9)) > 15, c["filename"]
        # every event window is itself loud compared with the noise bed
        for on, off, _ in ev[c["filename"]]:
            seg = y[int(round(on * SR)):int(round(off * SR))]
            assert np.sqrt(np.mean(seg**2)) > 2 * max(rms_out, 1e-9)
        assert np.max(np.abs(y)) < 0.95  # headroom, no clipping


def test_no_digitally_silent_segment(built):
    root, _, _ = built
    win = int(0.96 * SR)
    for c in _clips(root / "a"):
        y, _ = sf.read(str(root / "a" / c["filename"]), dtype="int16")
        for start in range(0, y.shape[0] - win + 1, win // 2):
            assert np.count_nonzero(y[start:start + win]) > win // 2


def _same_tree(a: Path, b: Path) -> None:
    for name in ("clips.csv", "events.tsv", "classes.csv", "provenance.csv", "scene_sources.csv", "LICENSES.md"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    fa = sorted(p.relative_to(a) for p in (a / "audio").rglob("*.flac"))
    fb = sorted(p.relative_to(b) for p in (b / "audio").rglob("*.flac"))
    assert fa == fb and fa
    for rel in fa:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_deterministic(built, sources):
    root, cache, _ = built
    # a fresh cache, so the preparation is recomputed too
    B.build_from_sources(root / "b", sources, n_scenes=40, seed=3, workers=1, cache=root / "cache-b")
    _same_tree(root / "a", root / "b")
    other = B.build_from_sources(root / "c", sources, n_scenes=40, seed=4, workers=1, cache=cache)
    assert (root / "c" / "clips.csv").read_bytes() != (root / "a" / "clips.csv").read_bytes()
    assert other.n_scenes == 40


def test_workers_give_identical_output(built, sources):
    root, cache, _ = built
    B.build_from_sources(root / "w2", sources, n_scenes=40, seed=3, workers=2, cache=cache)
    _same_tree(root / "a", root / "w2")


def test_failure_leaves_no_output(built, sources, monkeypatch, tmp_path):
    _, cache, _ = built
    real = scenes.render_scene

    def failing(index, *a, **k):
        if index == 5:
            raise RuntimeError("boom")
        return real(index, *a, **k)

    monkeypatch.setattr(scenes, "render_scene", failing)  # called by the scene workers
    out = tmp_path / "corpus"
    with pytest.raises(RuntimeError, match="boom"):
        B.build_from_sources(out, sources, n_scenes=10, seed=0, cache=cache)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir()]  # no temporary left behind
    # an existing corpus is left as it was
    out.mkdir()
    (out / "clips.csv").write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"):
        B.build_from_sources(out, sources, n_scenes=10, seed=0, cache=cache)
    assert (out / "clips.csv").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


def test_small_classes_are_dropped(tmp_path, sources):
    few = [s for s in sources if s.label != "Cat"] + [s for s in sources if s.label == "Cat"][:2]
    one_family = [s for s in sources if s.label != "Dog" or s.family.endswith(":0")]
    prepared, skipped = B.prepare_sources(few, cache=tmp_path)
    assert not skipped
    kept, dropped = B.select_classes(prepared, min_files=3)
    assert "Cat" in dropped and "Cat" not in {p.source.label for p in kept}
    prepared, _ = B.prepare_sources(one_family, cache=tmp_path)
    _, dropped = B.select_classes(prepared, min_files=2)
    assert "family" in dropped["Dog"]


# --------------------------------------------------------------------------------------------- soundfont


def write_tiny_sf2(path: Path, programs=(12, 40), rate: int = 22050) -> Path:
    """Write a minimal valid SoundFont 2 (about 5 kB, made here, so CC0): one looped sine sample at A4, one
    instrument playing it over the whole keyboard, and one preset per GM program of bank 0 using it.

    Layout (SoundFont 2.01 spec, little-endian): ``RIFF sfbk`` holding ``LIST INFO`` (version, engine, name),
    ``LIST sdta`` (``smpl``: 16-bit PCM, then 46 zero samples) and ``LIST pdta``: the nine "hydra" tables,
    each ending with a terminal record (EOP, EOI, EOS or zeros). Bags index generators; generator 41 makes
    a preset zone use instrument 0, generators 54 (sampleModes: 1 = loop) and 53 (sampleID, last) make the
    instrument zone play sample 0.
    """

    def chunk(tag: bytes, data: bytes) -> bytes:
        return tag + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")

    def name20(text: str) -> bytes:
        return text.encode("ascii")[:19].ljust(20, b"\0")

    period, cycles = 50, 44  # 50 samples a cycle: 441 Hz at 22050 Hz, i.e. MIDI key 69
    pcm = (0.5 * 32767 * np.sin(2 * np.pi * np.arange(period * cycles) / period)).astype("<i2")
    info = b"INFO" + chunk(b"ifil", struct.pack("<HH", 2, 1)) + chunk(b"isng", b"EMU8000\0") + \
        chunk(b"INAM", b"zsa test font\0")
    sdta = b"sdta" + chunk(b"smpl", pcm.tobytes() + bytes(2 * 46))
    n = len(programs)
    # phdr: name, preset (program), bank, first bag, library, genre, morphology
    phdr = b"".join(struct.pack("<20sHHHIII", name20(f"prog{p}"), p, 0, i, 0, 0, 0) for i, p in enumerate(programs))
    phdr += struct.pack("<20sHHHIII", name20("EOP"), 0, 0, n, 0, 0, 0)
    pbag = b"".join(struct.pack("<HH", i, 0) for i in range(n + 1))  # bag i -> generator i, no modulators
    pgen = struct.pack("<HH", 41, 0) * n + bytes(4)  # instrument 0, then the terminal generator
    inst = struct.pack("<20sH", name20("sine"), 0) + struct.pack("<20sH", name20("EOI"), 1)
    ibag = struct.pack("<HH", 0, 0) + struct.pack("<HH", 2, 0)
    igen = struct.pack("<HH", 54, 1) + struct.pack("<HH", 53, 0) + bytes(4)
    end = len(pcm)  # shdr: name, start, end, loop start, loop end, rate, original key, correction, link, mono
    shdr = struct.pack("<20sIIIIIBbHH", name20("sine"), 0, end, 2 * period, end - 2 * period, rate, 69, 0, 0, 1)
    shdr += struct.pack("<20sIIIIIBbHH", name20("EOS"), 0, 0, 0, 0, 0, 0, 0, 0, 0)
    pdta = b"pdta" + b"".join(chunk(tag, data) for tag, data in [
        (b"phdr", phdr), (b"pbag", pbag), (b"pmod", bytes(10)), (b"pgen", pgen), (b"inst", inst),
        (b"ibag", ibag), (b"imod", bytes(10)), (b"igen", igen), (b"shdr", shdr)])
    body = b"sfbk" + chunk(b"LIST", info) + chunk(b"LIST", sdta) + chunk(b"LIST", pdta)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def _pitch(y: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y)), n=8 * len(y)))
    return float(np.argmax(spectrum) * rate / (8 * len(y)))


def test_soundfont_render(tmp_path):
    """The SoundFont path of the corpus renders notes with tinysoundfont from a font built here (no download)."""
    pytest.importorskip("tinysoundfont")  # the README's test command installs it
    from zeroshot_audio.corpus import soundfont as S

    font = write_tiny_sf2(tmp_path / "tiny.sf2", programs=(12, 40))
    spec = S.SoundFontSpec("tiny-soundfont", "tiny.sf2", "Tiny", "Tiny", "CC0")
    insts = [S.Instrument(40, "Violin", "Violin, fiddle", 55, 91),
             S.Instrument(12, "Marimba", "Marimba, xylophone", 45, 84),
             S.Instrument(0, "Acoustic Grand Piano", "Piano", 36, 96)]  # not in the font: skipped
    notes = S.render_instrument_notes(font, spec, insts, tmp_path / "r")
    assert len(notes) == 2 * S.RENDER_SETTINGS["notes"]
    assert {inst.program for inst, _, _ in notes} == {12, 40}
    for inst, note_id, path in notes:
        y, rate = sf.read(str(path))
        assert rate == SR and 1.0 <= y.shape[0] / SR <= 2.6 and np.max(np.abs(y)) > 0.5
        assert note_id.startswith(f"prog{inst.program:03d}/")
        key = int(note_id.split("/")[1][3:])  # the sample (key 69, 441 Hz) is transposed to the note's key
        assert _pitch(y[: SR // 2], SR) == pytest.approx(441.0 * 2 ** ((key - 69) / 12), rel=0.02)
    again = S.render_instrument_notes(font, spec, insts, tmp_path / "r")
    assert [p for *_, p in again] == [p for *_, p in notes]
    assert S.render_instrument_notes(font, spec, insts, tmp_path / "r2")[0][2].read_bytes() == notes[0][2].read_bytes()


def test_test_only_build_puts_everything_in_test(built, sources):
    root, cache, _ = built
    B.build_from_sources(root / "t", sources, n_scenes=12, seed=3, workers=1, cache=cache, test_only=True)
    rows = _clips(root / "t")
    assert len(rows) == 12 and {r["split"] for r in rows} == {"test"}

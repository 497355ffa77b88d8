"""The debian-eval set (``zeroshot_audio.corpus.debian_eval``): its packages and tables, and a whole build from a
real ``.deb`` (made here with ``dpkg-deb -b``, so nothing is downloaded) labelled by a tiny rules table."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from zeroshot_audio._errors import ParameterError
from zeroshot_audio.corpus import debian_eval as E
from zeroshot_audio.corpus.packages import DEBIAN_PACKAGES, EVAL_PACKAGES, RESERVED_PACKAGES, WHEELS
from zeroshot_audio.corpus.rules import EVAL_PHRASINGS_FILE, EVAL_RULES_FILE, RULES_FILE, read_rules
from zeroshot_audio.data.dataset import read_dataset
from zeroshot_audio.evaluation.phrasings import read_phrasings

SR = 16000


# ------------------------------------------------------------------------------------------- packages, tables


def test_eval_packages_are_disjoint_from_the_corpus_and_not_reserved():
    training = set(DEBIAN_PACKAGES) | set(WHEELS) | {r.package for r in read_rules(RULES_FILE)}
    assert not set(EVAL_PACKAGES) & training
    assert not set(EVAL_PACKAGES) & RESERVED_PACKAGES
    assert not training & RESERVED_PACKAGES
    # the table of reviewed versions is the one the rules table's "# packages:" line states, and names exactly
    # the packages the rules use
    line = next(x for x in EVAL_RULES_FILE.read_text(encoding="utf-8").splitlines() if x.startswith("# packages:"))
    stated = dict(p.strip().split("=", 1) for p in line.split(":", 1)[1].split(","))
    assert stated == EVAL_PACKAGES
    assert {r.package for r in read_rules(EVAL_RULES_FILE)} == set(EVAL_PACKAGES)


def test_every_eval_label_has_free_and_short_phrasings():
    labels = {r.label for r in read_rules(EVAL_RULES_FILE) if not r.skip}
    table = read_phrasings(EVAL_PHRASINGS_FILE)
    assert set(table) == labels
    assert all(len(k.get("free", [])) >= 1 and len(k.get("short", [])) >= 1 for k in table.values())


def test_reserved_package_is_refused_before_anything(tmp_path):
    with pytest.raises(ParameterError, match="reserved"):
        E.build_eval(tmp_path / "out", cache=tmp_path, packages=["0ad-data"])
    assert not (tmp_path / "out").exists() and not (tmp_path / "downloads").exists()


def test_eval_split_counts_serve_every_split_from_three_families():
    from zeroshot_audio.corpus.splits import _split_counts, assign_splits, split_counts_with_val

    for n in range(1, 40):
        got = split_counts_with_val(n)
        assert sum(got.values()) == n and got["train"] >= 1
        if n >= 3:
            assert got["val"] >= 1 and got["test"] >= 1
            assert abs(got["test"] - 0.2 * n) <= 1 and abs(got["val"] - 0.1 * n) <= 1
        else:
            assert got == _split_counts(n)
    assert _split_counts(4)["val"] == 0 and split_counts_with_val(4) == {"train": 2, "val": 1, "test": 1}
    fams = {"A": ["a1", "a2", "a3"], "B": ["b1", "b2"], "C": ["c1"]}
    split = assign_splits(fams, seed=2, counts=split_counts_with_val)
    assert sorted(split[f] for f in fams["A"]) == ["test", "train", "val"]
    assert sorted(split[f] for f in fams["B"]) == ["test", "train"] and split["c1"] == "train"


# ------------------------------------------------------------------------------------------- a build


def _burst(seconds: float, freq: float, rate: int) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


def _padded(seconds: float, freq: float, rate: int = SR, pad: float = 0.3) -> np.ndarray:
    z = np.zeros(int(round(pad * rate)))
    return np.concatenate([z, _burst(seconds, freq, rate), z])


def _make_deb(tmp: Path) -> Path:
    root = tmp / "pkgroot"
    snd = root / "usr/share/fake-eval/sounds"
    snd.mkdir(parents=True)
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text(
        "Package: fake-eval\nVersion: 1.0\nArchitecture: all\nMaintainer: test <t@example.org>\n"
        "Description: test sounds\n", encoding="utf-8")
    sf.write(snd / "bark_1.wav", _padded(1.0, 400), SR, subtype="PCM_16")
    sf.write(snd / "bark_2.wav", _padded(0.6, 500), SR, subtype="PCM_16")
    shutil.copy(snd / "bark_1.wav", snd / "bark_copy.wav")  # byte-identical: dropped
    sf.write(snd / "bark_silent.wav", np.zeros(SR), SR, subtype="PCM_16")  # no active audio: skipped
    long = np.concatenate([np.tile(_padded(1.0, 450), 16)])  # 25.6 s at 16 kHz ...
    long = np.concatenate([long, _burst(20.0, 450, SR)])  # ... + 20 s: 45.6 s, cut to 30 s
    sf.write(snd / "bark_long.wav", long, SR, subtype="PCM_16")
    st = _padded(0.8, 700, 44100)
    sf.write(snd / "cat_1.wav", np.stack([st, 0.5 * st], axis=1), 44100, subtype="PCM_16")  # stereo 44.1 kHz
    sf.write(snd / "cat_2.wav", _padded(0.7, 800), SR, subtype="PCM_16")
    sf.write(snd / "cat_3.wav", _padded(0.5, 900), SR, subtype="PCM_16")
    sf.write(snd / "bell_1.wav", _padded(0.9, 1000), SR, subtype="PCM_16")  # one family: recordings only
    sf.write(snd / "bell_2.wav", _padded(0.4, 1100), SR, subtype="PCM_16")
    sf.write(snd / "click.wav", _padded(0.2, 2000), SR, subtype="PCM_16")  # SKIP rule
    deb = tmp / "cache" / "downloads" / "fake-eval_1.0_all.deb"
    deb.parent.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Znone", "-b", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is needed to make the test package")
    tmp = tmp_path_factory.mktemp("eval")
    _make_deb(tmp)
    rules = tmp / "rules.csv"
    rules.write_text(
        "package,pattern,label,family,licence,note\n"
        "fake-eval,/click\\.wav$,SKIP,,CC0,interface click\n"
        "fake-eval,/bark_\\w+\\.wav$,Bark,fake:{stem_nonum},GPL-2+,two families: train and test\n"
        "fake-eval,/cat_\\d\\.wav$,Cat,fake:{stem},CC-BY-3.0,three families: train val test\n"
        "fake-eval,/bell_\\d\\.wav$,Bell,fake:bell,CC0,one family: recordings only\n", encoding="utf-8")
    phrasings = tmp / "phrasings.csv"
    phrasings.write_text(
        "label,phrasing,kind\nBark,a dog barking,free\nBark,woof woof,free\nBark,dog,short\n"
        "Cat,a cat meowing,free\nCat,cat,short\nRain,rain falling,free\n", encoding="utf-8")
    out = tmp / "out"
    summary = E.build_eval(out, n_scenes=24, seed=1, cache=tmp / "cache", rules=rules, packages=["fake-eval"],
                           phrasings=phrasings)
    return tmp, out, summary


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_recordings_are_the_files_as_they_are(built):
    tmp, out, summary = built
    ds = read_dataset(out / "recordings")
    src = tmp / "pkgroot/usr/share/fake-eval/sounds"
    prov = {Path(r["original_path"]).name: r for r in _rows(out / "provenance.csv")}
    assert sorted(prov) == ["bark_1.wav", "bark_2.wav", "bark_long.wav", "bell_1.wav", "bell_2.wav",
                            "cat_1.wav", "cat_2.wav", "cat_3.wav"]
    assert summary.duplicates == 1 and [s[1].rsplit("/", 1)[1] for s in summary.skipped] == ["bark_silent.wav"]
    assert len(ds.filenames) == 8 and set(ds.splits) == {"test"}
    assert list(ds.classes) == ["Bark", "Cat", "Bell"]  # AudioSet order
    for name, r in prov.items():
        clip = r["recording"]
        i = ds.filenames.index(clip)
        assert list(ds.labels[i]) == [r["label"]]
        got, rate = sf.read(out / "recordings" / clip, dtype="int16")
        assert rate == SR and got.ndim == 1
        orig, orate = sf.read(src / name, dtype="int16")
        if orate == SR and orig.ndim == 1:  # 16 kHz mono: the same samples, level unchanged, cut at 30 s
            assert np.array_equal(got, orig[: 30 * SR])
        else:  # resampled and downmixed: same duration
            assert abs(got.shape[0] / SR - orig.shape[0] / orate) < 2 / SR
        assert float(r["seconds"]) == pytest.approx(got.shape[0] / SR, abs=1e-3)
    assert prov["bark_long.wav"]["seconds"] == "30.000"
    assert ds.families[ds.filenames.index(prov["cat_1.wav"]["recording"])] == "fake:cat_1"


def test_recording_events_are_the_active_parts(built):
    _, out, _ = built
    ds = read_dataset(out / "recordings")
    prov = {Path(r["original_path"]).name: r["recording"] for r in _rows(out / "provenance.csv")}
    ev = {}
    for e in ds.events:
        ev.setdefault(e.filename, []).append((e.onset, e.offset, e.label))
    assert set(ev) == set(ds.filenames)  # every recording has its active part as events
    (on, off, lab), = ev[prov["bark_1.wav"]]
    assert lab == "Bark" and on == pytest.approx(0.3, abs=0.011) and off == pytest.approx(1.3, abs=0.011)
    long = ev[prov["bark_long.wav"]]
    assert len(long) == 17  # 16 padded bursts (0.6 s gaps are not merged) + the long tone, cut at 30 s
    assert long[-1][1] == pytest.approx(30.0, abs=0.011)
    assert long[0][0] == pytest.approx(0.3, abs=0.011) and long[1][0] == pytest.approx(1.6 + 0.3, abs=0.011)


def test_scenes_have_splits_that_share_no_recording(built):
    _, out, summary = built
    sc = read_dataset(out / "scenes")
    assert set(sc.classes) == {"Bark", "Cat"}  # Bell has one family: recordings only
    assert summary.scenes.n_scenes == 24 and summary.scenes.out == out / "scenes"
    assert len(sc.filenames) == 24 and set(sc.splits) == {"train", "val", "test"}
    for e in sc.events:
        assert e.label in sc.labels[sc.filenames.index(e.filename)]
    info = json.loads((out / "scenes" / "build.json").read_text(encoding="utf-8"))
    assert info["corpus"] == "debian-eval" and info["settings"]["min_files"] == 2
    assert info["settings"]["min_families"] == 2
    # families, then recordings, are partitioned: Bark's 2 families train + test, Cat's 3 one in each split
    prov = _rows(out / "scenes" / "provenance.csv")
    fam_split = {(r["label"], r["family"]): r["split"] for r in prov}
    assert sorted(s for (lab, _), s in fam_split.items() if lab == "Bark") == ["test", "train"]
    assert sorted(s for (lab, _), s in fam_split.items() if lab == "Cat") == ["test", "train", "val"]
    # a scene of a split mixes only recordings of that split: no recording is heard in two splits
    rec_split = {r["original_path"]: r["split"] for r in prov}
    split_of = dict(zip(sc.filenames, sc.splits))
    heard: dict[str, set[str]] = {}
    for r in _rows(out / "scenes" / "scene_sources.csv"):
        assert rec_split[r["original_path"]] == split_of[r["filename"]], r
        heard.setdefault(r["original_path"], set()).add(split_of[r["filename"]])
    assert all(len(s) == 1 for s in heard.values()) and len(heard) > 3
    # the top-level provenance names each recording's scene split
    top = {r["original_path"]: r["scene_split"] for r in _rows(out / "provenance.csv")}
    assert {k: v for k, v in top.items() if k in rec_split} == rec_split
    assert all(top[k] == "" for k in top if "bell_" in k)
    # provenance counts the scenes that use each recording, as the scenes' own record does
    used = {}
    for r in _rows(out / "scenes" / "scene_sources.csv"):
        used.setdefault(r["original_path"], set()).add(r["filename"])
    for r in _rows(out / "provenance.csv"):
        assert int(r["scenes"]) == len(used.get(r["original_path"], ())), r["original_path"]
    assert sum(int(r["scenes"]) for r in _rows(out / "provenance.csv")) >= 24


def test_clean_scenes_are_the_same_scenes_without_the_noise_bed(built):
    _, out, summary = built
    sc, cl = read_dataset(out / "scenes"), read_dataset(out / E.CLEAN_SCENES)
    assert summary.clean_scenes.out == out / E.CLEAN_SCENES
    assert sc.filenames == cl.filenames and list(sc.splits) == list(cl.splits) and sc.events == cl.events
    sources = "scene_sources.csv"
    assert (out / "scenes" / sources).read_bytes() == (out / E.CLEAN_SCENES / sources).read_bytes()
    quiet = 0
    for name in sc.filenames[:8]:
        noisy, _ = sf.read(out / "scenes" / name, dtype="int16")
        clean, _ = sf.read(out / E.CLEAN_SCENES / name, dtype="int16")
        diff = noisy.astype(np.float64) - clean
        # the difference is the bed (-55..-40 dBFS RMS, up to rounding), and the clean scene is digital silence
        # wherever no event sounds
        rms_db = 20 * np.log10(np.sqrt(np.mean((diff / 32767) ** 2)))
        assert -56.5 < rms_db < -39.5, (name, rms_db)
        quiet += int(np.sum(clean == 0) > 0.1 * clean.size)
    assert quiet >= 4


def test_phrasings_licences_and_summary(built):
    _, out, summary = built
    rows = [(r["label"], r["phrasing"], r["kind"]) for r in _rows(out / "phrasings.csv")]
    assert rows == [
        ("Bark", "Bark", "name"), ("Bark", "a dog barking", "free"), ("Bark", "woof woof", "free"),
        ("Bark", "dog", "short"),
        ("Cat", "Cat", "name"), ("Cat", "a cat meowing", "free"), ("Cat", "cat", "short"),
        ("Bell", "Bell", "name"),
    ]  # Rain is not in the set
    lic = (out / "LICENSES.md").read_text(encoding="utf-8")
    assert lic.startswith("# Licences of the debian-eval corpus")
    assert "| fake-eval | 1.0 |" in lic and "CC-BY-3.0 (3); CC0 (2); GPL-2+ (3)" in lic
    info = json.loads((out / "build.json").read_text(encoding="utf-8"))
    assert info["counts"]["recordings"] == 8 and info["counts"]["recordings_per_class"] == {
        "Bark": 3, "Cat": 3, "Bell": 2}
    assert info["counts"]["phrasings"] == {"name": 3, "free": 3, "short": 2}
    last = str(summary).splitlines()[-1]
    assert last.startswith("debian-eval: 8 recordings of 3 labels from 1 packages")
    assert "24 scenes of 2 classes" in last and "phrasings name 3, free 3, short 2" in last

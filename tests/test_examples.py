"""Labels given by example clips: reading example folders, building classes, tagging with them, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from zeroshot_audio import ParameterError
from zeroshot_audio.examples import prototype, read_examples, sound_segments

CLIPS = Path(__file__).parents[1] / "examples"


def _folder(tmp_path: Path, layout: dict[str, list[str]]) -> Path:
    root = tmp_path / "ex"
    for folder, names in layout.items():
        (root / folder).mkdir(parents=True)
        for n in names:
            shutil.copy(CLIPS / f"{n}.flac", root / folder / f"{n}.flac")
    return root


def test_read_examples_folders_and_warnings(tmp_path):
    root = _folder(tmp_path, {"cow  moo": ["cow"], "dog": ["dog"], "empty": []})
    shutil.copy(CLIPS / "rooster.flac", root / "stray.flac")
    ex = read_examples(root)
    assert ex.clips == {"cow moo": [root / "cow  moo" / "cow.flac"], "dog": [root / "dog" / "dog.flac"]}
    assert any(str(root / "empty") in w for w in ex.warnings)
    assert any("stray.flac" in w for w in ex.warnings)


def test_read_examples_labels_csv(tmp_path):
    root = _folder(tmp_path, {"a": ["cow"], "b": ["dog"], "c": ["rooster"]})
    (root / "labels.csv").write_text("folder,label\na,cattle|a cow moos\nb,dog barking\nmissing,x\n")
    ex = read_examples(root)
    assert list(ex.clips) == ["cattle|a cow moos", "dog barking"]
    assert any(str(root / "c") in w and "labels.csv" in w for w in ex.warnings)  # not named: skipped
    assert any(str(root / "missing") in w for w in ex.warnings)


def test_read_examples_errors(tmp_path):
    with pytest.raises(ParameterError, match="no such folder"):
        read_examples(tmp_path / "nope")
    root = _folder(tmp_path, {"empty": []})
    with pytest.raises(ParameterError, match=str(root)):
        read_examples(root)
    root2 = _folder(tmp_path / "2", {"a": ["cow"]})
    (root2 / "labels.csv").write_text("folder,name\na,x\n")
    with pytest.raises(ParameterError, match="labels.csv: line 1"):
        read_examples(root2)


def test_sound_segments_drop_silence(tagger):
    wav, sr = sf.read(CLIPS / "dog.flac", dtype="float32")
    wav = wav if wav.ndim == 1 else wav.mean(1)
    padded = np.concatenate([np.zeros(5 * sr, np.float32), wav])  # 5 s of digital silence first
    _, out = tagger._embed(padded, sr)
    cfg = tagger.trained.config
    keep = sound_segments(out.embeddings, audio_dim=cfg.audio_dim,
                          silence=list(tagger.embedder.class_names).index("Silence"))
    starts = out.times[:, 0]
    assert not keep[starts + 0.975 <= 5.0].any() and keep[starts >= 5.0].any()
    # the prototype of the padded clip is the prototype of its sound
    silence = list(tagger.embedder.class_names).index("Silence")
    _, plain = tagger._embed(wav, sr)
    a = prototype([out.embeddings], audio_dim=cfg.audio_dim, silence=silence)
    b = prototype([plain.embeddings], audio_dim=cfg.audio_dim, silence=silence)
    assert float(a @ b) > 0.95


def test_tag_with_examples_ranks_the_example_label(tagger):
    ex = {"farm animal A": [str(CLIPS / "cow.flac")], "farm animal B": [str(CLIPS / "dog.flac")],
          "farm animal C": [str(CLIPS / "rooster.flac")]}
    for clip, want in (("cow", "farm animal A"), ("dog", "farm animal B"), ("rooster", "farm animal C")):
        res = tagger.tag(CLIPS / f"{clip}.flac", examples=ex)
        assert res.labels[0].label == want
        assert res.labels[0].probability >= 0.5 > res.labels[1].probability
        assert res.labels[0].events and res.labels[0].detection.shape == res.labels[0].segment_scores.shape


def test_text_and_examples_blend(tagger):
    text_only = tagger.tag(CLIPS / "dog.flac", labels=["dog barking", "cow mooing"])
    both = tagger.tag(CLIPS / "dog.flac", labels=["dog barking", "cow mooing"],
                      examples={"dog barking": [str(CLIPS / "dog.flac")]})
    s_text = {r.label: r.score for r in text_only.labels}
    s_both = {r.label: r.score for r in both.labels}
    assert s_both["cow mooing"] == pytest.approx(s_text["cow mooing"], abs=1e-5)  # no examples: unchanged
    assert s_both["dog barking"] != pytest.approx(s_text["dog barking"], abs=1e-3)
    assert [r.label for r in both.labels][0] == "dog barking"


def test_examples_that_agree_with_the_text_weigh_more(tagger):
    """The examples' weight grows with the cosine of their YAMNet class profile and the text's anchor weights."""
    from zeroshot_audio.examples import MIX_HIGH, MIX_LOW, text_mix

    _, _, agree, _ = tagger.label_set(["dog barking"], {"dog barking": [str(CLIPS / "dog.flac")]})
    _, _, other, _ = tagger.label_set(["dog barking"], {"dog barking": [str(CLIPS / "cow.flac")]})
    m_agree, m_other = float(agree.mix[0]), float(other.mix[0])
    assert MIX_LOW <= m_other < m_agree <= MIX_HIGH, (m_other, m_agree)
    _, _, only, _ = tagger.label_set(None, {"dog barking": [str(CLIPS / "dog.flac")]})
    assert float(only.mix[0]) == 1.0  # no text: the examples alone
    assert text_mix(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == MIX_LOW
    assert text_mix(np.array([0.0, 2.0]), np.array([0.0, 1.0])) == MIX_HIGH


def test_waveform_examples_and_bad_examples(tagger, tmp_path, caplog):
    wav, sr = sf.read(CLIPS / "cow.flac", dtype="float32")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    short = tmp_path / "short.wav"
    sf.write(short, wav[: sr // 2], sr)
    ex = {"cow": [(wav, sr), str(bad), str(short)], "nothing": [str(bad)], "dog": [str(CLIPS / "dog.flac")]}
    labels, emb, prototypes, warnings = tagger.label_set(None, ex)
    assert labels == ["cow", "dog"]  # 'nothing' has no usable example
    assert any(str(bad) in w and "'cow'" in w for w in warnings)
    assert any(str(short) in w and "shorter than one segment" in w for w in warnings)
    assert any("'nothing'" in w for w in warnings)
    assert str(bad) in caplog.text
    with pytest.raises(ParameterError, match="no labels"):
        tagger.label_set(None, {"nothing": [str(bad)]})


def test_example_classes_are_cached(tagger, tmp_path):
    from zeroshot_audio import examples as ex_mod

    ex_mod._CACHE.clear()
    clip = tmp_path / "dog.flac"
    shutil.copy(CLIPS / "dog.flac", clip)
    a = tagger.example_classes({"d": [str(clip)]})
    assert len(ex_mod._CACHE) == 1
    b = tagger.example_classes({"d": [str(clip)]})
    np.testing.assert_array_equal(a.vectors["d"], b.vectors["d"])
    shutil.copy(CLIPS / "cow.flac", clip)  # a new file at the same path is embedded again
    c = tagger.example_classes({"d": [str(clip)]})
    assert len(ex_mod._CACHE) == 2 and float(a.vectors["d"] @ c.vectors["d"]) < 0.999


def test_cli_tag_examples(tagger, tmp_path, capsys, monkeypatch, caplog):
    import zeroshot_audio.tagging
    from zeroshot_audio.cli import main

    monkeypatch.setattr(zeroshot_audio.tagging, "load_model", lambda *a, **k: tagger)  # the real model, loaded once

    root = _folder(tmp_path, {"cow": ["cow"], "rooster": ["rooster"], "empty": []})
    code = main(["tag", str(CLIPS / "cow.flac"), str(CLIPS / "rooster.flac"), "--examples", str(root),
                 "--labels", "dog barking", "--format", "jsonl"])
    assert code == 0
    captured = capsys.readouterr()
    rows = [__import__("json").loads(line) for line in captured.out.splitlines() if line.strip()]
    assert [r["labels"][0]["label"] for r in rows] == ["cow", "rooster"]
    assert {lab["label"] for lab in rows[0]["labels"]} == {"cow", "rooster", "dog barking"}
    assert str(root / "empty") in caplog.text  # warned about, the rest went on
    assert main(["tag", str(CLIPS / "cow.flac")]) == 2
    assert "--examples" in capsys.readouterr().err

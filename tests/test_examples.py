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


def test_examples_lift_the_text_and_never_lower_it(tagger):
    """A label with text and examples: its examples raise the segments they sound like and take nothing away."""
    labels = ["dog barking", "cow mooing"]
    ex = {"cow mooing": [str(CLIPS / "dog.flac")]}  # examples that sound like a dog, under "cow mooing"
    for clip, rises in (("dog", True), ("cow", False)):
        text = {r.label: r for r in tagger.tag(CLIPS / f"{clip}.flac", labels=labels).labels}
        both = {r.label: r for r in tagger.tag(CLIPS / f"{clip}.flac", labels=labels, examples=ex).labels}
        assert both["dog barking"].score == pytest.approx(text["dog barking"].score, abs=1e-5)  # no examples
        assert (both["cow mooing"].segment_scores >= text["cow mooing"].segment_scores - 1e-5).all()
        if rises:  # the dog clip sounds like the examples: its "cow mooing" segments go up
            assert both["cow mooing"].score > text["cow mooing"].score + 0.5
        else:  # the cow clip does not: its text evidence stays
            assert both["cow mooing"].probability >= 0.5 and both["cow mooing"].score >= text["cow mooing"].score - 1e-5


def test_label_set_lifts_text_labels_and_replaces_example_only_ones(tagger):
    from zeroshot_audio.examples import EXAMPLE_LIFT

    _, _, both, _ = tagger.label_set(["dog barking"], {"dog barking": [str(CLIPS / "dog.flac")]})
    # the text stays, the examples lift it
    assert float(both.mix[0]) == 0.0 and float(both.lift[0]) == pytest.approx(EXAMPLE_LIFT)
    _, _, only, _ = tagger.label_set(None, {"dog barking": [str(CLIPS / "dog.flac")]})
    assert float(only.mix[0]) == 1.0 and float(only.lift[0]) == 0.0  # no text: the examples alone


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
    ex_mod._CACHE.forget(tmp_path)  # what zsa serve does with a request's folder
    assert len(ex_mod._CACHE) == 0 and ex_mod._CACHE.bytes == 0


def test_the_example_cache_keeps_to_its_byte_budget(tagger, tmp_path, monkeypatch):
    """Least recently used out first, within CACHE_BYTES: a server fed new example clips does not grow."""
    from zeroshot_audio import examples as ex_mod

    ex_mod._CACHE.clear()
    clips = []
    for i, name in enumerate(["dog", "cow", "rooster", "dog"]):
        clips.append(tmp_path / f"{i}-{name}.flac")
        shutil.copy(CLIPS / f"{name}.flac", clips[-1])
    sizes = {}
    for clip in clips[:2]:
        tagger.example_classes({"x": [str(clip)]})
        sizes[clip] = ex_mod._CACHE.bytes - sum(sizes.values())
    monkeypatch.setattr(ex_mod, "CACHE_BYTES", sum(sizes.values()) + 1)  # room for these two only
    tagger.example_classes({"x": [str(clips[0])]})  # used again: now the most recent
    tagger.example_classes({"x": [str(clips[2])]})  # evicts clips[1], the least recently used
    keys = [k[1] for k in ex_mod._CACHE.items]
    assert str(clips[1].resolve()) not in keys and str(clips[0].resolve()) in keys
    assert ex_mod._CACHE.bytes <= ex_mod.CACHE_BYTES
    ex_mod._CACHE.clear()


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

"""Hostile inputs: each defect found by trying to break the tool, reproduced with real files and real models."""

import json
import logging
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from zeroshot_audio import ParameterError
from zeroshot_audio.cli import main
from zeroshot_audio.events import EventOptions

sys.path.insert(0, str(Path(__file__).parent))
from _blocking import blocking  # noqa: E402
from _event_reference import reference_events  # noqa: E402

EXAMPLES = Path(__file__).parents[1] / "examples"

# =====================================================================================================================
# Issue 8, items 5 (quadratic events), 7 (NaN in outputs), 8 (--plot names, --events TSV), 9 (inputs) and from
# item 6 labels files in other encodings, model configs of the wrong JSON types, empty or garbage weights.pt.
# =====================================================================================================================


@pytest.fixture
def yamnet_cache(embedder, monkeypatch):
    """Point ZSA_CACHE_DIR at the cache where YAMNet is set up for the tests (as tests/test_tagging.py does)."""
    monkeypatch.setenv("ZSA_CACHE_DIR", str(Path(embedder.model_path).parents[2]))


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("zsa: error: ") and "Traceback" not in err
    return lines[0]


def _model_copy(tmp_path: Path) -> Path:
    from zeroshot_audio.tagging import DEFAULT_MODEL_DIR

    return Path(shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model"))


# --------------------------------------------------------------------------------- item 5: linear event assembly


class _NoIndexList(list):
    """A label list whose ``index`` (a linear search) must not be used per event."""

    def index(self, *args, **kwargs):
        raise AssertionError("labels.index called: event assembly went back to a linear search per event")


def _reference_events(tagger, res_embeddings, duration, emb, options):
    """The events of LabelResult's definition: the torch module's segment scores, calibrated, through the scalar
    reference of EventOptions, label by label."""
    import torch

    from zeroshot_audio.events import frame_timestamps

    x = torch.from_numpy(res_embeddings)
    t, w = x.shape[0], tagger.window_segments
    n_win = -(-t // w)
    xw = torch.cat([x, torch.zeros(n_win * w - t, x.shape[1])]).view(n_win, w, -1)
    mask = (torch.arange(n_win * w) < t).view(n_win, w)
    with torch.no_grad():  # the torch module (the training form), an independent reference for the numpy forward
        res = tagger.trained.torch_model()(xw, mask, torch.from_numpy(emb), return_segments=True)
    clip = res.clip_scores.numpy()
    att_w = res.attention.numpy()
    att = att_w.reshape(n_win * w, -1)[:t]
    seg = res.segment_scores.numpy().reshape(n_win * w, -1)[:t]
    stamps = frame_timestamps(t, tagger.embedder.hop, duration)
    win_of = np.arange(t) // w
    present = (tagger.probability(clip)[win_of] >= 0.5).tolist()
    det = tagger.probability(seg)  # p_t: the calibration applied to the segment scores
    out = [reference_events(det[:, i].tolist(), stamps.tolist(), options, [row[i] for row in present])
           for i in range(emb.shape[0])]
    return out, att, seg, stamps


def test_events_of_many_labels_are_assembled_without_a_search_per_event(tagger, monkeypatch):
    """2,000 labels on 60 s: events equal the label-by-label definition, and no per-event ``labels.index``
    (the quadratic 1 h x 10,000 labels case, 528 s before). Small score/event blocks force the windowed and
    blocked code paths."""
    from zeroshot_audio import tagging

    monkeypatch.setattr(tagging, "_SCORE_CELLS", 2 * 10 * 2000)  # two windows per model call
    monkeypatch.setattr(tagging, "_EVENT_CELLS", 63 * 300)  # 300 labels per event block
    # random labels are rarely judged present: raise every probability to about even odds (the median segment's
    # log-odds is about -3.8), so that the labels' curves cross the thresholds often and give many events
    monkeypatch.setattr(tagger, "bias", tagger.bias + 3.8)
    dog, sr = sf.read(EXAMPLES / "dog.flac", dtype="float32")
    rng = np.random.default_rng(5)
    wav = np.concatenate([0.01 * rng.standard_normal(20 * sr), dog, 0.01 * rng.standard_normal(34 * sr)])
    emb = rng.standard_normal((2000, 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = _NoIndexList(f"label {i}" for i in range(2000))
    options = EventOptions(threshold=0.5, low=0.4, min_gap=0.0)
    res = tagger.tag_encoded(wav.astype(np.float32), labels, emb, sample_rate=sr, event_options=options)
    out = tagger._embed(wav.astype(np.float32), sr)[1]
    ref, att, seg, stamps = _reference_events(tagger, out.embeddings, out.duration, emb, options)
    by_label = {r.label: r for r in res.labels}
    n_events = 0
    for i, lab in enumerate(labels):
        r = by_label[lab]
        np.testing.assert_allclose(r.attention, att[:, i], rtol=0, atol=1e-5)
        np.testing.assert_allclose(r.segment_scores, seg[:, i], rtol=0, atol=1e-5)
        assert len(r.events) == len(ref[i]), lab
        np.testing.assert_allclose(np.reshape(r.events, (-1, 3)), np.reshape(ref[i], (-1, 3)), rtol=0, atol=1e-3)
        n_events += len(r.events)
    assert n_events > 2000  # many events: a per-event search over 2,000 labels would be the quadratic case


def test_active_runs_and_their_maxima():
    from zeroshot_audio.events import active_runs, run_maxima

    scores = np.array([[0.9, 0.1, 0.7], [0.8, 0.9, 0.1], [0.1, 0.9, 0.8], [0.7, 0.2, 0.9]])
    col, start, stop = active_runs(scores >= 0.5)
    assert list(zip(col.tolist(), start.tolist(), stop.tolist())) == [(0, 0, 2), (0, 3, 4), (1, 1, 3), (2, 0, 1),
                                                                      (2, 2, 4)]
    np.testing.assert_array_equal(run_maxima(scores, col, start, stop), [0.9, 0.7, 0.9, 0.7, 0.9])


# ------------------------------------------------------------------------------------------- item 7: NaN in outputs


def _poison_weights(model: Path, value: float, key: str = "audio_proj.weight", index=(3, 5)) -> None:
    with np.load(model / "weights.npz") as z:
        state = dict(z)
    state[key][index] = value
    np.savez(model / "weights.npz", **state)


def test_nan_weight_is_refused_when_the_model_loads(tmp_path, capsys):
    model = _model_copy(tmp_path)
    _poison_weights(model, float("nan"))
    code = main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "dog barking", "--model", str(model),
                 "--format", "json"])
    out, err = capsys.readouterr()
    line = _one_error_line(err)
    assert code == 2 and out == ""
    assert "weights.npz" in line and "non-finite" in line and "audio_proj.weight" in line


def test_nan_class_embedding_is_refused(tmp_path, capsys):
    model = _model_copy(tmp_path)
    emb = np.load(model / "class_embeddings.npy")
    emb[3, 7] = np.nan  # class 3 is "Dog": tagging with the label "Dog" used this row as it was
    np.save(model / "class_embeddings.npy", emb)
    code = main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "Dog", "--model", str(model), "--format", "json"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "class_embeddings.npy" in line and "row 3" in line and "'Dog'" in line


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "abc"])
def test_bad_calibration_is_refused(tmp_path, capsys, value):
    model = _model_copy(tmp_path)
    doc = json.loads((model / "config.json").read_text())
    doc["info"]["calibration"]["scale"] = value
    (model / "config.json").write_text(json.dumps(doc))  # json writes NaN and Infinity unless told not to
    code = main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "dog barking", "--model", str(model),
                 "--format", "json"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "config.json" in line and "info.calibration.scale" in line


def test_overflowing_weights_give_a_failure_not_nan_json(tmp_path, capsys, yamnet_cache):
    """Finite weights whose scores overflow: the file fails with a message, no "score": NaN is printed."""
    model = _model_copy(tmp_path)
    _poison_weights(model, 3e38, "anchor_scale", 0)  # times the semantic logit (about +-14): overflows float32
    code = main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "dog barking;rain", "--model", str(model),
                 "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 1 and "NaN" not in out and "non-finite scores" in err and "dog.flac" in err


def test_non_finite_label_cache_entry_is_encoded_again(tmp_path, caplog):
    from zeroshot_audio.text import CachedLabelEncoder, HashingLabelEncoder

    enc = CachedLabelEncoder(HashingLabelEncoder(dim=16), directory=tmp_path / "labels")
    good = enc.encode(["dog barking", "rain"])
    entry = enc._path("dog barking")
    assert entry.is_file()
    np.save(entry, np.full(16, np.nan, dtype=np.float32))  # a corrupted entry of the right shape
    with caplog.at_level(logging.WARNING, logger="zeroshot_audio.text"):
        again = enc.encode(["dog barking", "rain"])
    np.testing.assert_array_equal(again, good)
    assert "NaN" in caplog.text and entry.name in caplog.text
    assert np.isfinite(np.load(entry)).all()  # rewritten


# ------------------------------------------------------------------------- item 8: --plot names, --events TSV names


def test_plot_names_are_unique_and_predictable(tmp_path):
    from zeroshot_audio.cli.tag import _plot_names

    files = [tmp_path / "a" / "dog.wav", tmp_path / "b" / "dog.wav", tmp_path / "a_b" / "c.wav",
             tmp_path / "a" / "b_c.wav", tmp_path / "a" / "Dog.wav"]
    assert _plot_names(files) == ["a_dog.wav.png", "b_dog.wav.png", "a_b_c.wav.png", "a_b_c.wav-2.png",
                                  "a_Dog.wav-2.png"]
    assert _plot_names([tmp_path / "x" / "dog.wav", tmp_path / "x" / "cow.wav"]) == ["dog.wav.png", "cow.wav.png"]


def test_plot_of_files_sharing_a_name_writes_one_png_each(tmp_path, capsys, yamnet_cache):
    for sub, clip in (("a", "dog.flac"), ("b", "cow.flac")):
        (tmp_path / sub).mkdir()
        shutil.copy(EXAMPLES / clip, tmp_path / sub / "x.flac")
    code = main(["tag", str(tmp_path / "a"), str(tmp_path / "b" / "x.flac"), "--labels", "dog barking;cow mooing",
                 "--plot", str(tmp_path / "plots"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["a_x.flac.png", "b_x.flac.png"]


def test_events_tsv_refuses_a_name_with_a_tab(tmp_path, capsys, yamnet_cache):
    audio = tmp_path / "in"
    audio.mkdir()
    shutil.copy(EXAMPLES / "dog.flac", audio / "dog.flac")
    shutil.copy(EXAMPLES / "dog.flac", audio / "bad\tname.flac")
    code = main(["tag", str(audio), "--labels", "dog barking;rain", "--events", str(tmp_path / "ev.tsv"),
                 "--format", "csv", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 1
    refused = [ln for ln in err.splitlines() if "--events" in ln]
    assert len(refused) == 1 and "bad\\tname.flac'" in refused[0] and "ev.tsv" in refused[0]
    assert "bad\tname.flac" in out  # the other outputs still hold the file
    lines = (tmp_path / "ev.tsv").read_text().splitlines()
    assert lines[0] == "filename\tonset\toffset\tevent_label" and len(lines) > 1
    assert all(len(ln.split("\t")) == 4 and ln.split("\t")[0].endswith("dog.flac") for ln in lines[1:])


# ------------------------------------------------------------------------------------------------ item 9: inputs


def test_labels_file_from_a_pipe_with_a_bom(tmp_path, capsys, yamnet_cache):
    """`--labels-file <(...)` is a FIFO, not a regular file; the UTF-8 BOM does not stay in the first label."""
    fifo = tmp_path / "labels.fifo"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "wb") as f:
            f.write("\ufeffdog barking\n# a comment\nrain\n".encode())

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    code = main(["tag", str(EXAMPLES / "dog.flac"), "--labels-file", str(fifo), "--format", "json"])
    writer.join(5)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert sorted(x["label"] for x in json.loads(out)["labels"]) == ["dog barking", "rain"]


def test_labels_file_encodings(tmp_path):
    from zeroshot_audio.cli.tag import _read_labels_file

    f = tmp_path / "labels.txt"
    f.write_bytes("\ufeffcafé\nrain\r\n".encode())
    assert _read_labels_file(str(f)) == ["café", "rain"]
    f.write_bytes("café au lait\nrain\n".encode("utf-16"))  # with its BOM
    assert _read_labels_file(str(f)) == ["café au lait", "rain"]


@pytest.mark.parametrize("data, expected", [
    ("dog\ncafé\n".encode("latin-1"), "line 2 is not UTF-8 text"),
    (b"dog\n\nrain\x00fall\n", "line 3 holds a NUL byte"),
    ("dog\nrain\n".encode("utf-16-le"), "line 1 holds a NUL byte (UTF-16 text without a byte order mark?)"),
    (b"dog\nbell\x1b[31m\n", "line 2: label 'bell\\x1b[31m' holds the control character '\\x1b'"),
])
def test_bad_labels_file_is_one_line_exit_2(tmp_path, capsys, data, expected):
    f = tmp_path / "labels.txt"
    f.write_bytes(data)
    code = main(["tag", str(EXAMPLES / "dog.flac"), "--labels-file", str(f)])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and str(f) in line and expected in line
    if "UTF-8" in expected or "NUL" in expected:
        assert "save it as UTF-8" in line


def test_control_character_in_labels_is_refused(capsys, yamnet_cache):
    code = main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "dog;ra\x00in"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "--labels" in line and "label 2 'ra\\x00in'" in line
    from zeroshot_audio.tagging import clean_labels

    assert clean_labels(["a\tdog\nbarking"]) == (["a dog barking"], [])  # whitespace is not a control character


def _ten_second_flac(path: Path) -> Path:
    dog, sr = sf.read(EXAMPLES / "dog.flac", dtype="float32")
    sf.write(path, np.tile(dog, 2)[: 10 * sr], sr)
    return path


def test_truncated_flac_keeps_its_decodable_part(tmp_path, caplog):
    from zeroshot_audio.audio import load_audio, stream_audio

    path = _ten_second_flac(tmp_path / "cut.flac")
    raw = path.read_bytes()
    path.write_bytes(raw[: int(0.4 * len(raw))])  # a download cut at 40 %
    with caplog.at_level(logging.WARNING, logger="zeroshot_audio.audio"):
        wav = load_audio(path)
    assert 3.0 * 16000 < len(wav) < 5.0 * 16000
    assert "cut.flac" in caplog.text and "truncated" in caplog.text
    full = load_audio(tmp_path.joinpath("cut.flac"))
    streamed = np.concatenate(list(stream_audio(path, block_seconds=60.0)))
    np.testing.assert_array_equal(streamed, full)
    # the decodable part is the file's own start
    whole = load_audio(_ten_second_flac(tmp_path / "whole.flac"))
    np.testing.assert_allclose(wav[: 3 * 16000], whole[: 3 * 16000], atol=1e-6)


def test_truncated_flac_is_tagged(tmp_path, capsys, caplog, yamnet_cache):
    path = _ten_second_flac(tmp_path / "cut.flac")
    raw = path.read_bytes()
    path.write_bytes(raw[: int(0.4 * len(raw))])
    with caplog.at_level(logging.WARNING, logger="zeroshot_audio.audio"):
        code = main(["tag", str(path), "--labels", "dog barking;rain", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0 and 3.0 < json.loads(out)["duration"] < 5.0
    assert "cut.flac" in caplog.text and "truncated" in caplog.text


def test_waveform_shapes(tagger):
    from zeroshot_audio.audio import mono_waveform

    dog, sr = sf.read(EXAMPLES / "dog.flac", dtype="float32")
    many = np.repeat(dog[:, None], 10, axis=1)  # [samples, 10 channels]: was averaged over time
    np.testing.assert_allclose(mono_waveform(many), dog, atol=1e-6)
    res = tagger.tag(many, labels="dog barking;rain", sample_rate=sr)
    assert res.duration == pytest.approx(len(dog) / sr, abs=0.01)
    for bad, shape in ((many.T, "(10, 95824)"), (dog[None, None, :], "(1, 1, 95824)"), (np.zeros((0, 2)), "(0, 2)"),
                       (np.zeros((5, 0)), "(5, 0)")):
        with pytest.raises(ParameterError, match=shape.replace("(", r"\(").replace(")", r"\)")):
            tagger.tag(bad, labels="dog", sample_rate=sr)
    with pytest.raises(ParameterError, match="transpose"):
        mono_waveform(many.T)
    with pytest.raises(ParameterError, match="real numbers"):
        mono_waveform(np.array(["a", "b"]))


# --------------------------------------------- item 6 (part): model configs, weights files: one line, exit code 2


def _replace_weights(model: Path, edit) -> None:
    """Rewrite the model's weights.npz with ``edit(state)`` (a dict of arrays)."""
    with np.load(model / "weights.npz") as z:
        state = dict(z)
    with open(model / "weights.npz", "wb") as f:
        np.savez(f, **edit(state))


def _set_config(model: Path, edit) -> None:
    doc = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(edit(doc)))


def _set_model_config(key, value):
    def edit(doc):
        doc["model_config"][key] = value
        return doc
    return edit


@pytest.mark.parametrize("damage, expected", [
    (lambda m: _set_config(m, lambda d: [d]), ["config.json", "expected a JSON object, got a list"]),
    (lambda m: _set_config(m, lambda d: {**d, "model_config": [1, 2]}), ["config.json", "field model_config"]),
    (lambda m: _set_config(m, _set_model_config("temperature", "abc")),
     ["config.json", "field model_config", "temperature", "'abc'"]),
    (lambda m: _set_config(m, _set_model_config("dim", "128")), ["config.json", "field model_config", "dim"]),
    (lambda m: _set_config(m, lambda d: {**d, "classes": "Dog"}), ["config.json", "field classes"]),
    (lambda m: _set_config(m, lambda d: {**d, "embedder": {**d["embedder"], "hop": "x"}}), ["field embedder.hop"]),
    (lambda m: _set_config(m, lambda d: {**d, "info": []}), ["field info"]),
    (lambda m: (m / "weights.npz").write_bytes(b""), ["weights.npz", "not a zeroshot-audio weights file"]),
    (lambda m: (m / "weights.npz").write_bytes(os.urandom(4096)), ["weights.npz", "not a zeroshot-audio weights file"]),
    (lambda m: (m / "weights.npz").write_bytes(b"\x80\x04\x95" + os.urandom(200)),
     ["weights.npz", "not a zeroshot-audio weights file"]),
    (lambda m: (m / "weights.npz").write_bytes((m / "weights.npz").read_bytes()[:50_000]),
     ["weights.npz", "not a zeroshot-audio weights file"]),
    (lambda m: np.save(m / "weights.npz.npy", np.zeros(3)) or (m / "weights.npz.npy").replace(m / "weights.npz"),
     ["weights.npz", "a single array"]),
    (lambda m: _replace_weights(m, lambda s: {**s, "audio_proj.weight": s["audio_proj.weight"].astype(object)}),
     ["weights.npz", "not a zeroshot-audio weights file"]),
    (lambda m: _replace_weights(m, lambda s: {**s, "audio_proj.weight": s["audio_proj.weight"].astype(np.int32)}),
     ["weights.npz", "audio_proj.weight holds int32"]),
    (lambda m: _replace_weights(m, lambda s: {k: v for k, v in s.items() if k != "text_proj.bias"}),
     ["weights.npz", "do not fit", "missing: text_proj.bias"]),
    (lambda m: (m / "class_embeddings.npy").write_bytes(b"garbage"), ["class_embeddings.npy", "not a NumPy"]),
], ids=["config-list", "model_config-list", "temperature-str", "dim-str", "classes-str", "hop-str", "info-list",
        "weights-empty", "weights-random", "weights-pickle-garbage", "weights-truncated", "weights-one-array",
        "weights-object-array", "weights-integers", "weights-missing-array", "npy-garbage"])
def test_damaged_model_directory_is_one_line_exit_2(tmp_path, capsys, damage, expected):
    model = _model_copy(tmp_path)
    damage(model)
    code = main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "dog", "--model", str(model)])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2
    for text in expected:
        assert text in line
    assert "weights_only" not in line and "allow_pickle" not in line


def test_weights_of_another_shape_name_the_file(tmp_path, capsys):
    model = _model_copy(tmp_path)
    _replace_weights(model, lambda s: {**s, "audio_proj.bias": np.zeros(3, np.float32)})
    code = main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "dog", "--model", str(model)])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "weights.npz" in line and "do not fit" in line and "audio_proj.bias is [3]" in line


# ------------------------------------------------------------------- issue 9: weights.npz, and older weights.pt

#: Python run before anything else in a child process: every import of torch fails, as on an install without it.
BLOCK_TORCH = blocking("torch")


def _old_model_copy(tmp_path: Path) -> Path:
    """The default model as an older version wrote it: its parameters in weights.pt (torch.save of the state
    dict), no weights.npz."""
    import torch

    model = _model_copy(tmp_path)
    with np.load(model / "weights.npz") as z:
        torch.save({k: torch.from_numpy(z[k]) for k in z.files}, model / "weights.pt")
    (model / "weights.npz").unlink()
    return model


def test_model_directory_of_an_older_version_still_loads(tmp_path, tagger, caplog, yamnet_cache):
    from zeroshot_audio import load_model

    model = _old_model_copy(tmp_path)
    with caplog.at_level(logging.INFO, logger="zeroshot_audio.checkpoint"):
        old = load_model(model)
    assert "zeroshot_audio.train.convert" in caplog.text
    for name, value in tagger.trained.model.params.items():
        np.testing.assert_array_equal(old.trained.model.params[name], value)
    labels = ["dog barking", "a cat purring", "rain on a roof"]
    a, b = tagger.tag(EXAMPLES / "dog.flac", labels=labels), old.tag(EXAMPLES / "dog.flac", labels=labels)
    assert [(r.label, r.score, r.events) for r in a.labels] == [(r.label, r.score, r.events) for r in b.labels]
    assert a.labels[0].label == "dog barking"


def test_model_directory_of_an_older_version_without_torch_says_how_to_convert(tmp_path):
    import subprocess
    import sys

    model = _old_model_copy(tmp_path)
    argv = ["tag", str(EXAMPLES / "dog.flac"), "--labels", "dog", "--model", str(model)]
    code = BLOCK_TORCH + f"from zeroshot_audio.cli import main\nraise SystemExit(main({argv!r}))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 2 and proc.stdout == ""
    assert str(model) in line and "older version" in line and "weights.pt" in line
    assert "pip install 'zeroshot-audio[train]'" in line and f"python -m zeroshot_audio.train.convert {model}" in line

"""``zsa serve``'s HTTP API (issue 11): the FastAPI test client on the real default model, and the real server in
a subprocess. Every request's temporary directory must be gone once it is answered, failed requests included."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
soundfile = pytest.importorskip("soundfile")

from fastapi.testclient import TestClient  # noqa: E402

from zeroshot_audio.serve import ServeOptions, create_app  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
LABELS = ["dog barking", "rain", "church bells"]
LIMITS = ServeOptions(max_files=4, max_labels=5, max_duration_s=20.0, max_upload_mb=2.0)


def _wav(seconds: float, *, seed: int = 0, rate: int = 16000) -> bytes:
    """A WAV file of band-limited noise, made in memory."""
    rng = np.random.default_rng(seed)
    wave = np.convolve(rng.standard_normal(int(seconds * rate)), np.ones(8) / 8, mode="same") * 0.2
    buf = io.BytesIO()
    soundfile.write(buf, wave.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture(scope="module")
def _model_cache(tmp_path_factory, embedder):
    """A cache folder whose ``models`` is the set-up one (MiniLM's graph included: labels are encoded with
    onnxruntime, not torch) and whose label cache is this module's."""
    cache = tmp_path_factory.mktemp("serve-cache")
    (cache / "models").symlink_to(Path(embedder.model_path).parents[1], target_is_directory=True)
    return cache


@pytest.fixture(autouse=True)
def _isolated_cache(_model_cache, monkeypatch):
    """(Replaces conftest's.) Labels cached in this module's folder, models read from the set-up cache."""
    monkeypatch.setenv("ZSA_CACHE_DIR", str(_model_cache))


@pytest.fixture(scope="module")
def serve_tmp(tmp_path_factory):
    """The system temporary directory, for this module: a fresh folder, so that what a request leaves is seen."""
    folder = tmp_path_factory.mktemp("serve-tmp")
    old = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = old


@pytest.fixture(scope="module")
def client(tagger, serve_tmp, _model_cache):
    mp = pytest.MonkeyPatch()
    mp.setenv("ZSA_CACHE_DIR", str(_model_cache))
    with TestClient(create_app(tagger, LIMITS)) as c:
        yield c
    mp.undo()


def _post(client, files, labels=LABELS, **data):
    """POST /v1/tag; the temporary folder must be empty again when the answer is there."""
    form = {"labels": ";".join(labels) if isinstance(labels, list) else labels, **data}
    form = {k: v for k, v in form.items() if v is not None}
    r = client.post("/v1/tag", files=[("files", f) for f in files], data=form)
    assert os.listdir(tempfile.gettempdir()) == []
    return r


def _example(name: str):
    return (name, (EXAMPLES / name).read_bytes(), "audio/flac")


def _error(r, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status and isinstance(body["error"], str) and "\n" not in body["error"]
    return body["error"]


# ------------------------------------------------------------------------------------------------ good files

def test_tag_equals_the_tagger(client, tagger):
    r = _post(client, [_example("dog.flac")])
    assert r.status_code == 200, r.text
    [entry] = r.json()
    want = tagger.tag(EXAMPLES / "dog.flac", labels=LABELS)
    assert entry["file"] == "dog.flac" and entry["labels"][0]["label"] == "dog barking"
    assert [x["label"] for x in entry["labels"]] == [x.label for x in want.labels]
    for got, exp in zip(entry["labels"], want.labels):
        assert got["probability"] == pytest.approx(exp.probability, abs=1e-4)
        assert got["score"] == pytest.approx(exp.score, abs=1e-4)
    want_json = want.to_json()
    want_json["file"] = "dog.flac"
    assert entry == want_json  # exactly TagResult.to_json(), named by the upload


def test_several_files_keep_order_with_timelines(client, tagger):
    names = ["rooster.flac", "dog.flac", "cow.flac"]
    r = _post(client, [_example(n) for n in names], timelines="true")
    assert r.status_code == 200, r.text
    entries = r.json()
    assert [e["file"] for e in entries] == names
    for name, entry in zip(names, entries):
        want = tagger.tag(EXAMPLES / name, labels=LABELS)
        t = len(want.segment_times)
        assert np.allclose(entry["frames"], want.frame_times, atol=1e-3) and len(entry["frames"]) == t + 1
        by_label = {x.label: x for x in want.labels}
        for item in entry["labels"]:
            exp, tl = by_label[item["label"]], item["timeline"]
            assert set(tl) == {"probability", "attention", "score"}
            assert np.allclose(tl["probability"], exp.detection, atol=1e-4) and len(tl["probability"]) == t
            assert np.allclose(tl["attention"], exp.attention, atol=1e-4) and len(tl["attention"]) == t
            assert np.allclose(tl["score"], exp.segment_scores, atol=1e-4) and len(tl["score"]) == t
    plain = _post(client, [_example("dog.flac")], timelines="0").json()[0]
    assert "frames" not in plain and all("timeline" not in x for x in plain["labels"])


def test_labels_given_by_example_clips(client, tagger):
    """File fields 'example:LABEL' give labels by example, as Tagger.tag(examples=...) does; no 'labels' needed."""
    ex = [("example:farm bird", _example("rooster.flac")), ("example:dog barking", _example("dog.flac"))]
    r = client.post("/v1/tag", files=[("files", _example("rooster.flac")), ("files", _example("cow.flac")), *ex],
                    data={"labels": "dog barking;rain"})
    assert os.listdir(tempfile.gettempdir()) == []
    assert r.status_code == 200, r.text
    examples = {"farm bird": [str(EXAMPLES / "rooster.flac")], "dog barking": [str(EXAMPLES / "dog.flac")]}
    for entry, name in zip(r.json(), ["rooster.flac", "cow.flac"]):
        want = tagger.tag(EXAMPLES / name, labels=["dog barking", "rain"], examples=examples)
        assert [x["label"] for x in entry["labels"]] == [x.label for x in want.labels]
        for got, exp in zip(entry["labels"], want.labels):
            assert got["probability"] == pytest.approx(exp.probability, abs=1e-4)
    assert r.json()[0]["labels"][0]["label"] == "farm bird"
    from zeroshot_audio.examples import _CACHE  # the clips are gone with the request, and so are their embeddings

    assert not [k for k in _CACHE.items if k[1].startswith(str(Path(tempfile.gettempdir()).resolve()))]
    only = client.post("/v1/tag", files=[("files", _example("cow.flac")), ("example:moo", _example("cow.flac"))])
    assert only.status_code == 200 and [x["label"] for x in only.json()[0]["labels"]] == ["moo"]
    assert only.json()[0]["labels"][0]["probability"] >= 0.5


@pytest.mark.parametrize("clip, status, fragment", [
    (("bad.wav", b"RIFF junk", "audio/wav"), 415, "example of 'hum': audio file bad.wav"),
    (("empty.wav", b"", "audio/wav"), 400, "example of 'hum': audio file empty.wav: empty"),
    (("long.wav", _wav(25.0), "audio/wav"), 413, "example of 'hum': audio file long.wav: 25.0 s long"),
])
def test_an_example_that_cannot_be_used_fails_the_request_naming_it(client, clip, status, fragment):
    r = client.post("/v1/tag", files=[("files", _example("dog.flac")), ("example:hum", clip)],
                    data={"labels": "rain"})
    assert os.listdir(tempfile.gettempdir()) == []
    assert fragment in _error(r, status)


def test_example_fields_count_against_the_limits(client):
    five = [("example:a", _example("dog.flac")), ("example:b", _example("cow.flac")),
            ("example:c", _example("rooster.flac")), ("example:d", _example("dog.flac"))]
    r = client.post("/v1/tag", files=[("files", _example("dog.flac")), *five])
    assert "more than 4 files and example clips" in _error(r, 400)
    many = [(f"example:l{i}", _example("dog.flac")) for i in range(3)]
    r = client.post("/v1/tag", files=[("files", _example("dog.flac")), *many], data={"labels": "x;y;z"})
    assert "6 labels with those given by example, at most 5" in _error(r, 400)
    assert os.listdir(tempfile.gettempdir()) == []


def test_top_k_and_threshold_select_labels(client):
    everything = _post(client, [_example("dog.flac")]).json()[0]["labels"]
    top1 = _post(client, [_example("dog.flac")], top_k="1").json()[0]["labels"]
    assert top1 == everything[:1]
    above = _post(client, [_example("dog.flac")], threshold="0.5").json()[0]["labels"]
    assert above == [x for x in everything if x["probability"] >= 0.5] and 0 < len(above) < len(everything)


def test_labels_split_on_semicolons_lines_and_repeated_fields(client):
    files = [("files", _example("dog.flac"))]
    r = client.post("/v1/tag", files=files, data={"labels": ["dog barking\nrain", "church bells|bells ringing;rain"]})
    assert r.status_code == 200, r.text
    assert sorted(x["label"] for x in r.json()[0]["labels"]) == ["church bells|bells ringing", "dog barking", "rain"]


def test_file_names_are_display_names_only(client, serve_tmp):
    r = _post(client, [("../../etc/passwd", b"not audio at all", "text/plain"), _example("dog.flac")])
    assert r.status_code == 200
    bad, good = r.json()
    assert bad["file"] == "passwd" and bad["status"] == 415 and good["file"] == "dog.flac"
    assert str(serve_tmp) not in bad["error"] and "zsa-serve-" not in bad["error"] and "passwd" in bad["error"]
    windows = _post(client, [("C:\\Users\\me\\dog.flac", (EXAMPLES / "dog.flac").read_bytes(), "audio/flac")])
    assert windows.json()[0]["file"] == "dog.flac"
    nameless = _post(client, [("", (EXAMPLES / "dog.flac").read_bytes(), "audio/flac")])
    assert nameless.status_code == 200 and nameless.json()[0]["file"] == "upload-1"
    # a name sent only in RFC 5987 form (filename*=UTF-8''...), as some clients do for names that are not ASCII
    body = (b"--B\r\nContent-Disposition: form-data; name=\"labels\"\r\n\r\nrain\r\n--B\r\n"
            b"Content-Disposition: form-data; name=\"files\"; filename*=UTF-8''na%C3%AFve%20dog.flac\r\n"
            b"Content-Type: audio/flac\r\n\r\n" + (EXAMPLES / "dog.flac").read_bytes() + b"\r\n--B--\r\n")
    r = client.post("/v1/tag", content=body, headers={"content-type": "multipart/form-data; boundary=B"})
    assert r.status_code == 200, r.text
    assert r.json()[0]["file"] == "na\u00efve dog.flac" and os.listdir(tempfile.gettempdir()) == []


# ------------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("labels, fragment", [
    (None, "no labels"),
    ("", "no labels"),
    (" ; \n ", "no labels"),
    ("a;b;c;d;e;f", "6 labels, at most 5"),
    ("dog\x1bbarking", "control character"),
    ("dog||barking", "empty wording"),
])
def test_bad_labels_are_400(client, labels, fragment):
    assert fragment in _error(_post(client, [_example("dog.flac")], labels=labels), 400)


def test_no_files_is_400(client):
    r = client.post("/v1/tag", data={"labels": "dog"}, files={"other": ("x", b"")})
    assert "unknown form field 'other'" in _error(r, 422)
    r = client.post("/v1/tag", data={"labels": "dog"}, files=[])
    assert "multipart/form-data" in _error(r, 400)  # httpx sends an urlencoded form: no files
    boundary = "zsaBOUNDARY"
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="labels"\r\n\r\ndog\r\n--{boundary}--\r\n'
    r = client.post("/v1/tag", content=body.encode(),
                    headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert "no files" in _error(r, 400)
    assert os.listdir(tempfile.gettempdir()) == []


def test_too_many_files_is_400(client):
    assert "more than 4 files" in _error(_post(client, [_example("dog.flac")] * 5), 400)


@pytest.mark.parametrize("field, value", [("top_k", "x"), ("top_k", "0"), ("top_k", "1.5"), ("threshold", "1.5"),
                                          ("threshold", "-0.1"), ("threshold", "nan"), ("threshold", "high"),
                                          ("timelines", "maybe")])
def test_bad_field_values_are_422(client, field, value):
    assert _error(_post(client, [_example("dog.flac")], **{field: value}), 422).startswith(f"{field}: expected")


def test_files_that_fail_get_their_own_entries(client):
    cases = [("notes.txt", b"hello, not audio", "text/plain"), ("empty.wav", b"", "audio/wav"),
             ("long.wav", _wav(21.0), "audio/wav")]
    r = _post(client, [*cases, _example("dog.flac")][1:])  # a mixed batch: one file is good
    assert r.status_code == 200
    entries = r.json()
    assert [e.get("status") for e in entries] == [400, 413, None]
    assert entries[0] == {"file": "empty.wav", "error": "audio file empty.wav: empty (0 bytes)", "status": 400}
    assert "21.0 s long" in entries[1]["error"] and "20 s" in entries[1]["error"]
    assert entries[2]["file"] == "dog.flac" and entries[2]["labels"][0]["label"] == "dog barking"
    only_bad = _post(client, cases[:1])
    assert "not an audio file" in _error(only_bad, 415)
    assert only_bad.json()["results"] == [{"file": "notes.txt", "error": only_bad.json()["error"], "status": 415}]
    two_bad = _post(client, [cases[1], cases[0]])
    assert _error(two_bad, 400).startswith("none of the 2 files could be tagged")
    assert [e["status"] for e in two_bad.json()["results"]] == [400, 415]


def test_a_file_name_with_a_control_character_is_refused(client):
    dog = (EXAMPLES / "dog.flac").read_bytes()
    parts = [b'--B\r\nContent-Disposition: form-data; name="labels"\r\n\r\ndog barking\r\n']
    for name in (b"x\x1by.flac", b"dog.flac"):  # raw bytes: httpx would percent-encode the ESC
        parts.append(b'--B\r\nContent-Disposition: form-data; name="files"; filename="' + name + b'"\r\n\r\n' + dog
                     + b"\r\n")
    r = client.post("/v1/tag", content=b"".join(parts) + b"--B--\r\n",
                    headers={"content-type": "multipart/form-data; boundary=B"})
    assert r.status_code == 200, r.text
    bad, good = r.json()
    assert bad == {"file": "upload-1", "status": 400,
                   "error": "file 1: its file name 'x\\x1by.flac' holds the control character '\\x1b'"}
    assert good["file"] == "dog.flac" and good["labels"][0]["label"] == "dog barking"
    assert os.listdir(tempfile.gettempdir()) == []


def test_body_over_the_size_limit_is_413(client):
    big = [("big.wav", _wav(70.0), "audio/wav")]  # 2.2 MB > 2 MB
    assert "--max-upload-mb" in _error(_post(client, big), 413)
    payload = b"".join([b"--B\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.wav\"\r\n\r\n",
                        b"\0" * 2_100_000, b"\r\n--B--\r\n"])

    def chunks():  # no Content-Length: counted while it streams and cut off
        for a in range(0, len(payload), 65536):
            yield payload[a:a + 65536]

    r = client.post("/v1/tag", content=chunks(), headers={"content-type": "multipart/form-data; boundary=B"})
    assert "larger than the server's limit of 2 MB" in _error(r, 413)
    assert os.listdir(tempfile.gettempdir()) == []


def test_errors_are_json(client):
    assert _error(client.get("/no/such/page"), 404) == "not found: /no/such/page"
    assert _error(client.get("/v1/tag"), 405).startswith("method GET not allowed")


# ------------------------------------------------------------------------------------- queue, auth, service

def test_full_queue_answers_503(tagger, serve_tmp):
    clip = _wav(40.0, seed=3)
    results: list = []
    with TestClient(create_app(tagger, ServeOptions(workers=1, queue=0))) as c:
        start = threading.Barrier(4)

        def one() -> None:
            start.wait()
            r = c.post("/v1/tag", files=[("files", ("noise.wav", clip, "audio/wav"))], data={"labels": "rain"})
            results.append(r)

        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        health = c.get("/v1/health").json()
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) >= 1 and codes.count(503) >= 1 and set(codes) == {200, 503}, codes
    for r in results:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "1" and "server busy" in _error(r, 503)
    assert health["queue"] == {"running": 0, "waiting": 0, "workers": 1, "capacity": 1}
    assert os.listdir(tempfile.gettempdir()) == []


def test_token(tagger, serve_tmp):
    with TestClient(create_app(tagger, ServeOptions(token="s3cret"))) as c:
        assert c.get("/v1/health").json()["auth"] is True
        assert "missing bearer token" in _error(c.get("/v1/models"), 401)
        assert _error(c.get("/v1/models", headers={"Authorization": "Bearer nope"}), 401) == "wrong bearer token"
        r = c.post("/v1/tag", files=[("files", _example("dog.flac"))], data={"labels": "dog"})
        assert _error(r, 401) and r.headers["www-authenticate"] == "Bearer"
        ok = c.post("/v1/tag", files=[("files", _example("dog.flac"))], data={"labels": "dog"},
                    headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()[0]["file"] == "dog.flac"
        assert c.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_health_and_models(client, tagger):
    health = client.get("/v1/health").json()
    assert health == {"status": "ok", "model": "default", "auth": False,
                      "queue": {"running": 0, "waiting": 0, "workers": 1, "capacity": 9},
                      "limits": {"max_upload_mb": 2.0, "max_files": 4, "max_labels": 5, "max_duration_s": 20.0}}
    [model] = client.get("/v1/models").json()
    assert model["name"] == "default" and model["embedder"] == tagger.trained.embedder["embedder"]
    assert model["label_encoder"] == "minilm" and model["classes_trained_on"] == len(tagger.trained.classes)
    assert model["hop"] == pytest.approx(0.96) and model["sample_rate"] == 16000
    assert model["calibration"]["scale"] == pytest.approx(tagger.scale)
    assert model["labels_example"] and set(model["labels_example"]) <= set(tagger.trained.classes)


def test_docs_work_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page.text), "the docs page loads something from outside"
    for url in re.findall(r"(?:src|href)=\"(/[^\"]+)\"", page.text):
        assert client.get(url).status_code == 200, url
    assert client.get("/openapi.json").json()["paths"]["/v1/tag"]["post"]["requestBody"]


# ----------------------------------------------------------------------------------------- the real command

def _env(tmp_path: Path, embedder) -> dict[str, str]:
    cache = tmp_path / "zsa-cache"
    cache.mkdir()
    (cache / "models").symlink_to(Path(embedder.model_path).parents[1], target_is_directory=True)
    env = dict(os.environ, ZSA_CACHE_DIR=str(cache), TMPDIR=str(tmp_path / "tmp"))
    env.pop("ZSA_TOKEN", None)
    return env


def test_serve_refuses_an_open_host_without_token(tmp_path, embedder):
    env = _env(tmp_path, embedder)
    proc = subprocess.run([sys.executable, "-m", "zeroshot_audio", "serve", "--host", "0.0.0.0"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("zsa: error: --host 0.0.0.0 is not a loopback")


def test_real_server(tmp_path, embedder):
    httpx = pytest.importorskip("httpx")
    env = _env(tmp_path, embedder)
    env["ZSA_TOKEN"] = "t0ken"
    (tmp_path / "tmp").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "zeroshot_audio", "serve", "--port", "0"], env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        deadline = time.monotonic() + 30
        while httpx.get(url + "v1/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        with open(EXAMPLES / "dog.flac", "rb") as f:
            r = httpx.post(url + "v1/tag", files=[("files", ("dog.flac", f, "audio/flac"))],
                           data={"labels": ";".join(LABELS)}, headers={"Authorization": "Bearer t0ken"}, timeout=30)
        assert r.status_code == 200 and r.json()[0]["labels"][0]["label"] == "dog barking"
        assert httpx.get(url).status_code in (200, 404)  # the page (helper PAGE's files) or its JSON 404
        assert os.listdir(tmp_path / "tmp") == []
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 130 and proc.stderr.read().strip() == "zsa: interrupted"

"""The page of ``zsa serve`` in a real browser: Debian's chromium, driven headless by Playwright.

The real ``zsa serve`` runs in a subprocess on a free loopback port; the page uploads ``examples/dog.flac`` and
a ``.wav`` of random bytes, tags them with three labels and is checked as a person would see it (the ranking, the
present mark, the drawn timeline, the error of the bad file), its downloads against the library's own writers,
its width on a phone, and that it asks nothing of any host but the server. ``ZSA_UPDATE_SCREENSHOT=1`` writes
the README's screenshot (``docs/figures/serve-page.png``); otherwise it goes to the test's temporary folder.
"""

import contextlib
import csv
import dataclasses
import io
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000  # the server's megabyte
EXAMPLES = ROOT / "examples"
DOG = EXAMPLES / "dog.flac"
LABELS = "dog barking; rain; church bells"
SCREENSHOT = ROOT / "docs" / "figures" / "serve-page.png"
SERVING = re.compile(r"serving model .* on (http://\S+/)")


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    """Headless chromium (Debian's; Playwright's own browser download is not used)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install "
                                   "'zeroshot-audio[test]'): the browser test of zsa serve cannot run")
    executable = _chromium()
    if executable is None:
        pytest.skip("no chromium (/usr/bin/chromium or `chromium` on PATH; .ci/run installs it with apt-get): "
                    "the browser test of zsa serve cannot run")
    playwright = sync_api.sync_playwright().start()
    try:
        # a fake microphone (a periodic beep) lets the recorder be tested
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=[
            "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@contextlib.contextmanager
def _serve(cache: Path, *args: str):
    """``zsa serve --port 0 ARGS`` in a subprocess (the worktree's python); yields its base URL, stops it after."""
    env = {**os.environ, "ZSA_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
    env.pop("ZSA_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "zeroshot_audio", "serve", "--host", "127.0.0.1", "--port", "0",
                             *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    log: list[str] = []

    def read() -> None:
        for line in proc.stderr:
            log.append(line)
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        base, deadline = None, time.monotonic() + 90
        while base is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                match = SERVING.search(lines.get(timeout=0.5))
            except queue.Empty:
                continue
            base = match.group(1) if match else None
        assert base, f"zsa serve did not start (exit {proc.poll()}): {''.join(log)[-2000:]}"
        while True:
            try:
                with urllib.request.urlopen(base + "v1/health", timeout=5) as resp:
                    if json.load(resp)["status"] == "ok":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, f"no /v1/health: {''.join(log)[-2000:]}"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def serve_cache(embedder, tmp_path_factory):
    """The models where the test session found them; the label cache in a test folder."""
    pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'zeroshot-audio[serve]')")
    pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install 'zeroshot-audio[serve]')")
    cache = tmp_path_factory.mktemp("serve-cache")
    (cache / "models").symlink_to(Path(embedder.model_path).parents[1], target_is_directory=True)
    return cache


@pytest.fixture(scope="module")
def server(serve_cache):
    with _serve(serve_cache) as base:
        yield base


def _nonblank_share(page, selector: str) -> float:
    """The share of a canvas's pixels that were painted (alpha > 0), read back with getImageData."""
    return page.eval_on_selector(selector, """c => {
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n / (c.width * c.height);
    }""")


def _download(page, testid: str) -> str:
    with page.expect_download() as info:
        page.click(f"[data-testid={testid}]")
    return Path(info.value.path()).read_bytes().decode("utf-8")


def test_page_tags_in_a_real_browser(browser, server, tagger, tmp_path):
    from zeroshot_audio.writers import CsvWriter, EventsWriter

    bad = tmp_path / "noise-bytes.wav"
    bad.write_bytes(os.urandom(4096))
    requests: list[str] = []
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    try:
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
        page.goto(server)
        page.wait_for_selector("[data-testid=server-status].ok")
        assert "up to 20 files, 100 MB per run" in page.inner_text("[data-testid=limits]")  # from /v1/health

        page.set_input_files("[data-testid=file-input]", [str(DOG), str(bad)])
        assert page.locator("[data-testid=queue-item]").count() == 2
        page.fill("[data-testid=labels]", LABELS)
        page.click("[data-testid=run]")
        page.wait_for_selector("[data-testid=file-card][data-status=done]", timeout=30_000)
        page.wait_for_selector("[data-testid=file-card][data-status=error]", timeout=5_000)

        card = page.locator("[data-testid=file-card][data-file='dog.flac']")
        rows = card.locator("[data-testid=label-row]")
        assert rows.count() == 3
        top = rows.first
        assert top.get_attribute("data-label") == "dog barking"
        assert top.get_attribute("data-present") == "true"
        assert "present" in top.inner_text().lower()  # said in words, not only by colour
        assert [rows.nth(i).get_attribute("data-present") for i in (1, 2)] == ["false", "false"]

        # the timeline of the top label drew, under a drawn waveform
        in_card = "[data-testid=file-card][data-file='dog.flac']"
        timeline = f"{in_card} canvas[data-testid=timeline][data-label='dog barking']"
        page.wait_for_selector(timeline + "[data-drawn=true]")
        page.wait_for_selector(f"{in_card} canvas[data-testid=waveform][data-drawn=true]")
        assert _nonblank_share(page, timeline) > 0.2  # the area under p_t of a label present throughout
        assert _nonblank_share(page, f"{in_card} [data-testid=waveform]") > 0.02
        # clicking the timeline seeks: the playhead moves to the point clicked
        box = page.locator(timeline).bounding_box()
        page.locator(timeline).click(position={"x": 0.75 * box["width"], "y": box["height"] / 2})
        left = card.locator(".playhead").evaluate("e => parseFloat(e.style.left)")
        assert left == pytest.approx(75, abs=1.5)

        # the bad file has its own one-line error, naming it, while the good one is tagged
        failed = page.locator("[data-testid=file-card][data-file='noise-bytes.wav']")
        message = failed.locator("[data-testid=file-error]").inner_text()
        assert "noise-bytes.wav" in message and "415" in message and "\n" not in message.strip()
        assert "Traceback" not in message and str(tmp_path) not in message

        # downloads: as the library's writers write the same results
        served = json.loads(_download(page, "download-json"))
        assert [e["file"] for e in served] == ["dog.flac", "noise-bytes.wav"]
        assert served[1]["status"] == 415
        expected = dataclasses.replace(tagger.tag(DOG, labels=[s.strip() for s in LABELS.split(";")]), file="dog.flac")
        out = io.StringIO(newline="")
        with CsvWriter(out) as writer:
            writer.write(expected)
        got = _download(page, "download-csv")
        assert got.startswith("file,label,score,probability\r\n") and got.endswith("\r\n")
        got_rows, want_rows = list(csv.reader(io.StringIO(got))), list(csv.reader(io.StringIO(out.getvalue())))
        assert [r[:2] for r in got_rows] == [r[:2] for r in want_rows]
        for g, w in zip(got_rows[1:], want_rows[1:]):
            assert [float(v) for v in g[2:]] == pytest.approx([float(v) for v in w[2:]], abs=1.5e-4)
        with EventsWriter(tmp_path / "events.tsv") as writer:
            writer.write(expected)
        want = (tmp_path / "events.tsv").read_text().splitlines()
        got = _download(page, "download-events").splitlines()
        assert got[0] == want[0] == "filename\tonset\toffset\tevent_label"
        assert len(got) == len(want) > 1  # dog barking, present, has events
        for g, w in zip(got[1:], want[1:]):
            g, w = g.split("\t"), w.split("\t")
            assert (g[0], g[3]) == (w[0], w[3])
            assert [float(v) for v in g[1:3]] == pytest.approx([float(v) for v in w[1:3]], abs=1.5e-3)

        page.mouse.move(0, 0)
        page.evaluate("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
        shot = SCREENSHOT if os.environ.get("ZSA_UPDATE_SCREENSHOT") == "1" else tmp_path / "serve-page.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000

        # a phone: nothing wider than the screen, and the timeline redrawn at the new width
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_function("document.documentElement.scrollWidth <= window.innerWidth")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.wait_for_function(f"document.querySelector(\"{timeline}\").width <= 390 * devicePixelRatio")
        assert _nonblank_share(page, timeline) > 0.2

        # nothing asked of any host but the server (object URLs of local files are not requests to a host)
        assert requests and all(u.startswith(server) or u.startswith(("blob:", "data:")) for u in requests), requests
        assert not problems, problems
    finally:
        context.close()


def test_page_refuses_retries_and_reports(browser, server, tmp_path):
    """Before uploading, files beyond the limits of /v1/health are refused; a 503 is retried after its
    Retry-After with a note; a 400 of the server is shown as its one-line message."""
    files = [ROOT / "examples" / n for n in ("dog.flac", "cow.flac", "rooster.flac", "dog.flac")]
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * (MB + MB // 2))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

        def small_limits(route):  # the server's own health, with limits small enough to exceed here
            health = route.fetch().json()
            health["limits"].update(max_files=3, max_upload_mb=1)
            route.fulfill(json=health)

        page.route("**/v1/health", small_limits)
        page.goto(server)
        page.wait_for_selector("[data-testid=server-status].ok")
        assert "up to 3 files, 1 MB per run" in page.inner_text("[data-testid=limits]")
        page.set_input_files("[data-testid=file-input]", [str(big)] + [str(f) for f in files])
        assert page.locator("[data-testid=queue-item]").count() == 3
        note = page.inner_text("[data-testid=queue-note]")
        assert "big.wav: 1.5 MB is over the server's limit of 1 MB" in note and "at most 3 files" in note, note

        # a label with a control character: the server's own 400 message, on one line
        page.fill("[data-testid=labels]", "dog barking\ncow\x07mooing")
        page.click("[data-testid=run]")
        page.wait_for_selector("[data-testid=run-status].error")
        message = page.inner_text("[data-testid=run-status]")
        assert "control character" in message and "\n" not in message.strip(), message
        assert page.locator("[data-testid=file-card]").count() == 0

        # the first answer is a 503 (the server is busy): the page waits Retry-After, says so, and retries
        answered: list[int] = []

        def busy_once(route):
            if not answered:
                answered.append(503)
                route.fulfill(status=503, headers={"Retry-After": "1", "Content-Type": "application/json"},
                              body=json.dumps({"error": "the server is busy (queue full): retry later", "status": 503}))
            else:
                answered.append(200)
                route.continue_()

        page.route("**/v1/tag", busy_once)
        page.fill("[data-testid=labels]", "dog barking; cow mooing; a rooster crowing")
        page.click("[data-testid=run]")
        page.wait_for_function("document.querySelector('[data-testid=run-status]').textContent.includes('busy')")
        page.wait_for_function("document.querySelectorAll('[data-testid=file-card][data-status=done]').length === 3",
                               timeout=30_000)
        assert answered == [503, 200]
        tops = page.eval_on_selector_all("[data-testid=file-card]", "cards => cards.map(c => "
                                         "c.querySelector('[data-testid=label-row]').dataset.label)")
        assert tops == ["dog barking", "cow mooing", "a rooster crowing"]
        assert not problems, problems
    finally:
        context.close()


def test_page_records_the_microphone_as_wav(browser, server):
    """A recording (chromium's fake microphone) is encoded as WAV in the page and tagged by the server."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, permissions=["microphone"])
    try:
        page = context.new_page()
        page.goto(server)
        page.wait_for_selector("[data-testid=server-status].ok")
        page.click("[data-testid=record]")
        page.wait_for_function("document.querySelector('[data-testid=record-note]').textContent.includes('Recording')")
        page.wait_for_timeout(1500)
        page.click("[data-testid=record]")
        page.wait_for_selector("[data-testid=queue-item]")
        name = page.inner_text("[data-testid=queue-item] .q-name")
        assert re.fullmatch(r"recording-[0-9-]+\.wav", name), name
        page.fill("[data-testid=labels]", "a beep; dog barking")
        page.click("[data-testid=run]")
        page.wait_for_selector("[data-testid=file-card][data-status=done]", timeout=30_000)
        served = page.evaluate("window.zsa.state.run.results")
        assert served[0]["file"] == name and 1.0 < served[0]["duration"] < 4.0
        assert page.locator("[data-testid=label-row]").count() == 2
    finally:
        context.close()


def test_page_takes_labels_given_by_example_clips(browser, server, tagger):
    """A label given by example clips on the page: sent as 'example:LABEL' fields and ranked as the library ranks it."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(server)
        page.wait_for_selector("[data-testid=server-status].ok")
        page.fill("[data-testid=labels]", "")  # no typed labels: only the two given by example
        page.click("[data-testid=by-example] summary")
        page.click("[data-testid=example-pick]")  # no label yet: asked for one, no file chooser
        assert "Type the label" in page.inner_text("[data-testid=example-note]")
        page.fill("[data-testid=example-label]", "farm bird")
        page.set_input_files("[data-testid=example-input]", [str(EXAMPLES / "rooster.flac")])
        page.fill("[data-testid=example-label]", "that dog")
        page.set_input_files("[data-testid=example-input]", [str(DOG)])
        assert page.locator("[data-testid=example-item]").count() == 2
        assert "2 labels" in page.inner_text("[data-testid=label-count]")
        page.set_input_files("[data-testid=file-input]", [str(EXAMPLES / "rooster.flac")])
        page.click("[data-testid=run]")
        page.wait_for_selector("[data-testid=file-card][data-status=done]", timeout=30_000)
        rows = page.locator("[data-testid=label-row]")
        assert [rows.nth(i).get_attribute("data-label") for i in range(rows.count())] == ["farm bird", "that dog"]
        want = tagger.tag(EXAMPLES / "rooster.flac", examples={"farm bird": [str(EXAMPLES / "rooster.flac")],
                                                              "that dog": [str(DOG)]})
        served = page.evaluate("window.zsa.state.run.results")[0]["labels"]
        assert [r["probability"] for r in served] == pytest.approx([r.probability for r in want.labels], abs=1e-4)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()


def test_page_saves_label_sets_in_the_browser(browser, server):
    """Save as… (a prompt), pick it again after a reload, delete it: localStorage of this browser only."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(server)
        page.wait_for_selector("[data-testid=server-status].ok")
        page.fill("[data-testid=labels]", "a beep\nrain; thunder")
        page.once("dialog", lambda d: d.accept("my storm set"))
        page.click("[data-testid=set-save]")
        assert page.input_value("[data-testid=label-set]") == "saved:my storm set"
        assert "3 labels" in page.inner_text("[data-testid=run-status]")
        page.fill("[data-testid=labels]", "something else")
        page.reload()
        page.wait_for_selector("[data-testid=server-status].ok")
        assert page.input_value("[data-testid=labels]") == "something else"  # the last labels typed are kept
        page.select_option("[data-testid=label-set]", "saved:my storm set")
        assert page.input_value("[data-testid=labels]") == "a beep\nrain\nthunder"
        page.click("[data-testid=set-delete]")
        options = page.eval_on_selector_all("[data-testid=label-set] option", "os => os.map(o => o.value)")
        assert "saved:my storm set" not in options
    finally:
        context.close()


def test_page_asks_for_the_token_of_a_server_that_needs_one(browser, serve_cache):
    """A server with --token: the page shows the token field, refuses to run without a token, reports a wrong one
    (401) and tags with the right one; the token stays in this tab (sessionStorage)."""
    with _serve(serve_cache, "--token", "s3cret-token") as base:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = context.new_page()
            page.goto(base)
            page.wait_for_selector("[data-testid=server-status].ok")
            assert page.is_visible("[data-testid=token]")
            page.set_input_files("[data-testid=file-input]", [str(DOG)])
            page.fill("[data-testid=labels]", LABELS)
            page.click("[data-testid=run]")
            assert "needs an access token" in page.inner_text("[data-testid=run-status]")
            page.fill("[data-testid=token]", "wrong")
            page.click("[data-testid=run]")
            page.wait_for_function("document.querySelector('[data-testid=run-status]').className.includes('error')")
            assert "token" in page.inner_text("[data-testid=run-status]").lower()
            page.fill("[data-testid=token]", "s3cret-token")
            page.click("[data-testid=run]")
            page.wait_for_selector("[data-testid=file-card][data-status=done]", timeout=30_000)
            assert page.locator("[data-testid=label-row]").first.get_attribute("data-label") == "dog barking"
            assert page.evaluate("sessionStorage.getItem('zsa-token')") == "s3cret-token"
            assert page.evaluate("localStorage.getItem('zsa-token')") is None
        finally:
            context.close()

"""The browser demo end to end: its API through gradio_client, and the page in a real browser.

The browser is Debian's Chromium (/usr/bin/chromium) driven headless by Playwright, with a fake
microphone fed from the project's sample voice; `playwright install` is never needed. Every
feature the page shows is compared with the project's client on the same audio.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from speech2face.engine.web import render

pytest.importorskip("gradio_client", reason="the web demo's API test needs gradio_client: `make test-web`")
# Gradio's own noise under NumPy 1.26 and pandas 3 (raised in its server threads, not by this code).
pytestmark = [pytest.mark.filterwarnings("ignore:`np.bool8` is a deprecated alias:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
UPLOAD_COSINE = 0.999        # the page and the client send the same file: the same feature
# The fake microphone plays the WAV through Chromium's capture path: resampled to 44.1 kHz and
# through getUserMedia's voice processing (echo cancellation, noise suppression, gain control).
# Measured here: 0.94-0.95 against the file itself, 0.68 for another (synthetic) voice; so the page's
# feature must be >= 0.90 close to the file's, and >= UPLOAD_COSINE to the client's on the very
# audio the page received.
MICROPHONE_COSINE = 0.90

needs_browser = pytest.mark.skipif(
    not CHROMIUM.exists() or importlib.util.find_spec("playwright") is None,
    reason=f"needs Debian's Chromium ({CHROMIUM}: apt-get install chromium chromium-driver) and the playwright "
           "package; `make test-web` installs both")


def _image(path_or_bytes) -> np.ndarray:
    from PIL import Image

    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(source) as image:
        return np.asarray(image.convert("RGB"))


def _assert_face(image: np.ndarray, expected: np.ndarray) -> None:
    """Not blank, 256 px, and the client's face enlarged pixel for pixel."""
    assert image.shape == (render.FACE_PIXELS, render.FACE_PIXELS, 3)
    assert image.std() > 10 and len(np.unique(image.reshape(-1, 3), axis=0)) > 100, "a blank face"
    assert np.abs(image.astype(int) - render.upscale(expected)).max() <= 2


# ------------------------------------------------------------------------------------ the API
def test_the_api_gives_the_image_and_the_feature_of_the_client(web_url, client, clips, triton_server):
    from gradio_client import Client, handle_file

    api = Client(web_url, verbose=False)
    assert {"/face", "/compare"} <= set(api.view_api(print_info=False, return_format="dict")["named_endpoints"])
    image, feature, plot, summary = api.predict(handle_file(str(clips["voice"])), api_name="/face")
    direct = client.infer(str(clips["voice"]))
    assert len(feature) == 128 and render.cosine(feature, direct.feature) >= UPLOAD_COSINE
    _assert_face(_image(image), direct.image)
    assert _image(plot).shape == (*render.PLOT_SIZE, 3)
    assert f"grpc://{triton_server.grpc_url}" in summary and " ms" in summary

    first, second, cosine = api.predict(handle_file(str(clips["voice"])), handle_file(str(clips["other"])),
                                        api_name="/compare")
    other = client.infer(str(clips["other"]))
    assert cosine == pytest.approx(render.cosine(direct.feature, other.feature), abs=1e-4) and cosine < 0.99
    _assert_face(_image(first), direct.image)
    _assert_face(_image(second), other.image)
    assert api.predict(handle_file(str(clips["voice"])), handle_file(str(clips["voice"])),
                       api_name="/compare")[2] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("name, message", [
    ("corrupt", "The clip was refused: corrupt.wav: not a readable audio file"),
    ("broken_wav", "The clip was refused: broken_wav.wav: not a readable WAV, FLAC or OGG file"),
    ("short", "The clip is 0.50 s long; speak for at least 1 s."),
    ("long", "The clip is longer than 60 s; use at most 60 s."),
])
def test_the_api_refuses_a_bad_clip_with_one_message_and_keeps_working(web_url, clips, name, message):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    api = Client(web_url, verbose=False)
    with pytest.raises(AppError) as refused:
        api.predict(handle_file(str(clips[name])), api_name="/face")
    assert str(refused.value).startswith(message), str(refused.value)
    assert "/tmp" not in str(refused.value) and "BytesIO" not in str(refused.value)
    assert len(api.predict(handle_file(str(clips["voice"])), api_name="/face")[1]) == 128


def test_an_upload_over_the_size_limit_never_reaches_the_handler(web_url, tmp_path):
    from gradio_client import Client, handle_file

    from speech2face.engine.web import limits

    big = tmp_path / "big.wav"
    big.write_bytes(b"RIFF" + bytes(limits.MAX_UPLOAD_BYTES + 1))
    with pytest.raises(ValueError, match="exceeds the maximum file size"):      # gradio_client's own check
        Client(web_url, verbose=False).predict(handle_file(str(big)), api_name="/face")
    import httpx                                                                  # and the server's

    with big.open("rb") as body:
        answer = httpx.post(f"{web_url}gradio_api/upload", files={"files": ("big.wav", body)}, timeout=60)
    assert answer.status_code == 413, answer.text[:200]


def test_a_page_whose_server_is_down_says_so(dead_server_web_url, clips):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    api = Client(dead_server_web_url, verbose=False)
    with pytest.raises(AppError, match=r"The face server at grpc://127\.0\.0\.1:\d+ does not answer"):
        api.predict(handle_file(str(clips["voice"])), api_name="/face")


def test_s2f_web_serves_the_page_until_ctrl_c(triton_server, tmp_path):
    import signal
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp_path)}
    command = subprocess.Popen([sys.executable, "-m", "speech2face.engine.cli", "web", "--url", triton_server.grpc_url,
                                "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                config = httpx.get(f"http://127.0.0.1:{port}/config", timeout=5)
                if config.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert command.poll() is None and time.monotonic() < deadline, "s2f web did not start"
            time.sleep(0.5)
        assert f"grpc://{triton_server.grpc_url}" in config.text          # the page names its server
        command.send_signal(signal.SIGINT)
        output, _ = command.communicate(timeout=30)
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
    assert command.returncode == 0, output
    assert f"speech2face web page: http://127.0.0.1:{port} -> grpc://{triton_server.grpc_url}" in output
    assert "nothing answers" not in output


# -------------------------------------------------------------------------------- the browser
@needs_browser
@pytest.mark.timeout(300)
def test_the_page_in_chromium_microphone_upload_and_a_bad_file(web_url, client, clips, triton_server):
    from playwright.sync_api import sync_playwright

    voice = clips["voice"]
    original = client.infer(str(voice))
    args = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={voice}", "--no-sandbox"]   # root in a container: no sandbox
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(web_url)
            page.get_by_text(f"grpc://{triton_server.grpc_url}").first.wait_for()

            # 1. the microphone: record, stop, make the face
            with page.expect_response(_is_upload) as uploaded:
                page.locator("#voice button.record-button").click()
                time.sleep(4)
                page.locator("#voice button.stop-button").click()
            received = page.request.get(f"{web_url}gradio_api/file={uploaded.value.json()[0]}").body()
            page.locator("#make-face").click()
            face_src = _wait_for_new_face(page, "")
            _assert_pixelated(page)
            heard = client.infer(received)
            _assert_face(_image(page.request.get(face_src).body()), heard.image)
            assert "Latency:" in page.inner_text("#summary")
            _save_screenshot(page)
            page.get_by_text("The feature as numbers").click()
            feature = _wait_for_new_feature(page, None)
            assert render.cosine(feature, heard.feature) >= UPLOAD_COSINE
            assert render.cosine(feature, original.feature) >= MICROPHONE_COSINE

            # 2. an upload of the same file the client sends: the same feature and face
            _upload(page, voice)
            page.locator("#make-face").click()
            face_src = _wait_for_new_face(page, face_src)
            feature = _wait_for_new_feature(page, feature)
            assert render.cosine(feature, original.feature) >= UPLOAD_COSINE
            _assert_face(_image(page.request.get(face_src).body()), original.image)

            # 3. a corrupt file: one message, and the page keeps working
            _upload(page, clips["corrupt"])
            page.locator("#make-face").click()
            toast = page.locator(".toast-body.error").filter(has_text="The clip was refused")
            toast.first.wait_for()
            assert "corrupt.wav: not a readable audio file" in toast.first.inner_text()
            _upload(page, clips["other"])
            page.locator("#make-face").click()
            face_src = _wait_for_new_face(page, face_src)
            assert render.cosine(_wait_for_new_feature(page, feature), client.infer(str(clips["other"])).feature) \
                >= UPLOAD_COSINE
        finally:
            browser.close()


def _upload(page, path: Path) -> None:
    """Drops `path` on the voice input (clearing what it holds) and waits until the server has it."""
    clear = page.locator("#voice button[aria-label='Clear']")
    if clear.count() and clear.first.is_visible():
        clear.first.click()
    page.locator("#voice button[aria-label='Upload file']").click()
    with page.expect_response(_is_upload):
        page.locator("#voice input[type=file]").set_input_files(str(path))


def _is_upload(response) -> bool:
    return response.request.method == "POST" and urlsplit(response.url).path.endswith("/gradio_api/upload")


def _wait_for_new_face(page, previous: str) -> str:
    page.wait_for_function("previous => { const image = document.querySelector('#face img');"
                           " return image && image.src && image.src !== previous; }", arg=previous)
    return page.get_attribute("#face img", "src")


def _wait_for_new_feature(page, previous: np.ndarray | None, timeout_s: float = 60.0) -> np.ndarray:
    """The feature the page shows (the JSON box), once it differs from `previous`."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = page.inner_text("#feature")
        if "[" in text and "]" in text:
            feature = np.array(json.loads("".join(text[text.index("["):text.rindex("]") + 1].split())))
            if feature.size == 128 and (previous is None or not np.array_equal(feature, previous)):
                return feature
        assert time.monotonic() < deadline, f"the page's feature did not change: {text[:200]!r}"
        time.sleep(0.2)


def _assert_pixelated(page) -> None:
    rendering = page.eval_on_selector("#face img", "image => getComputedStyle(image).imageRendering")
    assert rendering in ("pixelated", "crisp-edges"), rendering


def _save_screenshot(page) -> None:
    """artifacts/web_demo.png each run; docs/web_demo.png (the README's, < 200 KB) when missing or
    when S2F_UPDATE_SCREENSHOT=1, so a test run leaves the checkout unchanged."""
    artifact = ROOT / "artifacts" / "web_demo.png"
    artifact.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(artifact), full_page=True)
    docs = ROOT / "docs" / "web_demo.png"
    if docs.exists() and os.environ.get("S2F_UPDATE_SCREENSHOT") != "1":
        return
    from PIL import Image

    with Image.open(artifact) as shot:   # a 256-colour palette: the page is flat colours and one small face
        shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(docs, optimize=True)
    assert docs.stat().st_size < 200_000, docs.stat().st_size

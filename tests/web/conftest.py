"""The page (`s2f web`'s Gradio Blocks) served in this process on loopback, over the session's real
tritonserver; and a second page whose server is down."""

from __future__ import annotations

import socket

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def gradio_folder(tmp_path_factory):
    """Gradio's uploads and outputs in the session's temporary folder (one for every page: Gradio
    reads GRADIO_TEMP_DIR again when it checks an upload's path)."""
    pytest.importorskip("gradio", reason="the web demo needs gradio: `make test-web` installs it")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        yield


def _serve(url: str):
    """(page URL, a closer) for a page over the server at `url`."""
    from speech2face.engine.web.app import build, launch
    from speech2face.engine.web.service import FaceService

    service = FaceService(url)
    port = free_port()
    page = launch(build(service), host="127.0.0.1", port=port, block=False)

    def close():
        page.close()
        service.close()

    return f"http://127.0.0.1:{port}/", close


@pytest.fixture(scope="session")
def web_url(triton_server, gradio_folder):
    url, close = _serve(triton_server.grpc_url)
    yield url
    close()


@pytest.fixture(scope="session")
def dead_server_web_url(gradio_folder):
    """A page whose server URL has nothing listening (a port just freed)."""
    url, close = _serve(f"127.0.0.1:{free_port()}")
    yield url
    close()


@pytest.fixture(scope="session")
def client(triton_server):
    from speech2face.engine.client import Speech2FaceClient

    with Speech2FaceClient(triton_server.grpc_url) as client:
        yield client


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """Files the page must take or refuse, by name: voice (the project's 6 s sample), other (another,
    synthetic voice), short (0.5 s), long (61 s), corrupt (random bytes), broken_wav (a RIFF header
    over junk)."""
    from pathlib import Path

    import numpy as np
    import soundfile

    from signals import harmonic_voice

    folder = tmp_path_factory.mktemp("clips")
    samples, rate = harmonic_voice(seconds=3.0)
    soundfile.write(folder / "other.wav", samples, rate)
    soundfile.write(folder / "short.wav", samples[:rate // 2], rate)
    soundfile.write(folder / "long.wav", np.zeros(61 * 8000, np.int16), 8000)
    (folder / "corrupt.wav").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    (folder / "broken_wav.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(64))
    paths = {p.stem: p for p in folder.iterdir()}
    paths["voice"] = Path(__file__).resolve().parents[2] / "assets" / "voice_sample.wav"
    return paths

"""The page's rules without a browser: what it accepts (engine/web/limits.py), its pictures
(engine/web/render.py), its messages for a dead server (engine/web/service.py), and `s2f web`'s
parser (no Gradio import to build it; the risk of --host said in --help)."""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest

from speech2face.engine.web import limits, render
from speech2face.engine.web.service import FaceService, PageError


def test_the_face_is_enlarged_by_repeating_pixels():
    face = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    large = render.upscale(face)
    assert large.shape == (256, 256, 3) and large.dtype == np.uint8
    assert np.array_equal(large, face[np.arange(256) // 4][:, np.arange(256) // 4])   # nearest neighbour
    assert render.upscale(face, 64).shape == (64, 64, 3)
    with pytest.raises(ValueError):
        render.upscale(face[..., 0])


def test_the_feature_plot_draws_positive_bars_up_and_negative_down():
    feature = np.zeros(128, np.float32)
    feature[3], feature[100] = 0.5, -1.0
    plot = render.feature_bars(feature)
    height, width = render.PLOT_SIZE
    assert plot.shape == (height, width, 3) and plot.dtype == np.uint8
    middle = height // 2
    up = (plot[:middle] == render.POSITIVE).all(axis=2)
    down = (plot[middle + 1:] == render.NEGATIVE).all(axis=2)
    assert up.any(axis=0).nonzero()[0].mean() < width * 4 / 128          # bar 3, near the left
    assert down.any(axis=0).nonzero()[0].mean() > width * 100 / 128      # bar 100, on the right
    assert down.sum(axis=0).max() == middle - 2                              # the largest magnitude: full height
    assert up.sum(axis=0).max() == round(0.5 * (middle - 2))                 # half of it: half the height
    assert (render.feature_bars(np.zeros(128)) != render.BACKGROUND).any(axis=2).sum() == width   # the axis only


def test_cosine():
    a = np.array([1.0, 2.0, 3.0])
    assert render.cosine(a, 2 * a) == pytest.approx(1.0)
    assert render.cosine(a, -a) == pytest.approx(-1.0)
    assert render.cosine(a, np.zeros(3)) == 0.0
    with pytest.raises(ValueError):
        render.cosine(a, np.ones(4))


@pytest.mark.parametrize("name, reason, words", [
    ("short", "too_short", "0.50 s long; speak for at least 1 s"),
    ("long", "too_long", "longer than 60 s"),
    ("broken_wav", "bad_file", "broken_wav.wav"),
])
def test_a_clip_out_of_bounds_is_refused_before_the_server(clips, name, reason, words):
    with pytest.raises(limits.ClipRejected) as refused:
        limits.check_clip(str(clips[name]))
    assert refused.value.reason == reason and words in str(refused.value)


def test_size_and_emptiness_are_checked_first(clips, tmp_path):
    with pytest.raises(limits.ClipRejected, match="is 0.2 MB; the limit is 0.1 MB") as refused:
        limits.check_clip(str(clips["voice"]), max_bytes=100_000)
    assert refused.value.reason == "too_big"
    (tmp_path / "empty.wav").write_bytes(b"")
    for path in (None, "", str(tmp_path / "empty.wav")):
        with pytest.raises(limits.ClipRejected) as refused:
            limits.check_clip(path)
        assert refused.value.reason == "empty"


def test_a_good_clip_passes_and_an_unknown_container_is_left_to_the_client(clips):
    assert limits.check_clip(str(clips["voice"])).checked
    assert limits.check_clip(str(clips["other"])).checked
    # not a container libsndfile reads (M4A, WebM, or junk): the client decodes it or refuses it
    assert not limits.check_clip(str(clips["corrupt"])).checked


def test_a_dead_server_is_one_sentence(clips):
    with socket.socket() as probe:       # a port just freed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    service = FaceService(f"127.0.0.1:{port}")
    try:
        with pytest.raises(PageError, match=r"^The face server at grpc://127\.0\.0\.1:\d+ does not answer; "
                                            r"is it running \(s2f serve\)\?") as failed:
            service.face(str(clips["voice"]))
        assert failed.value.reason == "server_down"
        with pytest.raises(PageError, match="^The first clip: The face server at .* does not answer"):
            service.compare(str(clips["voice"]), str(clips["other"]))
        with pytest.raises(PageError, match="^The first clip: The clip is 0.50 s long"):
            service.compare(str(clips["short"]), str(clips["voice"]))   # refused here, before the server
    finally:
        service.close()


def test_the_parser_does_not_import_gradio_and_help_states_the_risk():
    code = ("import sys; from speech2face.engine.cli.main import build_parser, parse; build_parser(); "
            "args = parse(['web', '--url', '127.0.0.1:9', '--port', '7999']); "
            "assert (args.command, args.url, args.port, args.host, args.protocol) == "
            "('web', '127.0.0.1:9', 7999, '127.0.0.1', 'grpc'), args; "
            "print('gradio' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "False", run.stdout + run.stderr
    help_text = subprocess.run([sys.executable, "-m", "speech2face.engine.cli", "web", "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    assert "RISK" in " ".join(help_text.split()) and "0.0.0.0" in help_text

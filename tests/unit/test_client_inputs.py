"""The client without a server: what audio becomes (the PyAV decoder, the routing, the warnings) and
the sans-I/O core's plans, driven by hand."""

from __future__ import annotations

import io
import warnings
from fractions import Fraction

import numpy as np
import pytest
import soundfile

from speech2face.engine import contract
from speech2face.engine.client import (AudioWarning, InvalidInput, NO_RETRY, RetryPolicy, ServerUnavailable,
                                       Speech2FaceClient)
from speech2face.engine.client import ffmpeg_decode
from speech2face.engine.client.audio_inputs import inspect_file
from speech2face.engine.client.core import Call, ClientCore, ClientOptions, Reset, Sleep, Work
from speech2face.engine.contract import audio_rules

av = pytest.importorskip("av")
RATE = 16000


def _tone(seconds: float, rate: int = RATE, level: float = 0.3) -> np.ndarray:
    return (level * np.sin(2 * np.pi * 220 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def _live_webm(path, samples: np.ndarray, rate: int = RATE) -> None:
    """Opus in WebM as a browser's MediaRecorder writes it: no duration in the header."""
    with av.open(str(path), "w", format="webm", options={"live": "1"}) as out:
        stream = out.add_stream("libopus", rate=48000, layout="mono")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=48000)
        for start in range(0, samples.size, 960):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 960].copy(), format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for converted in resampler.resample(frame):
                out.mux(stream.encode(converted))
        out.mux(stream.encode(None))


# ------------------------------------------------------------------------------------ the decoder
def test_channels_are_mixed_down_as_for_any_array(tmp_path):
    """AIFF (libsndfile reads it, the server does not take it): FFmpeg decodes it here, and the
    mono mix is the rules' own (the channels' mean), sample for sample."""
    stereo = np.stack([_tone(1.5), _tone(1.5, level=0.1)[::-1]], axis=1)
    soundfile.write(tmp_path / "stereo.aiff", stereo, RATE, subtype="PCM_16")
    samples, rate = ffmpeg_decode.decode(tmp_path / "stereo.aiff", "stereo.aiff")
    expected = audio_rules.to_mono_float32(soundfile.read(tmp_path / "stereo.aiff", dtype="float32")[0])
    assert rate == RATE and samples.dtype == np.float32 and samples.shape == expected.shape
    assert np.abs(samples - expected).max() <= 1e-7


def test_declared_length_is_refused_before_decoding(tmp_path):
    soundfile.write(tmp_path / "long.aiff", _tone(3.0), RATE)
    with pytest.raises(InvalidInput, match=r"long.aiff: audio is 3 s long; the limit is 1 s .*nothing was decoded"):
        ffmpeg_decode.probe(tmp_path / "long.aiff", "long.aiff", max_seconds=1)
    assert ffmpeg_decode.probe(tmp_path / "long.aiff", "long.aiff").seconds == pytest.approx(3.0)


def test_undeclared_length_is_refused_while_decoding(tmp_path):
    _live_webm(tmp_path / "live.webm", _tone(3.0))
    assert ffmpeg_decode.probe(tmp_path / "live.webm", "live.webm").seconds is None
    with pytest.raises(InvalidInput, match=r"live.webm: audio is longer than the 2 s limit \(decoding stopped at 2"):
        ffmpeg_decode.decode(tmp_path / "live.webm", "live.webm", max_seconds=2)
    samples, rate = ffmpeg_decode.decode(tmp_path / "live.webm", "live.webm")
    assert rate == 48000 and samples.size == pytest.approx(3 * 48000, rel=0.01)


def test_files_without_audio_are_one_line_naming_them_once(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "cover.png")
    (tmp_path / "notes.m4a").write_text("not a recording\n" * 20)
    (tmp_path / "empty.mp3").write_bytes(b"")
    for name, words in [("cover.png", "holds no audio track"), ("notes.m4a", "FFmpeg: Invalid data found"),
                        ("empty.mp3", "not a readable audio file")]:
        with pytest.raises(InvalidInput, match=words) as caught:
            inspect_file(tmp_path / name)
        assert str(caught.value).count(name) == 1 and "BytesIO" not in str(caught.value)
    with pytest.raises(InvalidInput, match=r"^audio file bytes: not a readable audio file \(FFmpeg: Invalid data"):
        inspect_file(b"\x00\x01 not audio" * 10)


def test_only_what_libsndfile_reads_as_a_served_format_goes_whole(tmp_path):
    for fmt in contract.AUDIO_FILE_FORMATS:
        data = io.BytesIO()
        soundfile.write(data, _tone(1.5), RATE, format=fmt)
        assert inspect_file(data.getvalue()).whole, fmt
    soundfile.write(tmp_path / "voice.aiff", _tone(1.5), RATE)
    soundfile.write(tmp_path / "voice.caf", _tone(1.5), RATE)
    assert not inspect_file(tmp_path / "voice.aiff").whole and not inspect_file(tmp_path / "voice.caf").whole


# ------------------------------------------------------------------------------------ warnings
def test_warning_thresholds():
    assert audio_rules.audio_warnings(RATE, RATE, 1.0) == []                   # 1 s exactly, peak 1: fine
    short, loud = audio_rules.audio_warnings(RATE - 1, RATE, 1.0001)
    assert "shorter than 1 s" in short and "served unchanged, not clipped" in loud
    assert audio_rules.SHORT_CLIP_SECONDS == 1.0 and issubclass(AudioWarning, UserWarning)


def test_warnings_come_before_sending_and_name_the_caller(tmp_path):
    soundfile.write(tmp_path / "short.flac", _tone(0.5), RATE)
    soundfile.write(tmp_path / "loud.wav", _tone(2.0, level=1.5), RATE, subtype="FLOAT")
    soundfile.write(tmp_path / "fine.wav", _tone(2.0), RATE, subtype="FLOAT")
    cases = [((_tone(0.5),), "audio is 0.5 s long"), ((_tone(2.0, level=1.5),), "samples reach 1.5"),
             ((tmp_path / "short.flac",), "short.flac: audio is 0.5 s long"),
             ((tmp_path / "loud.wav",), "loud.wav: samples reach 1.5")]
    with Speech2FaceClient("127.0.0.1:1", retry=NO_RETRY) as client:     # nothing listens
        for args, words in cases:
            with pytest.warns(AudioWarning, match=words) as caught, pytest.raises(ServerUnavailable):
                client.infer(*args, *([RATE] if isinstance(args[0], np.ndarray) else []))
            assert len(caught) == 1 and caught[0].filename == __file__
        with warnings.catch_warnings():
            warnings.simplefilter("error", AudioWarning)
            with pytest.raises(ServerUnavailable):
                client.infer(tmp_path / "fine.wav")


def test_a_float_file_beyond_the_refusal_limit_is_refused_before_sending(tmp_path):
    soundfile.write(tmp_path / "huge.wav", np.array([0.1, 3e9, 0.2], np.float32).repeat(RATE), RATE,
                    subtype="FLOAT")
    with Speech2FaceClient("127.0.0.1:1") as client:
        with pytest.raises(InvalidInput, match=r"huge.wav: audio sample 16000 is too large"):
            client.infer(tmp_path / "huge.wav")


# ------------------------------------------------------------------------------ the sans-I/O core
def test_a_plan_retries_an_unavailable_server_by_asking_for_a_reset_and_a_sleep():
    core = ClientCore(ClientOptions("h:1", "http", retry=RetryPolicy(max_attempts=2, jitter=0)))
    plan = core._plan_statistics("")
    assert next(plan) == Call("get_inference_statistics", ("",), {})
    assert plan.throw(ConnectionRefusedError(111, "refused")) == Reset()   # HTTP: a fresh connection
    assert plan.send(None) == Sleep(0.05)
    assert plan.send(None) == Call("get_inference_statistics", ("",), {})
    with pytest.raises(StopIteration) as done:
        plan.send({"model_stats": [{"name": "speech2face", "version": "1", "inference_count": 3}]})
    assert done.value.value["speech2face"].inference_count == 3
    plan = core._plan_statistics("")
    next(plan)
    plan.throw(ConnectionRefusedError(111, "refused"))
    plan.send(None)
    plan.send(None)
    assert plan.throw(ConnectionRefusedError(111, "refused")) == Reset()
    with pytest.raises(ServerUnavailable, match="gave up after 2 attempts"):
        plan.send(None)


class _Answer:
    def as_numpy(self, name):
        return {contract.FACE_FEATURE_NAME: np.ones((1, 128), np.float32),
                contract.FACE_IMAGE_NAME: np.zeros((1, 4, 4, 3), np.uint8)}[name]


def test_model_metadata_is_asked_once_per_model_and_decides_the_form():
    data = io.BytesIO()
    soundfile.write(data, _tone(1.5), RATE, format="FLAC")
    core = ClientCore(ClientOptions("h:1", "grpc"))

    def drive(plan, metadata_inputs):
        seen, reply = [], None
        while True:
            try:
                op = plan.send(reply)
            except StopIteration as done:
                return seen, done.value
            seen.append(op.method if isinstance(op, Call) else type(op).__name__)
            reply = ({"inputs": [{"name": n} for n in metadata_inputs]} if seen[-1] == "get_model_metadata"
                     else op.fn() if isinstance(op, Work) else _Answer())

    seen, result = drive(core._plan_infer(data.getvalue(), None, None), ["AUDIO", "SAMPLE_RATE", "AUDIO_FILE"])
    assert seen == ["get_model_metadata", "infer"] and result.feature.shape == (128,)
    assert drive(core._plan_infer(data.getvalue(), None, None), [])[0] == ["infer"]          # cached
    # a model without AUDIO_FILE: the file is decoded here (off the event loop, for asyncio) and sent as AUDIO
    seen, _ = drive(core._plan_infer(data.getvalue(), None, "old_model"), ["AUDIO", "SAMPLE_RATE"])
    assert seen == ["get_model_metadata", "Work", "infer"]

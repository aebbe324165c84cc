"""Every common audio format, from the client and from `s2f infer`, against the real server.

One 6 s voice-like clip is written as WAV, and the same samples are encoded with PyAV (FFmpeg in its
wheel) into M4A (AAC), MP3, WebM (Opus), OGG (Vorbis, and Opus), FLAC, and the audio track of MP4
and MKV videos. WAV/FLAC/OGG travel whole (AUDIO_FILE, decoded by the server's libsndfile); the
others are decoded by the client and sent as samples. Each gives a face feature whose cosine with
the WAV's is at least COSINE_MIN: lossy codecs change the samples a little (AAC/MP3/Opus at their
default bitrates), the lossless ones not at all.
"""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import soundfile

from signals import harmonic_voice
from speech2face.engine.client import InvalidInput, Speech2FaceClient
from speech2face.engine.client.audio_inputs import inspect_file
from speech2face.engine.contract.tensors import FEATURE_ATOL

av = pytest.importorskip("av")

COSINE_MIN = 0.99   # the tolerance: a lossy encoding of the clip still gives (nearly) the WAV's face
RATE = 16000
# name -> (container, audio codec, codec rate, layout, video codec, codec options); OGG Vorbis is
# stereo (FFmpeg's own Vorbis encoder takes two channels: the clip in both, mixed down to itself).
FORMATS = {
    "voice.m4a": ("mp4", "aac", RATE, "mono", None, {}),
    "voice.mp3": ("mp3", "libmp3lame", RATE, "mono", None, {}),
    "voice.webm": ("webm", "libopus", 48000, "mono", None, {}),
    "voice.ogg": ("ogg", "vorbis", RATE, "stereo", None, {"strict": "experimental"}),
    "voice.opus": ("ogg", "libopus", 48000, "mono", None, {}),
    "voice.flac": ("flac", "flac", RATE, "mono", None, {}),
    "video.mp4": ("mp4", "aac", 44100, "mono", "mpeg4", {}),
    "video.mkv": ("matroska", "libopus", 48000, "stereo", "mpeg4", {}),
}
WHOLE = {"voice.wav", "voice.ogg", "voice.opus", "voice.flac"}   # what libsndfile reads: sent as AUDIO_FILE


def encode(path, samples: np.ndarray, rate: int, container: str, codec: str, codec_rate: int | None = None,
           layout: str = "mono", video: str | None = None, options: dict | None = None) -> None:
    """`samples` (mono float32 at `rate`) encoded with PyAV into `path`; `video`: a small moving
    picture beside the audio track, as a phone's video carries."""
    with av.open(str(path), "w", format=container) as out:
        if video is not None:
            picture = out.add_stream(video, rate=5)
            picture.width, picture.height, picture.pix_fmt = 32, 32, "yuv420p"
        stream = out.add_stream(codec, rate=codec_rate or rate, layout=layout, options=options or {})
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout,
                                      rate=codec_rate or rate)
        for start in range(0, samples.size + 1, 1024):
            chunk = samples[start:start + 1024]
            frame = None
            if chunk.size:   # every channel the clip itself (FFmpeg's own upmix would lower it by 3 dB)
                channels = np.repeat(chunk[None], 2 if layout == "stereo" else 1, axis=0)
                frame = av.AudioFrame.from_ndarray(channels, format="fltp", layout=layout)
                frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for converted in resampler.resample(frame):
                out.mux(stream.encode(converted))
        out.mux(stream.encode(None))
        if video is not None:
            for index in range(int(samples.size / rate * 5)):
                image = np.full((32, 32, 3), (index * 8) % 256, np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = index
                out.mux(picture.encode(frame))
            out.mux(picture.encode(None))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """The folder with the clip as WAV and in every other format."""
    folder = tmp_path_factory.mktemp("formats")
    voice, rate = harmonic_voice(RATE, seconds=6.0)
    soundfile.write(folder / "voice.wav", voice, rate)
    for name, (container, codec, codec_rate, layout, video, options) in FORMATS.items():
        encode(folder / name, voice, rate, container, codec, codec_rate, layout, video, options)
    return folder


def test_the_encoders_this_test_needs_are_in_the_pyav_wheel():
    wanted = {"aac", "libmp3lame", "libopus", "vorbis", "flac", "mpeg4"}
    assert wanted <= set(av.codecs_available), sorted(wanted - set(av.codecs_available))


def test_each_format_goes_whole_or_decoded(clips):
    for name in ["voice.wav", *FORMATS]:
        assert inspect_file(clips / name).whole == (name in WHOLE), name


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_client_gives_the_wav_face_for_every_format(triton_server, clips, protocol):
    url = triton_server.grpc_url if protocol == "grpc" else triton_server.http_url
    with Speech2FaceClient(url, protocol) as client:
        reference = client.infer(clips / "voice.wav").feature
        results = {name: client.infer(clips / name).feature for name in FORMATS}
        from_bytes = client.infer((clips / "voice.m4a").read_bytes()).feature
    cosines = {name: cosine(feature, reference) for name, feature in results.items()}
    print(f"\ncosine with the WAV's feature ({protocol}): "
          + ", ".join(f"{name} {value:.5f}" for name, value in cosines.items()))
    assert all(value >= COSINE_MIN for value in cosines.values()), cosines
    assert cosines["voice.flac"] > 0.9999   # lossless: only the 16-bit rounding differs (libsndfile vs FFmpeg)
    assert np.abs(from_bytes - results["voice.m4a"]).max() <= FEATURE_ATOL   # bytes decode as the path does


def test_s2f_infer_gives_the_wav_face_for_every_format(triton_server, clips, tmp_path):
    run = subprocess.run([sys.executable, "-m", "speech2face.engine.cli.main", "infer", str(clips), "-o",
                          str(tmp_path / "faces"), "--feature", str(tmp_path / "features"),
                          "--url", triton_server.grpc_url], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    total = len(FORMATS) + 1
    assert f"{total} of {total} files -> faces" in run.stdout
    features = {path.name: np.load(path) for path in (tmp_path / "features").iterdir()}
    # voice.ogg and voice.opus share no stem with another file; video.* and voice.* do not clash either
    assert len(features) == total and len(list((tmp_path / "faces").iterdir())) == total
    reference = features.pop("voice.wav.npy")
    for name, feature in features.items():
        assert feature.dtype == np.float32 and feature.shape == (128,), name
        assert abs(float(np.linalg.norm(feature)) - 1.0) < 1e-5, name
        assert cosine(feature, reference) >= COSINE_MIN, (name, cosine(feature, reference))


def _corrupt_m4a(clips, tmp_path):
    """Two broken phone recordings: cut short (its index, at the end, is lost), and one whose
    audio data is noise (header intact: FFmpeg fails while decoding)."""
    good = (clips / "voice.m4a").read_bytes()
    (tmp_path / "cut.m4a").write_bytes(good[: len(good) // 2])
    data = bytearray(good)
    start = data.find(b"mdat") + 100
    data[start:start + 20000] = np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    (tmp_path / "noise.m4a").write_bytes(bytes(data))


def test_corrupt_m4a_is_one_line_naming_it_once_and_the_rest_run(triton_server, clips, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _corrupt_m4a(clips, folder)
    (folder / "good.m4a").write_bytes((clips / "voice.m4a").read_bytes())
    with Speech2FaceClient(triton_server.grpc_url) as client:
        for name in ("cut.m4a", "noise.m4a"):
            with pytest.raises(InvalidInput, match=r"not a readable audio file \(FFmpeg.*: Invalid data") as caught:
                client.infer(folder / name)
            message = str(caught.value)
            assert message.count(name) == 1 and "BytesIO" not in message and "\n" not in message
    run = subprocess.run([sys.executable, "-m", "speech2face.engine.cli.main", "infer", str(folder), "-o",
                          str(tmp_path / "out"), "--url", triton_server.grpc_url],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    for name in ("cut.m4a", "noise.m4a"):
        lines = [line for line in run.stderr.splitlines() if name in line]
        assert len(lines) == 1 and lines[0].count(name) == 1 and "Invalid data" in lines[0], run.stderr
    assert "2 of 3 files failed" in run.stderr and "Traceback" not in run.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


def test_short_and_loud_compressed_clips_warn(triton_server, tmp_path):
    voice, rate = harmonic_voice(RATE, seconds=6.0)
    encode(tmp_path / "short.m4a", voice[: rate // 2], rate, "mp4", "aac")
    encode(tmp_path / "loud.webm", voice / np.abs(voice).max() * 1.5, rate, "webm", "libopus", 48000)
    run = subprocess.run([sys.executable, "-m", "speech2face.engine.cli.main", "infer", str(tmp_path / "short.m4a"),
                          str(tmp_path / "loud.webm"), "-o", str(tmp_path / "out"), "--url", triton_server.grpc_url],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    warned = [line for line in run.stderr.splitlines() if ": warning: " in line]
    assert len(warned) == 2, run.stderr
    assert warned[0].startswith(f"{tmp_path / 'short.m4a'}: warning: audio is 0.5")   # 0.5 s + the codec's padding
    assert warned[1].startswith(f"{tmp_path / 'loud.webm'}: warning: samples reach 1.")
    assert "served unchanged, not clipped" in warned[1]

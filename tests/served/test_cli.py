"""The `s2f` command: real files in, PNGs out; errors are one line, no traceback."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import soundfile
from PIL import Image


def _s2f(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "speech2face.engine.cli.main", *args],
                          capture_output=True, text=True, timeout=300)


def test_infer_writes_a_face_png(triton_server, bundle, voice_like, tmp_path):
    audio, rate = voice_like
    stereo = np.stack([audio, audio * 0.5], axis=1)
    soundfile.write(tmp_path / "voice.flac", stereo, rate)
    out = tmp_path / "face.png"
    result = _s2f("infer", str(tmp_path / "voice.flac"), "-o", str(out), "--url", triton_server.grpc_url)
    assert result.returncode == 0, result.stderr
    image = np.asarray(Image.open(out))
    assert image.shape == (bundle.image_size, bundle.image_size, 3)


def test_infer_over_http_on_a_folder(triton_server, voice_like, tmp_path):
    audio, rate = voice_like
    (tmp_path / "in").mkdir()
    for name in ("a", "b"):
        soundfile.write(tmp_path / "in" / f"{name}.wav", audio, rate)
    result = _s2f("infer", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                  "--url", triton_server.http_url, "--protocol", "http")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]


def test_many_files_one_failure_clashing_stems_and_subfolders(triton_server, bundle, voice_like, tmp_path):
    audio, rate = voice_like
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    soundfile.write(folder / "a.wav", audio, rate)
    soundfile.write(folder / "a.flac", audio * 0.5, rate)
    soundfile.write(folder / "sub" / "b.ogg", audio, rate)
    (folder / "broken.wav").write_bytes(b"RIFF" + bytes(60))
    result = _s2f("infer", str(folder), "--recursive", "-o", str(tmp_path / "out"), "--url", triton_server.grpc_url)
    assert result.returncode == 2, result.stderr
    assert "broken.wav: not a readable audio file" in result.stderr
    assert "1 of 4 files failed" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("broken.wav") == 1     # one line, naming the file once
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["a.flac.png", "a.wav.png", "sub/b.png"]
    faces = [np.asarray(Image.open(tmp_path / "out" / name)) for name in written]
    assert all(face.shape == (bundle.image_size, bundle.image_size, 3) for face in faces)
    assert not np.array_equal(faces[0], faces[1])    # two different clips, two faces, neither overwritten
    flat = _s2f("infer", str(folder), "-o", str(tmp_path / "flat"), "--url", triton_server.grpc_url)
    assert sorted(p.name for p in (tmp_path / "flat").rglob("*.png")) == ["a.flac.png", "a.wav.png"]
    assert flat.returncode == 2


def test_infer_reuses_a_server_on_the_default_local_port(triton_server, monkeypatch):
    import argparse

    from speech2face.engine.cli import common as cli

    monkeypatch.setattr(cli, "LOCAL_PORTS", {"grpc": triton_server.grpc_port, "http": triton_server.http_port})
    for protocol in ("grpc", "http"):
        args = argparse.Namespace(url=None, repository=None, protocol=protocol)
        with cli.endpoint(args) as url:      # no server is started: the running one is used
            assert url == (triton_server.grpc_url if protocol == "grpc" else triton_server.http_url)
    monkeypatch.setattr(cli, "LOCAL_PORTS", {"grpc": 1, "http": 1})
    assert cli._local_server("grpc") is None and cli._local_server("http") is None


def test_unreadable_file_is_one_clear_line(tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"\x00\x01not audio at all" * 10)
    result = _s2f("infer", str(garbage), "-o", str(tmp_path / "x.png"), "--url", "127.0.0.1:1")
    assert result.returncode == 2
    assert "not a readable audio file" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_is_named(tmp_path):
    result = _s2f("infer", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "x.png"), "--url", "127.0.0.1:1")
    assert result.returncode == 2
    assert "nope.wav" in result.stderr and "Traceback" not in result.stderr


def test_feature_is_written_l2_normalised_float32(triton_server, voice_like, tmp_path):
    from speech2face.engine.client import Speech2FaceClient
    from speech2face.engine.contract.tensors import FEATURE_ATOL

    audio, rate = voice_like
    soundfile.write(tmp_path / "voice.wav", audio, rate)
    result = _s2f("infer", str(tmp_path / "voice.wav"), "-o", str(tmp_path / "face.png"),
                  "--feature", str(tmp_path / "face.npy"), "--url", triton_server.grpc_url)
    assert result.returncode == 0, result.stderr
    feature = np.load(tmp_path / "face.npy")
    assert feature.dtype == np.float32 and feature.shape == (128,)
    assert abs(float(np.linalg.norm(feature)) - 1.0) < 1e-5
    with Speech2FaceClient(triton_server.grpc_url) as client:
        assert np.abs(feature - client.infer(tmp_path / "voice.wav").feature).max() <= FEATURE_ATOL
    (tmp_path / "in").mkdir()
    soundfile.write(tmp_path / "in" / "b.flac", audio, rate)
    several = _s2f("infer", str(tmp_path / "voice.wav"), str(tmp_path / "in"), "-o", str(tmp_path / "x.png"),
                   "--feature", str(tmp_path / "f.npy"), "--url", triton_server.grpc_url)
    assert several.returncode == 2 and "-o to name a folder" in several.stderr
    several = _s2f("infer", str(tmp_path / "voice.wav"), str(tmp_path / "in"), "-o", str(tmp_path / "faces"),
                   "--feature", str(tmp_path / "f.npy"), "--url", triton_server.grpc_url)
    assert several.returncode == 2 and "--feature to name a folder" in several.stderr


def test_folder_counts_what_is_not_audio_as_skipped(triton_server, voice_like, tmp_path):
    audio, rate = voice_like
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.wav", "b.wav"):
        soundfile.write(folder / name, audio, rate)
    (folder / "notes.txt").write_text("recorded on Tuesday\n")
    (folder / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    result = _s2f("infer", str(folder), "-o", str(tmp_path / "out"), "--feature", str(tmp_path / "features"),
                  "--url", triton_server.grpc_url)
    assert result.returncode == 0, result.stderr
    assert "skipped 2 files that are not audio (cover.jpg, notes.txt)" in result.stderr
    assert "2 of 4 files -> faces, 2 skipped (not audio)" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == ["a.npy", "b.npy"]
    only_text = tmp_path / "text"
    only_text.mkdir()
    (only_text / "notes.txt").write_text("nothing to hear\n")
    nothing = _s2f("infer", str(only_text), "-o", str(tmp_path / "none"), "--url", "127.0.0.1:1")
    assert nothing.returncode == 2 and "skipped 1 file that is not audio (notes.txt)" in nothing.stderr
    assert "no audio files found" in nothing.stderr


def test_short_and_loud_clips_warn_one_line_each(triton_server, voice_like, tmp_path):
    audio, rate = voice_like
    soundfile.write(tmp_path / "short.wav", audio[: rate // 2], rate)
    soundfile.write(tmp_path / "loud.wav", audio / np.abs(audio).max() * 1.5, rate, subtype="FLOAT")
    result = _s2f("infer", str(tmp_path / "short.wav"), str(tmp_path / "loud.wav"), "-o", str(tmp_path / "out"),
                  "--url", triton_server.grpc_url)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert [line for line in lines if "short.wav" in line] == [
        f"{tmp_path / 'short.wav'}: warning: audio is 0.5 s long, shorter than 1 s: the server repeats it to "
        "fill the model's clip, and a face from so little voice is unreliable"]
    loud = [line for line in lines if "loud.wav" in line]
    assert len(loud) == 1 and loud[0].startswith(f"{tmp_path / 'loud.wav'}: warning: samples reach 1.5")
    assert "UserWarning" not in result.stderr and "AudioWarning" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["loud.png", "short.png"]

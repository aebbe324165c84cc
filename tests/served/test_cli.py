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

"""`features` CLI command and audio_io."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from speech2face.engine.contract.audio_files import read_audio
from speech2face.engine.contract.audio_rules import AudioError, check_layout, to_mono_float32
from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.engine.features.kernels import compute_features
from speech2face.engine.features.resampling import validate_audio
from speech2face.engine.cli.features_command import add as add_features_command

soundfile = pytest.importorskip("soundfile")


def _run(argv):
    parser = argparse.ArgumentParser(prog="s2f")
    add_features_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


@pytest.fixture
def stereo_wav(tmp_path):
    rng = np.random.default_rng(0)
    x = 0.2 * rng.standard_normal((44100 * 2, 2))
    path = tmp_path / "a.wav"
    soundfile.write(path, x, 44100, subtype="PCM_16")
    return path


@pytest.mark.parametrize("impl", ["cpp", "reference"])
def test_cli_writes_features(stereo_wav, tmp_path, impl, capsys):
    out = tmp_path / f"{impl}.npy"
    assert _run(["features", str(stereo_wav), "-o", str(out), "--impl", impl, "--clip-seconds", "3"]) == 0
    features = np.load(out)
    assert features.shape == FeatureSpec(clip_seconds=3).shape and features.dtype == np.float32
    samples, rate = read_audio(stereo_wav)
    spec = FeatureSpec(clip_seconds=3)
    expected = compute_features([validate_audio(samples, rate, spec)], spec)[0]
    assert np.abs(features - expected).max() < 2e-3


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    for argv in (["features", str(tmp_path / "missing.wav"), "-o", str(tmp_path / "o.npy")],
                 ["features", str(bad), "-o", str(tmp_path / "o.npy")]):
        with pytest.raises(SystemExit) as exit_info:
            _run(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error:" in err and "Traceback" not in err


def test_cli_dali_refuses_complex(stereo_wav, tmp_path, capsys):
    pytest.importorskip("nvidia.dali")
    with pytest.raises(SystemExit) as exit_info:
        _run(["features", str(stereo_wav), "-o", str(tmp_path / "o.npy"), "--impl", "dali"])
    assert exit_info.value.code == 2
    assert "complex" in capsys.readouterr().err


@pytest.mark.parametrize("subtype, fmt", [("PCM_16", "WAV"), ("PCM_32", "WAV"), ("FLOAT", "WAV"),
                                          ("DOUBLE", "WAV"), ("PCM_24", "FLAC"), ("VORBIS", "OGG")])
def test_read_audio_formats(tmp_path, subtype, fmt):
    t = np.arange(16000) / 16000
    x = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 440 * t)], axis=1)
    path = tmp_path / f"x.{fmt.lower()}"
    soundfile.write(path, x, 16000, subtype=subtype, format=fmt)
    samples, rate = read_audio(path)
    assert rate == 16000 and samples.dtype == np.float32 and samples.shape == (16000,)
    tol = 0.05 if subtype == "VORBIS" else 1e-4
    assert np.abs(samples - x.mean(axis=1)).max() < tol


def test_to_mono_float32():
    assert to_mono_float32(np.array([-32768, 16384], np.int16)).tolist() == [-1.0, 0.5]
    assert to_mono_float32(np.array([[2**30, 0]], np.int32)).tolist() == [0.25]
    with pytest.raises(AudioError):
        check_layout(np.zeros(3, np.uint8))

"""The `s2f` command: real files in, PNGs out; errors are one line, no traceback."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import soundfile
from PIL import Image


def _s2f(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "speech2face.engine.cli", *args],
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


def test_eval_reports_retrieval_and_agreement_as_json(tmp_path):
    """`s2f eval` on a fresh tiny corpus (identities the built-in model never saw): last line JSON."""
    import json
    import shutil

    from speech2face.engine.builtin import BUILTIN_BUNDLE
    from speech2face.training.data.synthetic import generate_corpus

    corpus = generate_corpus(tmp_path / "corpus", 40, 2, seed=5, workers=2)
    checkpoint = tmp_path / "model" / "checkpoint.pt"
    checkpoint.parent.mkdir()
    shutil.copyfile(BUILTIN_BUNDLE / "checkpoint.pt", checkpoint)
    result = _s2f("eval", "--checkpoint", str(checkpoint), "--data", str(corpus), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    # the recipe's split: 35 % of 40 identities held out, 2 clips each
    assert metrics["gallery_size"] == 14 and metrics["queries"] == 28
    assert metrics["chance_at_1"] == 1 / 14 and 0.0 <= metrics["r_at_1"] <= 1.0
    assert metrics["gender_agreement"] >= 0.8          # the built-in model reads gender at 0.97
    report = (checkpoint.parent / "EVALUATION.md").read_text()
    assert report.startswith(f"# Evaluation of {checkpoint}") and "| cosine |" in report


def test_eval_without_a_corpus_is_one_clear_line(tmp_path):
    result = _s2f("eval", "--data", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "no corpus" in result.stderr and "Traceback" not in result.stderr

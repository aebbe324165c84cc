"""The in-graph front end (export/frontend.py) and the waveform graph (export/waveform_graph.py).

Tolerances, stated once:
- front end vs the float64 NumPy reference: the STFT itself (before the power law) within
  2e-4 absolute (|X| reaches 200 for full-scale audio: float32 sums of 400 products), and the
  features' cosine >= 0.999999 per clip of voice or noise. The features alone are not compared absolutely:
  sign(x)|x|^0.3 turns an error e near 0 into up to e^0.3 (1e-6 -> 0.016).
- waveform graph vs the in-process runtime (C++ features + the bundle's ONNX): face feature
  cosine >= 0.99999 (FP32) and >= 0.999 (FP16 twin); the image within 2 levels for both.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from speech2face.engine import contract
from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.engine.features.resampling import validate_audio
from speech2face.engine.features.reference import apply_clip_policy, reference_features
from speech2face.engine.runtime.local_runtime import LocalRuntime
from speech2face.engine.runtime.onnx_runner import open_session
from speech2face.export import fp16
from speech2face.export.frontend import StftFrontEnd
from speech2face.export.waveform_graph import front_end_nodes, front_end_onnx, waveform_graph

REPO = Path(__file__).resolve().parents[2]
STFT_ATOL = 2e-4
FEATURE_MIN_COSINE = 0.999999
EDGE_SIGNALS = ("dc_full_scale", "clipped")


def voice_sample() -> np.ndarray:
    with wave.open(str(REPO / "assets" / "voice_sample.wav")) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def make_signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    n = FeatureSpec().clip_samples
    t = np.arange(n) / 16000
    return {"voice": voice_sample(), "noise": (0.1 * rng.standard_normal(n)).astype(np.float32),
            "short_voice": voice_sample()[:21000] * 0.3,
            "dc_full_scale": np.ones(n, np.float32),
            "clipped": np.clip(3 * np.sin(2 * np.pi * 220 * t), -1, 1).astype(np.float32)}


def _undo_power_law(features: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    return np.sign(features) * np.abs(features.astype(np.float64)) ** (1.0 / spec.power)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("kind", ["complex_powerlaw", "magnitude_powerlaw"])
def test_front_end_matches_the_feature_spec_reference(kind):
    spec = FeatureSpec(kind=kind)
    front_end = StftFrontEnd(spec).eval()
    for name, signal in make_signals().items():
        clip = apply_clip_policy(signal, spec.clip_samples).astype(np.float32)
        with torch.no_grad():
            ours = front_end(torch.from_numpy(clip)[None]).numpy()[0]
        reference = reference_features(signal, spec)
        assert ours.shape == reference.shape == spec.shape
        stft_error = np.abs(_undo_power_law(ours, spec) - _undo_power_law(reference, spec)).max()
        assert stft_error < STFT_ATOL, (name, stft_error)
        if name not in EDGE_SIGNALS:  # DC: every bin but 0 is rounding noise, raised to ^0.3
            assert _cosine(ours, reference) >= FEATURE_MIN_COSINE, name


def test_front_end_refuses_kinds_it_cannot_compute():
    with pytest.raises(ValueError, match="logmel"):
        StftFrontEnd(FeatureSpec(kind="logmel"))


@pytest.fixture(scope="module")
def front_end_files(tmp_path_factory):
    """The exported front end in FP32 and wholly in FP16 (no FP32 islands) on ONNX Runtime."""
    folder = tmp_path_factory.mktemp("front_end")
    onnx.save(front_end_onnx(FeatureSpec()), str(folder / "fp32.onnx"))
    fp16.write_fp16(folder / "fp32.onnx", folder / "fp16.onnx")
    model16 = onnx.load(str(folder / "fp16.onnx"))
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model16.graph.initializer)
    return {p: open_session(folder / f"{p}.onnx", 1) for p in ("fp32", "fp16")}


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_exported_front_end_is_finite_and_exact_at_zero(front_end_files, precision):
    """Silence, full-scale DC and clipped audio: no NaN/Inf in either precision; silence gives 0."""
    spec = FeatureSpec()
    session = front_end_files[precision]
    signals = make_signals()
    batch = np.stack([np.zeros(spec.clip_samples, np.float32), signals["dc_full_scale"], signals["clipped"],
                      -signals["dc_full_scale"]])
    (out,) = session.run(None, {contract.ONNX_CLIP_INPUT: batch})
    assert out.shape == (4, *spec.shape)
    assert np.isfinite(out).all()
    assert (out[0] == 0).all()  # Sign(0) * Pow(0, 0.3) = 0 * 0: exactly zero, no eps bias
    reference = np.stack([reference_features(c, spec) for c in batch[1:]])
    # Clipped audio: a wholly FP16 front end measures 0.9989 here, one reason the FP16 twin of
    # the waveform graph keeps the front end in FP32 (test_fp16_twin_keeps_the_front_end_in_fp32).
    assert _cosine(out[2], reference[1]) >= (0.99999 if precision == "fp32" else 0.998)
    # DC of full scale: Re X_0 = sum(window) = 200 -> 200^0.3, inside FP16 without a squared term.
    assert out[1, 0, 0, 0] == pytest.approx(200.0 ** 0.3, rel=1e-3)
    assert out[3, 0, 0, 0] == pytest.approx(-(200.0 ** 0.3), rel=1e-3)


@pytest.fixture(scope="module")
def waveform_sessions(bundle, tmp_path_factory):
    folder = tmp_path_factory.mktemp("waveform")
    graph = waveform_graph(bundle)
    onnx.save(graph, str(folder / "fp32.onnx"))
    fp16.write_fp16(folder / "fp32.onnx", folder / "fp16.onnx", front_end_nodes(graph))
    return {p: open_session(folder / f"{p}.onnx", 1) for p in ("fp32", "fp16")}


@pytest.mark.parametrize("precision,min_cosine", [("fp32", 0.99999), ("fp16", 0.999)])
def test_waveform_graph_matches_the_in_process_runtime(bundle, waveform_sessions, precision, min_cosine):
    spec = bundle.feature_spec
    signals = make_signals()
    clips = [validate_audio(signals[k], spec.sample_rate, spec) for k in ("voice", "short_voice", "noise")]
    expected_features, expected_images = LocalRuntime(bundle, 1).run(clips)
    batch = np.stack([apply_clip_policy(c, spec.clip_samples) for c in clips]).astype(np.float32)
    features, images = waveform_sessions[precision].run(None, {contract.ONNX_CLIP_INPUT: batch})
    cosines = (features * expected_features).sum(1) / (
        np.linalg.norm(features, axis=1) * np.linalg.norm(expected_features, axis=1))
    assert cosines.min() >= min_cosine, cosines
    assert images.dtype == np.uint8 and images.shape == expected_images.shape
    assert np.abs(images.astype(int) - expected_images.astype(int)).max() <= 2


def test_fp16_twin_keeps_the_front_end_in_fp32(bundle, tmp_path):
    graph = waveform_graph(bundle)
    kept = set(front_end_nodes(graph))
    assert {n.op_type for n in graph.graph.node if n.name in kept} >= {"Conv", "Sign", "Abs", "Pow"}
    converted = fp16.to_fp16(graph, sorted(kept))
    basis = [i for i in converted.graph.initializer if i.dims and list(i.dims) == [514, 1, 400]]
    assert len(basis) == 1 and basis[0].data_type == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in converted.graph.initializer)

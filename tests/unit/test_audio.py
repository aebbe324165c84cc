"""engine/contract/audio_rules.py: the one place that checks and normalises audio; each refusal has a reason."""

from __future__ import annotations

import numpy as np
import pytest

from speech2face.engine.contract.audio_rules import MAX_ABS_SAMPLE, REASONS, AudioError, normalize_audio
from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.engine.features.kernels import compute_features
from speech2face.engine.features.resampling import validate_audio


@pytest.mark.parametrize("audio, rate, reason, message", [
    (np.zeros(100, np.uint8), 16000, "bad_dtype", "dtype uint8"),
    (np.zeros((2, 3, 4), np.float32), 16000, "bad_shape", "1-D mono or 2-D"),
    (np.zeros((0, 2), np.float32), 16000, "empty", "empty"),
    (np.zeros(100, np.float32), True, "bad_rate", "not a number"),
    (np.zeros(100, np.float32), 4000, "bad_rate", "4000 Hz is not supported"),
    (np.zeros(600 * 16000 + 1, np.float32), 16000, "too_long",
     r"600.0001 s long; the limit is 600 s \(9600000 samples at 16000 Hz; this audio has 9600001\)"),
    (np.array([0.0, np.nan, 0.0], np.float32), 16000, "not_finite", "NaN or Inf samples \\(first at sample 1\\)"),
    (np.array([0.0, 0.0, 3e38], np.float32), 16000, "overflow", "sample 2 is too large"),
    (np.array([[0.0, -3e38]], np.float32), 16000, "overflow", "sample 0 is too large"),
    (np.array([1e300]), 16000, "overflow", "too large"),
])
def test_refusals_name_the_problem_and_carry_a_reason(audio, rate, reason, message):
    with pytest.raises(AudioError, match=message) as caught:
        normalize_audio(audio, rate)
    assert caught.value.reason == reason and reason in REASONS


def test_exactly_the_limit_is_accepted():
    audio, rate = normalize_audio(np.zeros(600 * 16000, np.int16), 16000)
    assert audio.shape == (600 * 16000,) and audio.dtype == np.float32 and rate == 16000


@pytest.mark.parametrize("kind", ["complex_powerlaw", "magnitude_powerlaw", "logmel"])
def test_largest_accepted_amplitude_keeps_features_finite(kind):
    """The limit is where float32 features are still finite for every kind (3e38 gave NaN)."""
    spec = FeatureSpec(kind=kind)
    noise = np.random.default_rng(0).uniform(-1, 1, 16000 * 6).astype(np.float32) * np.float32(MAX_ABS_SAMPLE)
    features = compute_features([validate_audio(noise, 16000, spec)], spec)
    assert np.isfinite(features).all()
    with pytest.raises(AudioError) as caught:
        validate_audio(noise * np.float32(2.0), 16000, spec)
    assert caught.value.reason == "overflow"


def test_in_process_runtime_refuses_overflowing_audio(bundle):
    from speech2face.engine.runtime.local_runtime import LocalRuntime

    with pytest.raises(AudioError, match="too large"):
        LocalRuntime(bundle).infer(np.full(16000, -3e38, np.float32), 16000)

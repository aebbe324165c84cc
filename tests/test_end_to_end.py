"""The walking skeleton: a voice in, a face out, through the real Triton server."""

from __future__ import annotations

import numpy as np
import pytest

from speech2face.engine.client import InferenceError, Speech2FaceClient
from speech2face.engine.local_runtime import LocalRuntime

# Served vs in-process: the same kernels and ONNX graphs; ONNX Runtime may pick other kernels
# for another batch size, so allow float32 rounding on a unit-norm vector.
FEATURE_ATOL = 1e-5
IMAGE_MAX_LEVELS = 1


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_served_face_matches_in_process(triton_server, bundle, voice_like, protocol):
    audio, rate = voice_like
    url = triton_server.grpc_url if protocol == "grpc" else triton_server.http_url
    with Speech2FaceClient(url, protocol) as client:
        served = client.infer(audio, rate)
    local = LocalRuntime(bundle).infer(audio, rate)

    assert served.feature.shape == (bundle.feature_dim,)
    assert served.feature.dtype == np.float32
    assert np.linalg.norm(served.feature) == pytest.approx(1.0, abs=1e-5)
    assert np.abs(served.feature - local.feature).max() <= FEATURE_ATOL
    assert served.image.shape == (bundle.image_size, bundle.image_size, 3)
    assert served.image.dtype == np.uint8
    assert np.abs(served.image.astype(int) - local.image.astype(int)).max() <= IMAGE_MAX_LEVELS


def test_different_voices_give_different_features(triton_server, voice_like):
    audio, rate = voice_like
    noise = np.random.default_rng(1).standard_normal(rate * 3).astype(np.float32) * 0.1
    with Speech2FaceClient(triton_server.grpc_url) as client:
        a = client.infer(audio, rate).feature
        b = client.infer(noise, rate).feature
    # Untrained weights map all voices close together, but the output must depend on the input.
    assert np.abs(a - b).max() > 1e-5


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_bad_audio_is_refused_and_server_keeps_serving(triton_server, voice_like, protocol):
    audio, rate = voice_like
    url = triton_server.grpc_url if protocol == "grpc" else triton_server.http_url
    with Speech2FaceClient(url, protocol) as client:
        bad = audio.copy()
        bad[100] = np.nan
        with pytest.raises(InferenceError, match="NaN or Inf"):
            client.infer(bad, rate)
        good = client.infer(audio, rate)
    assert np.isfinite(good.feature).all()

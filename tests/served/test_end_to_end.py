"""The walking skeleton: a voice in, a face out, through the real Triton server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from speech2face.engine.client import InferenceError, Speech2FaceClient
from speech2face.engine.contract.tensors import FEATURE_ATOL
from speech2face.engine.runtime.local_runtime import LocalRuntime

# Served vs in-process: the same kernels and ONNX graphs; ONNX Runtime may pick other kernels
# for another batch size: features agree within FEATURE_ATOL, images within a grey level.
IMAGE_MAX_LEVELS = 1


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_served_face_matches_in_process(any_layout_server, bundle, voice_like, protocol):
    audio, rate = voice_like
    url = any_layout_server.grpc_url if protocol == "grpc" else any_layout_server.http_url
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
    # The output must depend on the input (a constant output would pass every parity test).
    assert np.abs(a - b).max() > 1e-5


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_bad_audio_is_refused_and_server_keeps_serving(any_layout_server, voice_like, protocol):
    audio, rate = voice_like
    url = any_layout_server.grpc_url if protocol == "grpc" else any_layout_server.http_url
    with Speech2FaceClient(url, protocol) as client:
        bad = audio.copy()
        bad[100] = np.nan
        with pytest.raises(InferenceError, match="NaN or Inf"):
            client.infer(bad, rate)
        good = client.infer(audio, rate)
    assert np.isfinite(good.feature).all()


def test_bad_requests_batched_with_good_ones_fail_alone(any_layout_server, bundle, voice_like):
    """Concurrent requests share execute() calls (dynamic batching): a bad clip must be refused
    on its own while the good clips of the same batch are answered correctly."""
    audio, rate = voice_like
    expected = LocalRuntime(bundle).infer(audio, rate).feature
    bad = audio.copy()
    bad[7] = np.inf

    def call(k: int):
        with Speech2FaceClient(any_layout_server.grpc_url, validate=False) as client:
            try:
                return k, client.infer(bad if k % 3 == 0 else audio, rate).feature
            except InferenceError as error:
                return k, error

    with ThreadPoolExecutor(12) as pool:
        results = dict(pool.map(call, range(24)))
    for k, result in results.items():
        if k % 3 == 0:
            assert isinstance(result, InferenceError) and "NaN or Inf" in str(result), k
        else:
            assert np.abs(result - expected).max() <= FEATURE_ATOL, k

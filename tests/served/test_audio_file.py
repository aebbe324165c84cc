"""AUDIO_FILE: a whole WAV/FLAC/OGG file per batch item, decoded on the server (both layouts, gRPC and HTTP).

Plain tritonclient on purpose: this is the contract as any client app sees it.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile
import tritonclient.grpc as grpc_client
import tritonclient.http as http_client
from tritonclient.utils import InferenceServerException

from signals import harmonic_voice
from speech2face.engine import contract
from speech2face.engine.contract.tensors import FEATURE_ATOL
from speech2face.engine.runtime.local_runtime import LocalRuntime
from speech2face.engine.runtime.model_metrics import refusal_counts, scrape

# FLAC and PCM WAV are lossless: the decoded samples are exactly what was encoded (PCM_16 is
# the quantisation the test applies itself), so the served feature equals the in-process feature
# of those samples within FEATURE_ATOL (ONNX Runtime's float32 rounding for another batch size).
IMAGE_MAX_LEVELS = 1

MODULES = {"grpc": grpc_client, "http": http_client}


def encode(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def file_input(protocol: str, files: list[bytes]):
    tensor = module_input(protocol, contract.AUDIO_FILE.name, [len(files), 1], "BYTES")
    tensor.set_data_from_numpy(np.array(files, dtype=object).reshape(-1, 1))
    return tensor


def module_input(protocol: str, name: str, shape: list[int], dtype: str):
    return MODULES[protocol].InferInput(name, shape, dtype)


def samples_inputs(protocol: str, audio: np.ndarray, rate: int):
    samples = module_input(protocol, contract.AUDIO.name, [1, audio.size], "FP32")
    samples.set_data_from_numpy(audio.reshape(1, -1).astype(np.float32))
    rates = module_input(protocol, contract.SAMPLE_RATE.name, [1, 1], "INT32")
    rates.set_data_from_numpy(np.array([[rate]], np.int32))
    return [samples, rates]


def infer(server, protocol: str, inputs):
    url = server.grpc_url if protocol == "grpc" else server.http_url
    client = MODULES[protocol].InferenceServerClient(url)
    try:
        result = client.infer(contract.ENSEMBLE, inputs)
        return result.as_numpy(contract.FACE_FEATURE_NAME), result.as_numpy(contract.FACE_IMAGE_NAME)
    finally:
        client.close()


@pytest.fixture(scope="module")
def voice(voice_like):
    audio, rate = voice_like
    # Quantised to 16 bits first, so that the WAV and FLAC files hold exactly these samples.
    return (np.round(audio * 32767) / 32768).astype(np.float32), rate


@pytest.fixture(scope="module")
def voice_like():
    return harmonic_voice(rate=22050)  # not 16 kHz: the decoded file is resampled on the server as AUDIO is


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("fmt", ["FLAC", "WAV"])
def test_file_gives_the_feature_of_its_decoded_samples(any_layout_server, bundle, voice, protocol, fmt):
    audio, rate = voice
    feature, image = infer(any_layout_server, protocol, [file_input(protocol, [encode(audio, rate, fmt, "PCM_16")])])
    local = LocalRuntime(bundle).infer(audio, rate)
    assert np.abs(feature[0] - local.feature).max() <= FEATURE_ATOL
    assert np.abs(image[0].astype(int) - local.image.astype(int)).max() <= IMAGE_MAX_LEVELS


def test_a_batch_of_files_of_different_formats(triton_server, bundle, voice):
    audio, rate = voice
    stereo = np.stack([audio, audio], axis=1)
    files = [encode(audio, rate, "FLAC", "PCM_16"), encode(stereo, rate, "WAV", "PCM_16"), encode(audio, rate, "OGG")]
    feature, _ = infer(triton_server, "grpc", [file_input("grpc", files)])
    local = LocalRuntime(bundle).infer(audio, rate).feature
    assert feature.shape == (3, bundle.feature_dim)
    assert np.abs(feature[:2] - local).max() <= FEATURE_ATOL  # lossless: mono and its stereo copy
    # Vorbis is lossy: the feature moves, but stays the same voice's.
    assert float(feature[2] @ local) > 0.95


def _bad_files(voice) -> dict[str, tuple[bytes, str]]:
    audio, rate = voice
    wav = encode(audio, rate, "WAV", "PCM_16")
    flac = encode(audio, rate, "FLAC", "PCM_16")
    with_nan = audio.copy()
    with_nan[500] = np.nan
    return {
        "garbage": (b"this is not audio at all" * 40, "not a readable WAV, FLAC or OGG file"),
        "empty": (b"", "empty"),
        "truncated WAV": (wav[: len(wav) // 2], "truncated"),
        "truncated FLAC": (flac[: len(flac) // 2], "not a readable WAV, FLAC or OGG file"),
        "NaN inside a float WAV": (encode(with_nan, rate, "WAV", "FLOAT"), "NaN or Inf"),
    }


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_bad_files_are_refused_by_name_and_the_server_keeps_serving(any_layout_server, bundle, voice, protocol):
    audio, rate = voice
    expected = LocalRuntime(bundle).infer(audio, rate).feature
    good = encode(audio, rate, "FLAC", "PCM_16")
    for case, (data, message) in _bad_files(voice).items():
        with pytest.raises(InferenceServerException, match=message) as refused:
            infer(any_layout_server, protocol, [file_input(protocol, [data])])
        assert "object at 0x" not in str(refused.value), case  # libsndfile's words, not a Python repr
        feature, _ = infer(any_layout_server, protocol, [file_input(protocol, [good])])
        assert np.abs(feature[0] - expected).max() <= FEATURE_ATOL, case


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_both_or_neither_input_form_is_refused(any_layout_server, voice, protocol):
    audio, rate = voice
    both = samples_inputs(protocol, audio, rate) + [file_input(protocol, [encode(audio, rate, "FLAC")])]
    with pytest.raises(InferenceServerException, match="either AUDIO \\+ SAMPLE_RATE or AUDIO_FILE, not both"):
        infer(any_layout_server, protocol, both)
    only_rate = samples_inputs(protocol, audio, rate)[1:]
    with pytest.raises(InferenceServerException, match="no audio"):
        infer(any_layout_server, protocol, only_rate)
    only_audio = samples_inputs(protocol, audio, rate)[:1]
    with pytest.raises(InferenceServerException, match="AUDIO needs SAMPLE_RATE"):
        infer(any_layout_server, protocol, only_audio)
    feature, _ = infer(any_layout_server, protocol, samples_inputs(protocol, audio, rate))
    assert np.isfinite(feature).all()


def _refusals(server) -> dict[str, float]:
    return refusal_counts(scrape(f"http://127.0.0.1:{server.metrics_port}/metrics"), contract.ENSEMBLE)


def test_refusals_are_counted_per_reason(triton_server, voice):
    before = _refusals(triton_server)
    for data, _message in _bad_files(voice).values():
        with pytest.raises(InferenceServerException):
            infer(triton_server, "grpc", [file_input("grpc", [data])])
    after = _refusals(triton_server)
    increase = {reason: after[reason] - before.get(reason, 0.0) for reason in after}
    assert sum(increase.values()) == len(_bad_files(voice))
    assert increase["not_finite"] == 1 and increase["bad_file"] >= 2

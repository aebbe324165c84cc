"""The client: input checks, error types, retries, sync and asyncio over gRPC and HTTP."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import soundfile

from speech2face.engine.client.async_client import AsyncSpeech2FaceClient
from speech2face.engine.client import (FaceResult, InferenceError, InvalidInput, ModelNotFound, RequestTimeout,
                                      RetryPolicy, ServerUnavailable, Speech2FaceClient)
from speech2face.engine.client.audio_inputs import HTTP_MAX_PAYLOAD_BYTES, check_audio_file, inspect_file, prepare_audio
from speech2face.engine.client.errors import classify_error
from speech2face.engine.client.stats import ModelStatistics, parse_statistics
from speech2face.engine import contract
from speech2face.engine.contract.tensors import FEATURE_ATOL
from speech2face.engine.runtime.local_runtime import LocalRuntime

PROTOCOLS = ["grpc", "http"]


def _too_slow(audio: np.ndarray) -> np.ndarray:
    """The longest audio the HTTP client sends (about 64 s at 16 kHz; a larger binary body crashes
    tritonserver 2.51): its upload alone outlasts a 1 ms timeout, even when a loaded machine
    delays the client's timer until after a short request's answer has arrived."""
    samples = HTTP_MAX_PAYLOAD_BYTES // 4
    return np.tile(audio, int(np.ceil(samples / audio.size)))[:samples]


def _times_out(client, audio: np.ndarray, rate: int, tries: int = 5) -> RequestTimeout:
    """The RequestTimeout a 1 ms timeout gives on the slow upload; a loaded machine can delay the
    client's timer past the answer now and then, so a few tries may be needed."""
    for _ in range(tries):
        try:
            client.infer(_too_slow(audio), rate)
        except RequestTimeout as error:
            return error
    raise AssertionError(f"{tries} requests of {HTTP_MAX_PAYLOAD_BYTES} bytes all beat a 1 ms timeout")


def _url(server, protocol):
    return server.grpc_url if protocol == "grpc" else server.http_url


@pytest.fixture(scope="module")
def runtime(bundle):
    return LocalRuntime(bundle)


# ------------------------------------------------------------------------------- no server needed
def test_prepare_audio_converts_to_the_contract():
    stereo = np.stack([np.full(1600, 0.5), np.full(1600, -0.5)], axis=1)
    mono, rate = prepare_audio(stereo, 16000)
    assert mono.dtype == np.float32 and mono.shape == (1600,) and np.allclose(mono, 0) and rate == 16000
    pcm, _ = prepare_audio(np.full(100, 16384, np.int16), np.int64(8000))
    assert pcm.dtype == np.float32 and np.allclose(pcm, 0.5)


@pytest.mark.parametrize("audio, rate, message", [
    (np.zeros(0, np.float32), 16000, "audio is empty"),
    (np.array([0.1, np.nan, 0.2], np.float32), 16000, "NaN or Inf"),
    (np.array([0.1, np.inf], np.float64), 16000, "NaN or Inf"),
    (np.array([1e300, 0.0]), 16000, "sample 0 is too large"),
    (np.zeros((2, 3, 4), np.float32), 16000, "1-D mono or 2-D"),
    (np.zeros((100, 40), np.float32), 16000, "at most 16 channels"),
    (np.zeros(10, np.complex64), 16000, "dtype complex64"),
    (np.zeros(10, np.int8), 16000, "dtype int8"),
    (np.zeros(10, np.float32), 0, "sample rate"),
    (np.zeros(10, np.float32), 4000, "4000 Hz is not supported"),
    (np.zeros(10, np.float32), -16000, "sample rate"),
    (np.zeros(10, np.float32), 16000.5, "sample rate"),
    (np.zeros(10, np.float32), 2**40, "sample rate"),
    (np.zeros(10, np.float32), "16k", "sample rate"),
    (np.zeros(20 * 60 * 8000, np.float32), 8000, "1200 s long; the limit is 600 s"),
])
def test_prepare_audio_refuses_bad_input_naming_the_problem(audio, rate, message):
    with pytest.raises(InvalidInput, match=message):
        prepare_audio(audio, rate)


def test_request_size_limit_is_a_clear_client_error():
    with pytest.raises(InvalidInput, match="request limit is 1 MiB"):
        prepare_audio(np.zeros(300_000, np.float32), 16000, max_request_bytes=2**20)


def test_the_http_client_keeps_binary_bodies_below_what_crashes_tritonserver():
    """Over HTTP a request must stay under MAX_HTTP_BINARY_BODY_BYTES (tritonserver 2.51 dies on
    larger binary bodies): refused before anything is sent, naming gRPC; gRPC takes the same clip."""
    from speech2face.engine.client.core import ClientOptions

    samples = contract.MAX_HTTP_BINARY_BODY_BYTES // 4   # 65 s at 16 kHz
    assert ClientOptions("127.0.0.1:1", "http").max_request_bytes < contract.MAX_HTTP_BINARY_BODY_BYTES
    with Speech2FaceClient("127.0.0.1:1", "http") as client:
        with pytest.raises(InvalidInput, match="over HTTP .*send it over gRPC"):
            client.infer(np.zeros(samples, np.float32), 16000)
    assert ClientOptions("127.0.0.1:1", "grpc").max_request_bytes == contract.MAX_REQUEST_BYTES


def test_typed_errors_are_inference_errors():
    for kind in (InvalidInput, ModelNotFound, ServerUnavailable, RequestTimeout):
        assert issubclass(kind, InferenceError)
    assert issubclass(InvalidInput, ValueError)


def test_classify_error_maps_status_codes():
    from tritonclient.utils import InferenceServerException as E

    def kind(status, message="x"):
        return type(classify_error(E(message, status=status), "h:1", "grpc"))

    assert kind("StatusCode.UNAVAILABLE") is ServerUnavailable
    assert kind("503") is ServerUnavailable
    assert kind("StatusCode.DEADLINE_EXCEEDED") is RequestTimeout
    assert kind("StatusCode.NOT_FOUND") is ModelNotFound and kind("404") is ModelNotFound
    assert kind("StatusCode.INVALID_ARGUMENT") is InvalidInput and kind("400") is InvalidInput
    assert kind("StatusCode.INTERNAL") is InferenceError
    assert type(classify_error(ConnectionRefusedError(111, "refused"), "h:1", "http")) is ServerUnavailable
    assert type(classify_error(TimeoutError("timed out"), "h:1", "http")) is RequestTimeout
    message = str(classify_error(E("[request id: <id_unknown>] bad shape", status="400"), "h:1", "http"))
    assert "request id" not in message and "bad shape" in message and "h:1" in message


def test_retry_backoff_is_exponential_and_bounded():
    policy = RetryPolicy(max_attempts=5, initial_backoff_s=0.1, multiplier=2, max_backoff_s=0.3, jitter=0)
    assert [policy.backoff(a) for a in (1, 2, 3, 4)] == pytest.approx([0.1, 0.2, 0.3, 0.3])
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_statistics_parse_and_delta():
    def payload(count, queue_ns, executions):
        return {"model_stats": [{"name": "voice_encoder", "version": "1", "inference_count": str(count),
                                 "execution_count": str(executions),
                                 "inference_stats": {"success": {"count": str(count), "ns": "900"},
                                                     "queue": {"count": str(count), "ns": str(queue_ns)},
                                                     "compute_infer": {"count": str(count), "ns": "600"}}}]}

    before = parse_statistics(payload(2, 1_000_000, 2))["voice_encoder"]
    after = parse_statistics(payload(10, 5_000_000, 4))["voice_encoder"]
    delta = after.delta(before)
    assert isinstance(delta, ModelStatistics)
    assert delta.success_count == 8 and delta.avg_batch_size == 4.0
    assert delta.avg_queue_ms == pytest.approx(0.5)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dead_server_fails_fast_after_bounded_retries(protocol, voice_like):
    audio, rate = voice_like
    with Speech2FaceClient("127.0.0.1:1", protocol) as client:
        with pytest.raises(ServerUnavailable, match="127.0.0.1:1.*gave up after 4 attempts") as caught:
            client.infer(audio, rate)
    assert caught.value.attempts == 4


def test_garbage_file_is_a_client_side_error(tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x00garbage, not a wave file" * 20)
    with Speech2FaceClient("127.0.0.1:1") as client:   # nothing listens: the file never leaves
        with pytest.raises(InvalidInput, match="garbage.wav: not a readable audio file"):
            client.infer(garbage)
        with pytest.raises(InvalidInput, match="no such file"):
            client.infer(tmp_path / "missing.flac")
        with pytest.raises(InvalidInput, match="needs its sample rate"):
            client.infer(np.zeros(100, np.float32))


def test_unknown_protocol_is_refused():
    with pytest.raises(ValueError, match="protocol"):
        Speech2FaceClient("127.0.0.1:1", "carrier-pigeon")
    with pytest.raises(ValueError, match="send_files"):
        Speech2FaceClient("127.0.0.1:1", send_files="sometimes")


def test_file_checks_read_the_header_only(tmp_path):
    rate = 16000
    soundfile.write(tmp_path / "long.flac", np.zeros(rate * 11, np.float32), rate)
    soundfile.write(tmp_path / "voice.aiff", np.zeros(rate, np.float32), rate)
    long_file = (tmp_path / "long.flac").read_bytes()
    check_audio_file(long_file, "long.flac")     # 11 s is fine by default
    with pytest.raises(InvalidInput, match="long.flac: audio is 11 s long; the limit is 10 s"):
        check_audio_file(long_file, "long.flac", max_seconds=10)
    with pytest.raises(InvalidInput, match="request limit is 0 MiB"):
        check_audio_file(long_file, "long.flac", max_request_bytes=len(long_file) - 1)
    with pytest.raises(InvalidInput, match="AIFF files are not served"):   # not whole: the server has no AIFF
        check_audio_file((tmp_path / "voice.aiff").read_bytes(), "voice.aiff")
    aiff = inspect_file(tmp_path / "voice.aiff")      # so the client decodes it (FFmpeg) and sends samples
    assert not aiff.whole and aiff.rate == rate and aiff.kind.startswith("pcm_")
    assert inspect_file(tmp_path / "long.flac").whole
    with Speech2FaceClient("127.0.0.1:1") as client:
        with pytest.raises(InvalidInput, match="audio file bytes: not a readable audio file"):
            client.infer_file(b"RIFF" + bytes(40))
        with pytest.raises(InvalidInput, match="carries its own sample rate"):
            client.infer(tmp_path / "long.flac", 16000)


# --------------------------------------------------------------------------------- real server
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sync_client_file_array_and_batch(triton_server, runtime, voice_like, tmp_path, protocol):
    audio, rate = voice_like
    soundfile.write(tmp_path / "voice.flac", audio, rate, subtype="PCM_24")
    file_audio, _ = soundfile.read(tmp_path / "voice.flac", dtype="float32")
    noise = (0.05 * np.random.default_rng(3).standard_normal(rate * 2)).astype(np.float32)
    with Speech2FaceClient(_url(triton_server, protocol), protocol) as client:
        assert client.is_ready()
        from_file = client.infer(tmp_path / "voice.flac")
        from_array = client.infer(audio, rate)
        batch = client.infer_batch([(audio, rate), (noise, rate), str(tmp_path / "voice.flac")], max_in_flight=3)
    assert isinstance(from_array, FaceResult) and from_array.attempts == 1 and from_array.latency_s > 0
    assert np.abs(from_file.feature - runtime.infer(file_audio, rate).feature).max() <= FEATURE_ATOL
    expected = runtime.infer(audio, rate)
    assert np.abs(from_array.feature - expected.feature).max() <= FEATURE_ATOL
    assert np.abs(from_array.image.astype(int) - expected.image.astype(int)).max() <= 1
    assert [r.feature.shape for r in batch] == [expected.feature.shape] * 3
    assert np.abs(batch[0].feature - expected.feature).max() <= FEATURE_ATOL
    assert np.abs(batch[1].feature - runtime.infer(noise, rate).feature).max() <= FEATURE_ATOL


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_async_client_matches_in_process(triton_server, runtime, voice_like, protocol):
    audio, rate = voice_like
    clips = [(audio, rate), (audio[: rate], rate), (audio * 0.5, rate)]

    async def main():
        async with AsyncSpeech2FaceClient(_url(triton_server, protocol), protocol) as client:
            assert await client.is_ready()
            one = await client.infer(audio, rate)
            many = await client.infer_batch(clips, max_in_flight=3)
            with pytest.raises(ModelNotFound, match="nope"):
                await client.infer(audio, rate, model="nope")
            with pytest.raises(InvalidInput, match="NaN"):
                await client.infer(np.full(100, np.nan, np.float32), rate)
            stats = await client.statistics("speech2face")
            return one, many, stats

    one, many, stats = asyncio.run(main())
    assert np.abs(one.feature - runtime.infer(audio, rate).feature).max() <= FEATURE_ATOL
    for (a, r), result in zip(clips, many):
        assert np.abs(result.feature - runtime.infer(a, r).feature).max() <= FEATURE_ATOL
    assert stats["speech2face"].success_count >= 4


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("layout, model", [("fused", "speech2face"), ("ensemble", "voice_encoder")])
def test_statistics_show_queue_and_compute(request, voice_like, protocol, layout, model):
    server = request.getfixturevalue("triton_server" if layout == "fused" else "ensemble_server")
    audio, rate = voice_like
    with Speech2FaceClient(_url(server, protocol), protocol) as client:
        before = client.statistics()
        client.infer_batch([(audio, rate)] * 4, max_in_flight=4)
        after = client.statistics()
    forms = {"speech2face", "speech2face_samples", "speech2face_file"}
    expected = forms if layout == "fused" else forms | {"preprocess", "voice_encoder", "face_decoder"}
    assert set(after) == expected
    encoder = after[model].delta(before[model])
    assert encoder.success_count == 4
    assert 1 <= encoder.avg_batch_size <= 4
    assert encoder.avg_compute_ms > 0 and encoder.avg_queue_ms >= 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_timeout_is_request_timeout(triton_server, voice_like, protocol):
    audio, rate = voice_like
    with Speech2FaceClient(_url(triton_server, protocol), protocol, timeout_s=0.001) as client:
        assert "did not answer in time" in str(_times_out(client, audio, rate))
    with Speech2FaceClient(_url(triton_server, protocol), protocol) as client:   # and the server is fine
        assert client.infer(audio, rate).feature.shape[0] > 0


def test_one_sync_client_shared_by_threads(triton_server, voice_like):
    from concurrent.futures import ThreadPoolExecutor

    audio, rate = voice_like
    with Speech2FaceClient(triton_server.http_url, "http") as client, ThreadPoolExecutor(4) as pool:
        features = list(pool.map(lambda _: client.infer(audio, rate).feature, range(8)))
    assert all(np.abs(f - features[0]).max() <= FEATURE_ATOL for f in features)


def test_http_client_recovers_after_a_timeout(triton_server, runtime, voice_like):
    audio, rate = voice_like
    with Speech2FaceClient(triton_server.http_url, "http", timeout_s=0.001) as client:
        _times_out(client, audio, rate)
        client.timeout_s = 60.0   # the same client, next request: a fresh connection, the right answer
        for _ in range(2):
            result = client.infer(audio, rate)
            assert np.abs(result.feature - runtime.infer(audio, rate).feature).max() <= FEATURE_ATOL


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_files_are_sent_whole_or_decoded_here(triton_server, runtime, voice_like, tmp_path, protocol):
    """AUDIO_FILE carries the FLAC itself; "samples" decodes it in the client: both give the file's face."""
    audio, rate = voice_like
    soundfile.write(tmp_path / "voice.flac", audio, rate, subtype="PCM_16")
    decoded, _ = soundfile.read(tmp_path / "voice.flac", dtype="float32")
    expected = runtime.infer(decoded, rate).feature
    url = _url(triton_server, protocol)
    with Speech2FaceClient(url, protocol, send_files="file") as as_file, \
            Speech2FaceClient(url, protocol, send_files="samples") as as_samples:
        sent_whole = as_file.infer_file((tmp_path / "voice.flac").read_bytes())
        decoded_here = as_samples.infer(tmp_path / "voice.flac")
    assert np.abs(sent_whole.feature - expected).max() <= FEATURE_ATOL
    assert np.abs(decoded_here.feature - expected).max() <= FEATURE_ATOL


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_shared_memory_requests_match_in_band_ones(triton_server, runtime, voice_like, protocol):
    audio, rate = voice_like
    longer = np.tile(audio, 4)     # 10 s: needs a larger region than the first clip's
    url = _url(triton_server, protocol)
    with Speech2FaceClient(url, protocol, shared_memory=True) as client:
        results = client.infer_batch([(audio, rate), (longer, rate), (audio * 0.5, rate)], max_in_flight=3)
        regions = client._pool.drain()
    for (clip, r), result in zip([(audio, rate), (longer, rate), (audio * 0.5, rate)], results):
        assert np.abs(result.feature - runtime.infer(clip, r).feature).max() <= FEATURE_ATOL
    assert regions and all(slot.registered for slot in regions)

    async def main():
        async with AsyncSpeech2FaceClient(url, protocol, shared_memory=True) as client:
            return await client.infer_batch([(audio, rate)] * 4, max_in_flight=4)

    for result in asyncio.run(main()):
        assert np.abs(result.feature - runtime.infer(audio, rate).feature).max() <= FEATURE_ATOL
    with Speech2FaceClient(url, protocol) as client:   # every region was unregistered on close
        status = client._client.get_system_shared_memory_status(
            headers=client._restricted_headers(), **({"as_json": True} if protocol == "grpc" else {}))
    assert not (status.get("regions") if isinstance(status, dict) else status)


def test_async_http_client_recovers_after_a_timeout(triton_server, runtime, voice_like):
    audio, rate = voice_like

    async def main():
        async with AsyncSpeech2FaceClient(triton_server.http_url, "http", timeout_s=0.001) as client:
            with pytest.raises(RequestTimeout):
                await client.infer(_too_slow(audio), rate)
            client.timeout_s = 60.0
            return [await client.infer(audio, rate) for _ in range(2)]

    for result in asyncio.run(main()):
        assert np.abs(result.feature - runtime.infer(audio, rate).feature).max() <= FEATURE_ATOL


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_short_and_loud_clips_are_served_with_a_warning(triton_server, runtime, voice_like, tmp_path, protocol):
    """0.5 s (the server repeats it) and samples of 1.5 (served unchanged, not clipped): each answered
    as the in-process runtime answers the same samples, each with one AudioWarning."""
    from speech2face.engine.client import AudioWarning

    audio, rate = voice_like
    short, loud = audio[: rate // 2], audio / np.abs(audio).max() * 1.5
    soundfile.write(tmp_path / "loud.wav", loud, rate, subtype="FLOAT")   # sent whole: its samples are read here
    url = _url(triton_server, protocol)
    with Speech2FaceClient(url, protocol) as client:
        with pytest.warns(AudioWarning, match=r"^audio is 0.5 s long, shorter than 1 s") as short_warned:
            from_short = client.infer(short, rate)
        with pytest.warns(AudioWarning, match=r"samples reach 1.5, outside \[-1, 1\]: served unchanged, not clipped"):
            from_loud = client.infer(loud, rate)
        with pytest.warns(AudioWarning, match=r"loud.wav: samples reach 1.5") as file_warned:
            from_file = client.infer(tmp_path / "loud.wav")
    assert len(short_warned) == 1 and len(file_warned) == 1
    assert np.abs(from_short.feature - runtime.infer(short, rate).feature).max() <= FEATURE_ATOL
    assert np.abs(from_loud.feature - runtime.infer(loud, rate).feature).max() <= FEATURE_ATOL
    assert np.abs(from_file.feature - from_loud.feature).max() <= FEATURE_ATOL

    async def main():
        async with AsyncSpeech2FaceClient(url, protocol) as client:
            with pytest.warns(AudioWarning, match="audio is 0.5 s long"):
                return await client.infer(short, rate)

    assert np.abs(asyncio.run(main()).feature - from_short.feature).max() <= FEATURE_ATOL

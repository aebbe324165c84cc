"""Reliability against the real tritonserver: bad input, crashes, reloads, binding, logs, limits.

Every bad request must get an error that names the problem, and the very next correct request
must still return the right answer (compared with the in-process runtime).
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http

from signals import harmonic_voice
from speech2face.engine import contract
from speech2face.engine.client import (InferenceError, InvalidInput, ModelControlDisabled, ModelNotFound, RetryPolicy,
                                      ServerUnavailable, Speech2FaceClient)
from speech2face.engine.client.errors import classify_error
from speech2face.engine.contract.tensors import FEATURE_ATOL
from speech2face.engine.runtime.local_runtime import LocalRuntime
from speech2face.engine.server.launcher import ServerError, ServerOptions, TritonServer, supported_flags
from speech2face.engine.repository.tuning import repository_models
from speech2face.engine.repository.cpu_repository import write_cpu_repository

PROTOCOLS = ["grpc", "http"]


def _url(server, protocol):
    return server.grpc_url if protocol == "grpc" else server.http_url


@pytest.fixture(scope="module")
def reference(bundle, voice_like_module):
    audio, rate = voice_like_module
    return LocalRuntime(bundle).infer(audio, rate)


@pytest.fixture(scope="module")
def voice_like_module():
    return harmonic_voice()


def _assert_still_correct(url, protocol, voice, reference):
    audio, rate = voice
    with Speech2FaceClient(url, protocol) as client:
        result = client.infer(audio, rate)
    assert np.abs(result.feature - reference.feature).max() <= FEATURE_ATOL
    assert np.abs(result.image.astype(int) - reference.image.astype(int)).max() <= 1


def _raw_request(protocol, url, tensors: dict[str, np.ndarray], model=contract.ENSEMBLE):
    """A request built by hand (wrong dtype, rank, missing input): what a buggy client sends."""
    module = triton_grpc if protocol == "grpc" else triton_http
    client = module.InferenceServerClient(url)
    inputs = []
    for name, array in tensors.items():
        dtype = {"float32": "FP32", "int16": "INT16", "int32": "INT32", "float64": "FP64"}[array.dtype.name]
        tensor = module.InferInput(name, list(array.shape), dtype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    try:
        client.infer(model, inputs)
    except Exception as error:  # noqa: BLE001 - classified like the client does
        return classify_error(error, url, protocol)
    finally:
        client.close()
    return None


# ------------------------------------------------------------------------------------ bad input
# (name, audio builder, rate, client-side message, server-side message). The client checks first;
# with validate=False the same request reaches the server, which must refuse it itself.
SECONDS_20_MIN = 20 * 60
BAD_AUDIO = [
    ("empty", lambda a: a[:0], 16000, "audio is empty", "audio is empty"),
    ("nan", lambda a: np.where(np.arange(a.size) == 7, np.nan, a).astype(np.float32), 16000,
     "NaN or Inf", "NaN or Inf"),
    ("inf", lambda a: np.where(np.arange(a.size) == 9, np.inf, a).astype(np.float32), 16000,
     "NaN or Inf", "NaN or Inf"),
    ("rate-zero", lambda a: a, 0, "sample rate", "sample rate"),
    ("rate-negative", lambda a: a, -16000, "sample rate", "sample rate"),
    ("twenty-minutes", lambda a: np.resize(a, SECONDS_20_MIN * 8000), 8000,
     "1200 s long; the limit is 600 s", r"1200 s long|limit|too long"),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", BAD_AUDIO, ids=[c[0] for c in BAD_AUDIO])
def test_bad_audio_is_refused_by_client_and_server(triton_server, voice_like_module, reference, protocol, case):
    _name, build, rate, client_message, server_message = case
    audio = build(voice_like_module[0])
    url = _url(triton_server, protocol)
    with Speech2FaceClient(url, protocol) as client:
        with pytest.raises(InvalidInput, match=client_message):
            client.infer(audio, rate)
    with Speech2FaceClient(url, protocol, validate=False) as client:
        with pytest.raises(InferenceError, match=server_message) as caught:
            client.infer(audio, rate)
    assert not isinstance(caught.value, (ServerUnavailable, ModelNotFound))
    _assert_still_correct(url, protocol, voice_like_module, reference)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_absurd_sample_rate_is_refused_naming_it(triton_server, voice_like_module, reference, protocol):
    audio, _ = voice_like_module
    url = _url(triton_server, protocol)
    with Speech2FaceClient(url, protocol) as client:   # the client cannot know the range: the server says
        with pytest.raises(InferenceError, match="sample rate 1000000000 Hz"):
            client.infer(audio, 10**9)
    _assert_still_correct(url, protocol, voice_like_module, reference)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_malformed_requests_are_refused_naming_the_problem(triton_server, voice_like_module, reference, protocol):
    audio, rate = voice_like_module
    url = _url(triton_server, protocol)
    rate_tensor = np.array([[rate]], np.int32)
    cases = [
        ({"AUDIO": (audio * 32767).astype(np.int16).reshape(1, -1), "SAMPLE_RATE": rate_tensor}, "INT16.*FP32"),
        ({"AUDIO": audio.reshape(1, 1, -1), "SAMPLE_RATE": rate_tensor}, "unexpected shape for input 'AUDIO'"),
        ({"AUDIO": audio.reshape(1, -1)}, r"AUDIO needs SAMPLE_RATE"),
        ({"AUDIO": audio.reshape(1, -1), "SAMPLE_RATE": rate_tensor.astype(np.float32)}, "SAMPLE_RATE.*INT32"),
    ]
    for tensors, message in cases:
        error = _raw_request(protocol, url, tensors)
        assert isinstance(error, InvalidInput), error
        assert re.search(message, str(error)), str(error)
        _assert_still_correct(url, protocol, voice_like_module, reference)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unknown_model_is_named(triton_server, voice_like_module, reference, protocol):
    audio, rate = voice_like_module
    url = _url(triton_server, protocol)
    with Speech2FaceClient(url, protocol) as client:
        with pytest.raises(ModelNotFound, match="'no_such_model'"):
            client.infer(audio, rate, model="no_such_model")
    _assert_still_correct(url, protocol, voice_like_module, reference)


def test_int16_and_stereo_arrays_are_converted_not_refused(triton_server, bundle, voice_like_module):
    audio, rate = voice_like_module
    pcm = np.round(audio * 32767).astype(np.int16)
    stereo = np.stack([audio, audio], axis=1)
    with Speech2FaceClient(triton_server.grpc_url) as client:
        served_pcm = client.infer(pcm, rate)
        served_stereo = client.infer(stereo, rate)
    runtime = LocalRuntime(bundle)
    assert np.abs(served_pcm.feature - runtime.infer(pcm.astype(np.float32) / 32768, rate).feature).max() <= FEATURE_ATOL
    assert np.abs(served_stereo.feature - runtime.infer(audio, rate).feature).max() <= FEATURE_ATOL


def test_garbage_file_never_reaches_the_server(triton_server, tmp_path, voice_like_module, reference):
    garbage = tmp_path / "voice.ogg"
    garbage.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    with Speech2FaceClient(triton_server.grpc_url) as client:
        before = client.statistics(contract.ENSEMBLE)[contract.ENSEMBLE]
        with pytest.raises(InvalidInput, match="voice.ogg: not a readable audio file"):
            client.infer(garbage)
        after = client.statistics(contract.ENSEMBLE)[contract.ENSEMBLE]
    assert after.delta(before).success_count + after.delta(before).fail_count == 0
    _assert_still_correct(triton_server.grpc_url, "grpc", voice_like_module, reference)


# --------------------------------------------------------------------------- binding, control, logs
# 127.0.0.1, ::ffff:127.0.0.1 (gRPC listens on an IPv4-mapped socket) and ::1, as /proc/net writes them.
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def _listening_addresses(port: int) -> set[str]:
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, _remote, state = line.split()[1:4]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:   # 0A: LISTEN
                addresses.add(address)
    return addresses


def test_launcher_binds_loopback_unless_told_otherwise(triton_server, cpu_repository):
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs /proc/net/tcp (Linux)")
    for port in (triton_server.grpc_port, triton_server.http_port, triton_server.metrics_port):
        addresses = _listening_addresses(port)
        assert addresses, f"nothing listens on {port}"
        assert addresses <= LOOPBACK, f"port {port} listens on {addresses}, not only loopback"
    everywhere = TritonServer(ServerOptions(model_repository=cpu_repository, host="0.0.0.0")).command()
    assert "--grpc-address=0.0.0.0" in everywhere and "--http-address=0.0.0.0" in everywhere
    default = TritonServer(ServerOptions(model_repository=cpu_repository)).command()
    assert {"--grpc-address=127.0.0.1", "--http-address=127.0.0.1", "--metrics-address=127.0.0.1",
            "--model-control-mode=none"} <= set(default)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_model_control_is_off_by_default(triton_server, voice_like_module, reference, protocol):
    url = _url(triton_server, protocol)
    with Speech2FaceClient(url, protocol, headers=triton_server.admin_headers) as client:
        with pytest.raises(ModelControlDisabled, match="model control"):
            client.unload_model(contract.ENSEMBLE)
        with pytest.raises(ModelControlDisabled):
            client.load_model(contract.VOICE_ENCODER)
        assert client.is_ready()
    _assert_still_correct(url, protocol, voice_like_module, reference)


def test_request_size_limit(triton_server, cpu_repository, voice_like_module):
    audio, rate = voice_like_module
    with Speech2FaceClient(triton_server.grpc_url, max_request_bytes=64 * 1024) as client:
        with pytest.raises(InvalidInput, match="request limit is 0 MiB|request limit"):
            client.infer(np.resize(audio, 20_000), rate)          # 80 kB > 64 kB, refused before sending
        assert client.infer(audio[:8000], rate).feature.size      # 32 kB passes
    options = ServerOptions(model_repository=cpu_repository, http_max_input_bytes=1 << 20)
    if "--http-max-input-size" in supported_flags():
        assert "--http-max-input-size=1048576" in TritonServer(options).command()
    else:   # this tritonserver cannot enforce it: asking for it must fail loudly, not be ignored
        with pytest.raises(ServerError, match="no --http-max-input-size"):
            TritonServer(options).command()


# ------------------------------------------------------------------------- a server of our own
@pytest.fixture(scope="module", params=["fused", "ensemble"])
def explicit_server(request, bundle, tmp_path_factory):
    """Model control on (all models loaded at start), verbose logging: for reloads and the log check.
    A repository of its own per layout, since the reload test touches its configs."""
    repository = write_cpu_repository(bundle, tmp_path_factory.mktemp("explicit") / "repo", layout=request.param)
    server = TritonServer(ServerOptions(model_repository=repository, model_control="explicit",
                                        log_verbose=1)).start()
    server.repository = repository
    yield server
    server.stop()


def _load(url: str, clip, reference, stop: threading.Event, results: dict, protocol="grpc"):
    audio, rate = clip
    with Speech2FaceClient(url, protocol, timeout_s=30, retry=RetryPolicy(max_attempts=1)) as client:
        while not stop.is_set():
            try:
                result = client.infer(audio, rate)
            except InferenceError as error:
                results.setdefault("errors", []).append(error)
                continue
            ok = np.abs(result.feature - reference.feature).max() <= FEATURE_ATOL
            results["ok" if ok else "wrong"] = results.get("ok" if ok else "wrong", 0) + 1


@pytest.mark.timeout(180)
def test_reload_under_load_loses_no_request(explicit_server, voice_like_module, reference):
    stop, results = threading.Event(), {}
    workers = [threading.Thread(target=_load, args=(_url(explicit_server, protocol), voice_like_module, reference,
                                                    stop, results, protocol))
               for protocol in ("grpc", "grpc", "http")]
    for w in workers:
        w.start()
    try:
        time.sleep(1.0)
        with Speech2FaceClient(explicit_server.grpc_url, headers=explicit_server.admin_headers) as control:
            for name in repository_models(explicit_server.repository):
                # Touching the config makes Triton really reload (an unchanged model is skipped).
                config = explicit_server.repository / name / "config.pbtxt"
                config.write_text(config.read_text())
                served_before = results.get("ok", 0)
                control.load_model(name)
                deadline = time.monotonic() + 20
                while results.get("ok", 0) < served_before + 3 and time.monotonic() < deadline:
                    time.sleep(0.1)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=60)
    assert not any(w.is_alive() for w in workers)
    errors = results.get("errors", [])
    assert not errors and results.get("wrong", 0) == 0, [str(e) for e in errors[:3]]
    assert results.get("ok", 0) >= 9
    log = explicit_server.log_path.read_text(errors="replace")
    for name in repository_models(explicit_server.repository):   # the reloads really happened
        assert len(re.findall(rf"successfully loaded '{name}'", log)) >= 2, name


def test_no_audio_content_in_logs(explicit_server, voice_like_module):
    marker = np.float32(0.123456789)
    audio = np.full(16000, marker, np.float32)
    audio[::2] = np.float32(-0.987654321)
    with Speech2FaceClient(explicit_server.grpc_url, validate=False) as client:
        client.infer(audio, 16000)
        bad = audio.copy()
        bad[3] = np.nan
        with pytest.raises(InferenceError, match="NaN"):
            client.infer(bad, 16000)
    with Speech2FaceClient(explicit_server.http_url, "http") as client:
        client.infer(audio, 16000)
    # Without each line's timestamp: "15:37:40.987651" holds "0.98765" by chance, not by leaking audio.
    log = re.sub(rb"(?m)^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ ", b"", explicit_server.log_path.read_bytes())
    assert b"infer" in log.lower()           # verbose logging is on and saw the requests ...
    for needle in (b"0.12345", b"0.98765", b"-0.98765", marker.tobytes(), np.float32(-0.987654321).tobytes()):
        assert needle not in log             # ... and never wrote the samples


@pytest.mark.timeout(240)
def test_killed_server_fails_every_client_and_a_restarted_one_serves(cpu_repository, voice_like_module, reference):
    server = TritonServer(ServerOptions(model_repository=cpu_repository)).start()
    stop, results = threading.Event(), {}

    def worker(name, protocol):
        url = _url(server, protocol)
        audio, rate = voice_like_module
        with Speech2FaceClient(url, protocol, timeout_s=30) as client:   # default retries: ~0.35 s of backoff
            while not stop.is_set():
                try:
                    client.infer(audio, rate)
                    results[name] = results.get(name, 0) + 1
                except InferenceError as error:
                    results.setdefault("errors", []).append(error)
                    break

    workers = [threading.Thread(target=worker, args=(f"{p}{i}", p)) for i, p in
               enumerate(["grpc", "grpc", "http", "http"])]
    survivor = Speech2FaceClient(server.grpc_url)   # created before the crash, used after the restart
    try:
        survivor.infer(*voice_like_module)
        for w in workers:
            w.start()
        time.sleep(1.5)
        server.kill()
        for w in workers:
            w.join(timeout=30)
        hung = [w.name for w in workers if w.is_alive()]
        stop.set()
        assert not hung, f"clients hung after the server died: {hung}"
        errors = results.get("errors", [])
        assert len(errors) == len(workers)
        assert all(isinstance(e, ServerUnavailable) for e in errors), [str(e) for e in errors]
        assert all("unavailable" in str(e) for e in errors)

        # A restarted server on the same ports serves again, to clients created before the crash too.
        restarted = TritonServer(ServerOptions(model_repository=cpu_repository, grpc_port=server.grpc_port,
                                               http_port=server.http_port, metrics_port=server.metrics_port))
        with restarted:
            result = survivor.infer(*voice_like_module)
            assert np.abs(result.feature - reference.feature).max() <= FEATURE_ATOL
            _assert_still_correct(restarted.grpc_url, "grpc", voice_like_module, reference)
            _assert_still_correct(restarted.http_url, "http", voice_like_module, reference)
    finally:
        stop.set()
        survivor.close()
        server.stop()

"""Attack catalogue against the real, supervised server (what `s2f serve` runs), each attack followed
by a good request that must get the right answer (docs/SECURITY.md lists the same cases).

Requests Triton 2.51 itself mishandles (a JSON shape of 2^63-1 aborts it; a [1, 2^62] shape with
0 bytes kills the model's stub) cannot be refused by our code: for those the test proves the
supervisor's restart bounds the outage (a good answer within OUTAGE_BOUND_S).
"""

from __future__ import annotations

import json
import re
import struct
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from speech2face.engine import contract
from speech2face.engine.server import leftovers
from speech2face.engine.contract.admin_key import admin_headers
from speech2face.engine.client import InferenceError, Speech2FaceClient
from speech2face.engine.contract.tensors import FEATURE_ATOL
from speech2face.engine.server.launcher import ServerOptions
from speech2face.engine.server.supervisor import Supervisor, SupervisorPolicy

OUTAGE_BOUND_S = 60.0   # the goal: no request causes a longer outage
MODEL = contract.ENSEMBLE


@pytest.fixture(scope="module")
def supervised(cpu_repository):
    """One supervised server for the module (fast checks, so outages are short)."""
    policy = SupervisorPolicy(check_interval_s=1.0, failures_to_restart=2, drain_s=5.0)
    messages: list[str] = []
    supervisor = Supervisor(ServerOptions(model_repository=cpu_repository), policy, log=messages.append)
    supervisor.start()
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    supervisor.messages, supervisor.thread = messages, thread   # for _good_answer's failure report
    yield supervisor
    supervisor.close()
    thread.join(timeout=30)


def _http(supervised) -> str:
    return f"127.0.0.1:{supervised.options.http_port}"


def _grpc(supervised) -> str:
    return f"127.0.0.1:{supervised.options.grpc_port}"


def _good_answer(supervised, voice, reference, within_s: float = 15.0) -> float:
    """Seconds until a good request gets the right answer (over both protocols)."""
    start = time.monotonic()
    while True:
        try:
            for url, protocol in ((_grpc(supervised), "grpc"), (_http(supervised), "http")):
                with Speech2FaceClient(url, protocol, timeout_s=10) as client:
                    result = client.infer(*voice)
                assert np.abs(result.feature - reference.feature).max() <= FEATURE_ATOL
                assert np.abs(result.image.astype(int) - reference.image.astype(int)).max() <= 1
            return time.monotonic() - start
        except InferenceError as error:
            if time.monotonic() - start > within_s:
                raise AssertionError(f"no good answer in {within_s:g} s: {error}\n{_report(supervised)}") from error
            time.sleep(0.5)


def _report(supervised) -> str:
    """What the supervisor did and what the server logged: a failure on CI must say why."""
    server = supervised.server
    return "\n".join([
        f"supervisor thread alive: {supervised.thread.is_alive()}; restarts: {len(supervised.restarts)}; "
        f"server pid {server.pid if server else None}, stubs {server.python_stubs() if server else None}",
        "supervisor log:", *supervised.messages[-20:],
        "server log tail:", server.log_tail(15) if server else "(no server)"])


def _post(url: str, body: bytes, headers: dict | None = None, timeout: float = 30) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:   # the server died mid-request
        return 0, str(error)


# ------------------------------------------------- Triton defects: the outage must stay bounded
def test_json_shape_of_2_63_aborts_triton_and_the_supervisor_restarts_it(supervised, voice, reference):
    restarts = len(supervised.restarts)
    body = json.dumps({"inputs": [
        {"name": "AUDIO", "shape": [1, 9223372036854775807], "datatype": "FP32", "data": [1, 2, 3]},
        {"name": "SAMPLE_RATE", "shape": [1, 1], "datatype": "INT32", "data": [16000]}]}).encode()
    status, _ = _post(f"http://{_http(supervised)}/v2/models/{MODEL}/infer", body)
    assert status != 200
    outage = _good_answer(supervised, voice, reference, within_s=OUTAGE_BOUND_S)
    print(f"good answer {outage:.1f} s after the aborting request")
    assert len(supervised.restarts) > restarts   # it was a real abort, and a real restart


def binary_http_body(body_bytes: int) -> tuple[bytes, dict]:
    """A legal binary-extension request (AUDIO then SAMPLE_RATE) whose body is `body_bytes` long."""
    samples = 16000
    header = json.dumps({"inputs": [
        {"name": "AUDIO", "shape": [1, samples], "datatype": "FP32", "parameters": {"binary_data_size": 4 * samples}},
        {"name": "SAMPLE_RATE", "shape": [1, 1], "datatype": "INT32", "parameters": {"binary_data_size": 4}}]})
    header += " " * (body_bytes - len(header) - 4 * samples - 4)   # Triton accepts trailing spaces
    body = header.encode() + np.zeros(samples, np.float32).tobytes() + struct.pack("<i", 16000)
    return body, {"Inference-Header-Content-Length": str(len(header))}


def test_a_binary_http_body_of_4_mb_kills_triton_and_the_supervisor_restarts_it(supervised, voice, reference):
    """tritonserver 2.51 dies (SIGSEGV) on a binary HTTP body of MAX_HTTP_BINARY_BODY_BYTES + 1
    bytes, whatever its tensors (here 1 s of audio and a padded header); one byte less is answered."""
    body, headers = binary_http_body(contract.MAX_HTTP_BINARY_BODY_BYTES)
    status, _ = _post(f"http://{_http(supervised)}/v2/models/{MODEL}/infer", body, headers)
    assert status == 200
    restarts = len(supervised.restarts)
    body, headers = binary_http_body(contract.MAX_HTTP_BINARY_BODY_BYTES + 1)
    status, _ = _post(f"http://{_http(supervised)}/v2/models/{MODEL}/infer", body, headers)
    assert status != 200
    outage = _good_answer(supervised, voice, reference, within_s=OUTAGE_BOUND_S)
    print(f"good answer {outage:.1f} s after the crashing binary HTTP body")
    assert len(supervised.restarts) > restarts   # a real crash, and a real restart


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_any_number_of_aborts_still_ends_in_a_good_answer_within_60_s(supervised, voice, reference):
    """Twelve aborting requests, each sent as soon as the server answers again (the attack that
    used to end supervision after ten restarts): every time a good answer follows within 60 s."""
    body = json.dumps({"inputs": [
        {"name": "AUDIO", "shape": [1, 9223372036854775807], "datatype": "FP32", "data": [1, 2, 3]},
        {"name": "SAMPLE_RATE", "shape": [1, 1], "datatype": "INT32", "data": [16000]}]}).encode()
    outages = []
    for _ in range(12):
        _post(f"http://{_http(supervised)}/v2/models/{MODEL}/infer", body)
        outages.append(_good_answer(supervised, voice, reference, within_s=OUTAGE_BOUND_S))
    print("good answer after each abort (s):", " ".join(f"{o:.1f}" for o in outages))
    assert len(outages) == 12


def _zero_byte_giant_grpc(supervised):
    audio = triton_grpc.InferInput("AUDIO", [1, 4], "FP32")
    audio.set_data_from_numpy(np.zeros((1, 4), np.float32))
    audio._input.shape[:] = [1, 2**62]   # 4 * 2^62 wraps to 0 bytes: passes Triton's size check
    audio._raw_content = b""
    rate = triton_grpc.InferInput("SAMPLE_RATE", [1, 1], "INT32")
    rate.set_data_from_numpy(np.array([[16000]], np.int32))
    with pytest.raises(InferenceServerException):
        triton_grpc.InferenceServerClient(_grpc(supervised)).infer(MODEL, [audio, rate])


def _zero_byte_giant_http_binary(supervised):
    header = json.dumps({"inputs": [
        {"name": "AUDIO", "shape": [1, 2**62], "datatype": "FP32", "parameters": {"binary_data_size": 0}},
        {"name": "SAMPLE_RATE", "shape": [1, 1], "datatype": "INT32", "parameters": {"binary_data_size": 4}}]}).encode()
    status, _ = _post(f"http://{_http(supervised)}/v2/models/{MODEL}/infer", header + struct.pack("<i", 16000),
                      {"Inference-Header-Content-Length": str(len(header)),
                       "Content-Type": "application/octet-stream"})
    assert status != 200


@pytest.mark.parametrize("attack", [_zero_byte_giant_grpc, _zero_byte_giant_http_binary], ids=["grpc", "http"])
def test_zero_byte_giant_shape_kills_the_stub_and_the_supervisor_restarts_it(supervised, voice, reference, attack):
    attack(supervised)
    outage = _good_answer(supervised, voice, reference, within_s=OUTAGE_BOUND_S)
    print(f"good answer {outage:.1f} s after the stub-killing request")


# ---------------------------------------------------------- restricted APIs: refused without the key
# (path, what an attacker sends, a harmless call with the key)
HTTP_ADMIN_CALLS = {
    "shm register": ("/v2/systemsharedmemory/region/evil/register",
                     {"key": "/triton_python_backend_shm_region_x", "offset": 0, "byte_size": 64}, None),
    "logging": ("/v2/logging", {"log_verbose_level": 5, "log_error": False}, {"log_verbose_level": 0}),
    "trace": ("/v2/trace/setting", {"trace_level": ["TIMESTAMPS"], "trace_rate": "1"}, {"trace_rate": "1000"}),
    "repository": ("/v2/repository/index", {}, {}),
}


@pytest.mark.parametrize("api", sorted(HTTP_ADMIN_CALLS))
def test_http_admin_apis_need_the_key(supervised, voice, reference, api):
    path, attack, harmless = HTTP_ADMIN_CALLS[api]
    url = f"http://{_http(supervised)}{path}"
    status, text = _post(url, json.dumps(attack).encode())
    assert status == 403 and "restricted" in text, (status, text)
    if harmless is not None:   # with the key the call is served (a foreign shm region is not registered)
        status, text = _post(url, json.dumps(harmless).encode(), admin_headers("http"))
        assert status == 200, (status, text)
    _good_answer(supervised, voice, reference)


def test_grpc_admin_apis_need_the_key(supervised, voice, reference):
    client = triton_grpc.InferenceServerClient(_grpc(supervised))
    calls = {
        "shm register": lambda h: client.register_system_shared_memory(
            "evil", "/triton_python_backend_shm_region_x", 64, headers=h),
        "logging": lambda h: client.update_log_settings({"log_verbose_level": 0}, headers=h),
        "trace": lambda h: client.get_trace_settings(headers=h),
        "repository": lambda h: client.get_model_repository_index(headers=h),
    }
    for name, call in calls.items():
        with pytest.raises(InferenceServerException, match="restricted"):
            call(None)
        if name != "shm register":
            call(admin_headers("grpc"))
    _good_answer(supervised, voice, reference)


# ------------------------------------------------------------------------ bad audio, clear refusals
def _refusal(supervised, audio, rate) -> str:
    with Speech2FaceClient(_grpc(supervised), validate=False, timeout_s=60) as client:
        with pytest.raises(InferenceError) as caught:
            client.infer(audio, rate)
    return str(caught.value)


def _refusals_counted(supervised) -> dict[str, float]:
    url = f"http://127.0.0.1:{supervised.options.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    found = re.findall(r'^s2f_refusals_total\{([^}]*)\} ([0-9.e+]+)$', text, flags=re.MULTILINE)
    counts: dict[str, float] = {}
    for labels, value in found:
        reason = re.search(r'reason="([^"]+)"', labels).group(1)
        counts[reason] = counts.get(reason, 0.0) + float(value)
    return counts


@pytest.mark.parametrize("sign", [1, -1])
def test_float32_overflowing_audio_is_refused_not_answered_black(supervised, voice, reference, sign):
    before = _refusals_counted(supervised)
    audio = np.full(16000, sign * 3e38, np.float32)
    assert "too large" in _refusal(supervised, audio, 16000)
    after = _refusals_counted(supervised)
    print(f"refusals counted before {before}, after {after}")
    if after or before:   # the served model counts refusals per reason
        assert after.get("overflow", 0) == before.get("overflow", 0) + 1
    _good_answer(supervised, voice, reference)


def test_one_sample_over_the_limit_says_so(supervised, voice, reference):
    message = _refusal(supervised, np.zeros(600 * 8000 + 1, np.float32), 8000)
    assert "600.0001 s long; the limit is 600 s" in message and "4800001" in message, message
    _good_answer(supervised, voice, reference)


def test_bad_rate_is_named(supervised, voice, reference):
    assert "4000 Hz is not supported" in _refusal(supervised, voice[0], 4000)
    _good_answer(supervised, voice, reference)


# ------------------------------------------------------------------------------- private memory
def test_shared_memory_regions_are_owner_only(supervised, voice, reference):
    _good_answer(supervised, voice, reference)   # request audio has passed through the regions
    regions = list(leftovers.SHM_DIR.glob(supervised.server._shm_prefix + "*"))
    assert regions, "the Python backend created no region under this server's prefix"
    for region in regions:
        assert region.stat().st_mode & 0o777 == 0o600, (region, oct(region.stat().st_mode))

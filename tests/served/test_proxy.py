"""`s2f serve --proxy`: HAProxy on the public ports in front of the real tritonserver
(engine/server/proxy.py). Answers through it equal the in-process runtime's; what it refuses never
reaches Triton (the body that would crash it included); it is restarted when it dies and dies
with `s2f serve`. The floods it bounds are measured in tests/served/test_floods.py (slow).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from speech2face.engine.client import Speech2FaceClient
from speech2face.engine.contract import MAX_HTTP_BINARY_BODY_BYTES, MAX_REQUEST_BYTES
from speech2face.engine.contract.tensors import FEATURE_ATOL
from speech2face.engine.server.launcher import free_port, live_children

START_S = 120


def _start(repository, *extra: str) -> tuple[subprocess.Popen, dict]:
    ports = {name: free_port() for name in ("grpc", "http", "metrics", "ready")}
    process = subprocess.Popen(
        [sys.executable, "-m", "speech2face.engine.cli.main", "serve", "--proxy", "--repository", str(repository),
         "--grpc-port", str(ports["grpc"]), "--http-port", str(ports["http"]), "--metrics-port",
         str(ports["metrics"]), "--readiness-port", str(ports["ready"]), "--check-interval", "1", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + START_S
    for line in process.stdout:
        if "speech2face serving" in line:
            ports["serve_pid"] = process.pid
            ports["haproxy_pid"] = int(re.search(r"HAProxy pid (\d+)", line).group(1))
            ports["triton_http"] = re.search(r"tritonserver on ([\d.]+:\d+)", line).group(1)
            return process, ports
        if time.monotonic() > deadline:
            break
    process.kill()
    raise AssertionError(f"s2f serve --proxy did not start: {process.stdout.read()[-3000:]}")


@pytest.fixture(scope="module")
def proxied(haproxy, cpu_repository):
    process, ports = _start(cpu_repository)
    yield ports
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)


def _answer(url: str, protocol: str, voice, timeout_s: float = 20.0):
    with Speech2FaceClient(url, protocol, timeout_s=timeout_s) as client:
        return client.infer(*voice)


def _status(url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None) -> int:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_answers_through_the_proxy_equal_the_in_process_runtime(proxied, voice, reference, protocol):
    result = _answer(f"127.0.0.1:{proxied[protocol]}", protocol, voice)
    assert np.abs(result.feature - reference.feature).max() <= FEATURE_ATOL   # the served tolerance
    assert np.abs(result.image.astype(int) - reference.image.astype(int)).max() <= 1


def test_tritonserver_listens_on_private_ports_only(proxied):
    assert proxied["triton_http"].startswith("127.0.0.1:")
    assert int(proxied["triton_http"].rsplit(":", 1)[1]) not in (proxied["http"], proxied["grpc"])


def test_admin_apis_and_oversized_requests_stop_at_the_proxy(proxied):
    http = f"http://127.0.0.1:{proxied['http']}"
    assert _status(f"{http}/v2/repository/index", "POST", b"{}") == 403
    assert _status(f"{http}/v2/logging") == 403
    # The size is refused from the header alone: nothing of this body is ever sent.
    oversized = {"Content-Length": str(MAX_REQUEST_BYTES + 1), "Content-Type": "application/json"}
    request = urllib.request.Request(f"{http}/v2/models/speech2face/infer", method="POST", headers=oversized)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 413
    with triton_grpc.InferenceServerClient(f"127.0.0.1:{proxied['grpc']}") as client:
        with pytest.raises(InferenceServerException, match="not served through this proxy"):
            client.get_model_repository_index()


def test_a_binary_http_body_that_would_crash_triton_stops_at_the_proxy(proxied, voice, reference):
    """The body that kills tritonserver 2.51 (tests/served/test_attacks.py) gets 413 with the reason,
    and the same server answers on."""
    from test_attacks import binary_http_body

    import http.client

    pid = _tritonserver_pid(proxied)
    body, headers = binary_http_body(MAX_HTTP_BINARY_BODY_BYTES + 1)
    # The proxy answers from the headers and closes: send them, then read the answer.
    connection = http.client.HTTPConnection("127.0.0.1", proxied["http"], timeout=30)
    connection.putrequest("POST", "/v2/models/speech2face/infer")
    for name, value in {**headers, "Content-Length": str(len(body))}.items():
        connection.putheader(name, value)
    connection.endheaders()
    answer = connection.getresponse()
    assert answer.status == 413
    assert b"send larger ones over gRPC" in answer.read()
    connection.close()
    result = _answer(f"127.0.0.1:{proxied['http']}", "http", voice)
    assert np.abs(result.feature - reference.feature).max() <= FEATURE_ATOL
    assert _tritonserver_pid(proxied) == pid


def _tritonserver_pid(proxied) -> int:
    return next(pid for pid, name in live_children(proxied["serve_pid"]).items() if name == "tritonserver")


def test_a_killed_haproxy_is_started_again(haproxy, cpu_repository, voice, reference):
    process, ports = _start(cpu_repository)
    try:
        os.kill(ports["haproxy_pid"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            try:
                result = _answer(f"127.0.0.1:{ports['http']}", "http", voice, timeout_s=5)
                break
            except Exception:  # noqa: BLE001 - not answering yet
                assert time.monotonic() < deadline, "no answer 30 s after haproxy was killed"
                time.sleep(0.5)
        assert np.abs(result.feature - reference.feature).max() <= FEATURE_ATOL
        # kill -9 of s2f serve takes haproxy (and tritonserver) with it.
        children = live_children(process.pid)
        process.kill()
        process.wait()
        deadline = time.monotonic() + 10
        while any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in children):
            assert time.monotonic() < deadline, f"left running after kill -9 of s2f serve: {children}"
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in "ZX"

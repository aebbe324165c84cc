"""GET /ready means "answers now": 503 while the model cannot answer a canary in time, although
Triton's /v2/health/ready says 200 (the model is loaded); 200 again once it answers."""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request

import pytest

from speech2face.engine.repository.cpu_repository import write_cpu_repository
from speech2face.engine.server.launcher import ServerOptions, TritonServer
from speech2face.engine.server.readiness import Readiness


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as error:
        return error.code


def _wait_for(url: str, status: int, within_s: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < within_s:
        if _status(url) == status:
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer {status} within {within_s} s (last {_status(url)})")


@pytest.fixture
def served(bundle, tmp_path):
    repository = write_cpu_repository(bundle, tmp_path / "repo")
    with TritonServer(ServerOptions(model_repository=repository)) as server:
        readiness = Readiness(lambda: server.http_url, "127.0.0.1", 0, interval_s=0.5, budget_s=1.0).start()
        try:
            yield server, f"http://127.0.0.1:{readiness.port}/ready"
        finally:
            readiness.close()


def test_ready_follows_the_canary_not_the_loaded_model(served):
    server, ready = served
    _wait_for(ready, 200, within_s=10)
    stubs = server.python_stubs()
    for pid in stubs:                       # every instance stops answering (as behind a flood)
        os.kill(pid, signal.SIGSTOP)
    try:
        _wait_for(ready, 503, within_s=5)
        assert _status(f"http://{server.http_url}/v2/health/ready") == 200   # Triton: still "loaded"
    finally:
        for pid in stubs:
            os.kill(pid, signal.SIGCONT)
    _wait_for(ready, 200, within_s=10)


def test_not_ready_names_the_reason_and_other_paths_are_404(served):
    server, ready = served
    readiness = Readiness(lambda: None, "127.0.0.1", 0, interval_s=0.2).start()   # a server restarting
    try:
        url = f"http://127.0.0.1:{readiness.port}"
        _wait_for(f"{url}/ready", 503, within_s=5)
        try:
            urllib.request.urlopen(f"{url}/ready", timeout=5)
        except urllib.error.HTTPError as error:
            assert b"restarting" in error.read()
        assert _status(f"{url}/metrics") == 404
    finally:
        readiness.close()

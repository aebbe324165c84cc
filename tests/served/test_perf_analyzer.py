"""Triton's perf_analyzer against the real server: `s2f perf-data`'s files feed the per-form models over
gRPC, HTTP and system shared memory, the last with the admin key passed by -H (a wrong key is refused).
Skipped where `make perf-analyzer` has not installed perf_analyzer (.venv-perf, or $S2F_PERF_ANALYZER)."""

from __future__ import annotations

import pytest
import tritonclient.grpc as grpcclient

from speech2face.benchmarks.loadgen.perf_analyzer import find_perf_analyzer, measure
from speech2face.benchmarks.loadgen.perf_data import write_perf_data
from speech2face.engine import contract
from speech2face.engine.runtime.builtin import SAMPLE_VOICE

BINARY = find_perf_analyzer()
pytestmark = pytest.mark.skipif(BINARY is None, reason="no perf_analyzer: `make perf-analyzer` installs it into "
                                                        ".venv-perf (or set S2F_PERF_ANALYZER to the binary)")
# Short windows and a loose stability bound: this checks that every path works, not its figures.
QUICK = {"window_ms": 500, "stability_percent": 100, "timeout_s": 60}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_perf_data([SAMPLE_VOICE], tmp_path_factory.mktemp("perf-data"))


def _successes(server, model: str) -> tuple[int, int]:
    stats = grpcclient.InferenceServerClient(server.grpc_url).get_inference_statistics(model, as_json=True)
    counts = stats["model_stats"][0]["inference_stats"]
    return int(counts["success"].get("count", 0)), int(counts["fail"].get("count", 0))


@pytest.mark.parametrize("inputs, protocol, shared_memory", [
    ("samples", "grpc", False), ("files", "http", False), ("samples", "grpc", True), ("files", "http", True)])
def test_perf_analyzer_measures_each_form_and_transport_without_errors(triton_server, data, inputs, protocol,
                                                                       shared_memory):
    model = {"samples": contract.SAMPLES_MODEL, "files": contract.FILE_MODEL}[inputs]
    url = triton_server.grpc_url if protocol == "grpc" else triton_server.http_url
    before = _successes(triton_server, model)
    result = measure(BINARY, model, url, protocol, data[inputs], 1, shared_memory=shared_memory, **QUICK)
    after = _successes(triton_server, model)
    assert result.ok, result.output
    assert result.throughput_rps > 0 and 0 < result.p50_ms <= result.p99_ms
    assert after[0] > before[0] and after[1] == before[1]   # answered, and no request failed on the server


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_shared_memory_without_the_admin_key_is_refused(triton_server, data, protocol):
    url = triton_server.grpc_url if protocol == "grpc" else triton_server.http_url
    result = measure(BINARY, contract.SAMPLES_MODEL, url, protocol, data["samples"], 1, shared_memory=True,
                     admin_key="not-the-key", **QUICK)
    assert not result.ok and "restricted" in result.output, result.output

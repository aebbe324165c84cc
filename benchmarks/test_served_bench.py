"""The served path under pytest-benchmark: one 6 s clip per request through a real tritonserver,
per transport and per cpu layout, beside the in-process runtime on the same clip.

    pytest benchmarks/test_served_bench.py --benchmark-only --benchmark-group-by=group
    pytest benchmarks/ --benchmark-only --benchmark-autosave   # then --benchmark-compare across commits

Group served-c1: [in-process] is LocalRuntime.infer (the baseline: no server); the others are
[layout-transport], one request at a time from one client: grpc and http send samples (AUDIO),
shm sends them through system shared memory (same host, admin key), file sends the clip's FLAC
whole (AUDIO_FILE, decoded on the server). Load at higher concurrency is `s2f bench`'s job
(benchmarks/LOAD.md). Every answer is checked against the in-process one (FEATURE_ATOL).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from speech2face.benchmarks.loadgen.clips import make_clips
from speech2face.engine import contract

AUDIO, RATE = make_clips(1, seconds=6.0)[0]
LAYOUTS = ("fused", "ensemble")
TRANSPORTS = ("grpc", "http", "shm", "file")


@pytest.fixture(scope="module")
def bundle():
    from speech2face.engine.runtime.builtin import default_bundle

    return default_bundle()


@pytest.fixture(scope="module")
def in_process(bundle):
    from speech2face.engine.runtime.local_runtime import LocalRuntime

    return LocalRuntime(bundle, intra_op_threads=2)


@pytest.fixture(scope="module", params=LAYOUTS)
def server(request, bundle, tmp_path_factory):
    from speech2face.engine.repository.cpu_repository import write_cpu_repository
    from speech2face.engine.server.launcher import ServerOptions, TritonServer

    repository = write_cpu_repository(bundle, tmp_path_factory.mktemp("served") / request.param,
                                      layout=request.param)
    with TritonServer(ServerOptions(model_repository=repository)) as running:
        yield request.param, running


def _flac() -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, AUDIO, RATE, format="FLAC")
    return buffer.getvalue()


@pytest.mark.benchmark(group="served-c1")
def test_in_process(benchmark, in_process):
    result = benchmark(in_process.infer, AUDIO, RATE)
    assert np.isclose(np.linalg.norm(result.feature), 1.0, atol=1e-4)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.benchmark(group="served-c1")
def test_served(benchmark, server, transport, in_process):
    from speech2face.engine.client import Speech2FaceClient

    layout, running = server
    benchmark.name = f"test_served[{layout}-{transport}]"
    protocol = "http" if transport == "http" else "grpc"
    url = running.http_url if protocol == "http" else running.grpc_url
    flac = _flac()
    with Speech2FaceClient(url, protocol, shared_memory=transport == "shm") as client:
        def call():
            return client.infer(flac) if transport == "file" else client.infer(AUDIO, RATE)

        result = benchmark(call)
    expected = in_process.infer(*soundfile.read(io.BytesIO(flac), dtype="float32")) if transport == "file" \
        else in_process.infer(AUDIO, RATE)
    assert np.abs(result.feature - expected.feature).max() <= contract.FEATURE_ATOL

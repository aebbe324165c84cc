"""What `s2f serve --proxy` costs: one 6 s clip per request at c=1, straight to tritonserver and
through HAProxy in front of the same server, in the same run (needs haproxy installed).

    pytest benchmarks/test_proxy_bench.py --benchmark-only --benchmark-group-by=group

Group proxy-c1: [direct-grpc], [proxy-grpc], [direct-http], [proxy-http]. Every answer is checked
against the in-process runtime's (FEATURE_ATOL).
"""

from __future__ import annotations

import numpy as np
import pytest

from speech2face.benchmarks.loadgen.clips import make_clips
from speech2face.engine import contract

AUDIO, RATE = make_clips(1, seconds=6.0)[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from speech2face.engine.repository.cpu_repository import write_default_repository
    from speech2face.engine.server.launcher import ServerOptions, TritonServer
    from speech2face.engine.server.proxy import ServerProxy

    with TritonServer(ServerOptions(model_repository=write_default_repository())) as server:
        proxy = ServerProxy("127.0.0.1", 0, 0, server.grpc_url, server.http_url, contract.MAX_REQUEST_BYTES).start()
        try:
            yield {"direct": (server.grpc_url, server.http_url), "proxy": (proxy.grpc_url, proxy.http_url)}
        finally:
            proxy.stop()


@pytest.fixture(scope="module")
def expected():
    from speech2face.engine.runtime.builtin import default_bundle
    from speech2face.engine.runtime.local_runtime import LocalRuntime

    return LocalRuntime(default_bundle(), intra_op_threads=2).infer(AUDIO, RATE)


@pytest.mark.parametrize("route", ["direct", "proxy"])
@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.benchmark(group="proxy-c1")
def test_request(benchmark, served, expected, route, protocol):
    from speech2face.engine.client import Speech2FaceClient

    benchmark.name = f"test_request[{route}-{protocol}]"
    url = served[route][0 if protocol == "grpc" else 1]
    with Speech2FaceClient(url, protocol) as client:
        result = benchmark(client.infer, AUDIO, RATE)
    assert np.abs(result.feature - expected.feature).max() <= contract.FEATURE_ATOL

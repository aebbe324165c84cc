"""Soak: many concurrent requests through the real server, none lost, none wrong.

The short soak (200 requests at concurrency 8) runs with every `make test`; the long one
(5,000 at concurrency 32) is marked slow and runs with `make soak`.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from speech2face.benchmarks.loadgen.measure import run_total
from speech2face.benchmarks.loadgen.targets import TritonTarget
from speech2face.engine.runtime.local_runtime import LocalRuntime


def _clips(count: int = 8, rate: int = 16000) -> list[tuple[np.ndarray, int]]:
    """Different lengths (1-9 s, so some are repeated and some cropped) and voices."""
    rng = np.random.default_rng(7)
    clips = []
    for k in range(count):
        t = np.arange(int((1 + k) * rate)) / rate
        phase = 2 * np.pi * np.cumsum(100 + 25 * k + 10 * np.sin(2 * np.pi * 2 * t)) / rate
        audio = sum(np.sin(h * phase) / h for h in range(1, 8)) * 0.2 + 0.01 * rng.standard_normal(t.size)
        clips.append((audio.astype(np.float32), rate))
    return clips


def soak(url: str, protocol: str, total: int, concurrency: int, clips, expected) -> dict:
    """Sends `total` requests from `concurrency` workers through the load generator's loop (no
    retries: each must succeed first time); counts every outcome by request id."""
    start = time.perf_counter()
    recorder = asyncio.run(run_total(TritonTarget("soak", url, protocol), clips, concurrency, total, expected))
    elapsed = time.perf_counter() - start
    outcomes = list(recorder.outcomes.values())
    counts = {kind: outcomes.count(kind) for kind in ("ok", "wrong", "error")}
    counts["lost"] = total - len(outcomes)
    counts["elapsed_s"] = elapsed
    counts["throughput_rps"] = total / elapsed
    counts["p99_ms"] = float(np.percentile(recorder.latencies, 99) * 1e3) if recorder.latencies else float("nan")
    counts["errors"] = recorder.error_examples()
    return counts


@pytest.fixture(scope="module")
def soak_clips(bundle):
    clips = _clips()
    runtime = LocalRuntime(bundle)
    return clips, [runtime.infer(a, r).feature for a, r in clips]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("protocol", ["grpc"])
def test_short_soak(triton_server, soak_clips, protocol):
    clips, expected = soak_clips
    result = soak(triton_server.grpc_url, protocol, total=200, concurrency=8, clips=clips, expected=expected)
    print(f"short soak: {result}")
    assert result["lost"] == 0 and result["wrong"] == 0 and result["error"] == 0, result
    assert result["ok"] == 200


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_long_soak(triton_server, soak_clips, protocol):
    clips, expected = soak_clips
    total = 5000 if protocol == "grpc" else 1000
    url = triton_server.grpc_url if protocol == "grpc" else triton_server.http_url
    result = soak(url, protocol, total=total, concurrency=32, clips=clips, expected=expected)
    print(f"long soak ({protocol}): {result}")
    assert result["lost"] == 0 and result["wrong"] == 0 and result["error"] == 0, result
    assert result["ok"] == total

"""Soak: many concurrent requests through the real server, none lost, none wrong.

The short soak (200 requests at concurrency 8) runs with every `make test`; the long one
(5,000 at concurrency 32) is marked slow and runs with `make soak`.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from speech2face.engine.async_client import AsyncSpeech2FaceClient
from speech2face.engine.client import InferenceError, RetryPolicy
from speech2face.engine.local_runtime import LocalRuntime

FEATURE_ATOL = 1e-4


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
    """Sends `total` requests from `concurrency` workers; counts every outcome by request id."""
    outcome: dict[int, str] = {}
    errors: list[str] = []
    latencies: list[float] = []

    async def main():
        # No retries: a request that needed one would be hidden; each must succeed first time.
        async with AsyncSpeech2FaceClient(url, protocol, timeout_s=120, retry=RetryPolicy(max_attempts=1)) as client:
            counter = iter(range(total))

            async def worker():
                for request_id in counter:
                    audio, rate = clips[request_id % len(clips)]
                    try:
                        result = await client.infer(audio, rate)
                    except InferenceError as error:
                        outcome[request_id] = "error"
                        errors.append(str(error))
                        continue
                    good = np.abs(result.feature - expected[request_id % len(clips)]).max() <= FEATURE_ATOL
                    outcome[request_id] = "ok" if good else "wrong"
                    latencies.append(result.latency_s)

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    start = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - start
    counts = {kind: sum(1 for v in outcome.values() if v == kind) for kind in ("ok", "wrong", "error")}
    counts["lost"] = total - len(outcome)
    counts["elapsed_s"] = elapsed
    counts["throughput_rps"] = total / elapsed
    counts["p99_ms"] = float(np.percentile(latencies, 99) * 1e3) if latencies else float("nan")
    counts["errors"] = errors[:5]
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

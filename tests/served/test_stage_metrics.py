"""The served models' stage times reach Triton's metrics port (engine/runtime/model_metrics.py).

Each model instance adds its stage times up and hands them over at the first request after
FLUSH_INTERVAL_S, so the test sends requests after that interval until the counts arrive (each
of those requests is counted too, once a later one flushes it).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import tritonclient.grpc as grpc

from speech2face.engine import contract
from speech2face.engine.runtime.model_metrics import FLUSH_INTERVAL_S, scrape, stage_totals

STAGES = {"fused": (contract.ENSEMBLE, ("inputs", "features", "encoder", "decoder", "outputs")),
          "ensemble": (contract.PREPROCESS, ("inputs", "features", "outputs"))}
REQUESTS = 3


def _totals(server, model: str) -> dict[str, tuple[float, float]]:
    return stage_totals(scrape(f"http://127.0.0.1:{server.metrics_port}/metrics"), model)


def _one_request(server, audio: np.ndarray, rate: int) -> None:
    samples = grpc.InferInput(contract.AUDIO.name, [1, audio.size], "FP32")
    samples.set_data_from_numpy(audio.reshape(1, -1).astype(np.float32))
    rates = grpc.InferInput(contract.SAMPLE_RATE.name, [1, 1], "INT32")
    rates.set_data_from_numpy(np.array([[rate]], np.int32))
    client = grpc.InferenceServerClient(server.grpc_url)
    try:
        client.infer(contract.ENSEMBLE, [samples, rates])
    finally:
        client.close()


@pytest.mark.parametrize("layout", ["fused", "ensemble"])
def test_every_stage_of_every_request_is_counted(request, layout, voice_like):
    server = request.getfixturevalue("triton_server" if layout == "fused" else "ensemble_server")
    model, stages = STAGES[layout]
    for _ in range(4):  # every instance has run and flushed once: the counters exist
        _one_request(server, *voice_like)
        time.sleep(FLUSH_INTERVAL_S)
    before = _totals(server, model)
    for _ in range(REQUESTS):  # one at a time: one execute() per request
        _one_request(server, *voice_like)
    flushing = 0
    while flushing < 20:
        time.sleep(1.2 * FLUSH_INTERVAL_S)
        _one_request(server, *voice_like)  # flushes the instance that takes it
        flushing += 1
        after = _totals(server, model)
        runs = {s: after[s][1] - before[s][1] for s in stages}
        if min(runs.values()) >= REQUESTS:
            break
    # All stages of a request are handed over together, and nothing is counted twice.
    assert len(set(runs.values())) == 1, runs
    assert REQUESTS <= runs[stages[0]] <= REQUESTS + flushing
    assert all(after[s][0] > before[s][0] for s in stages)

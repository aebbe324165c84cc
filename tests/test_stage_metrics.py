"""The served models' stage times reach Triton's metrics port (engine/model_metrics.py).

The stub adds stage times up and hands them over every FLUSH_INTERVAL_S, so a scrape may lag
by that much: the test waits for the counts instead of reading them once.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import tritonclient.grpc as grpc

from speech2face.engine import contract
from speech2face.engine.model_metrics import FLUSH_INTERVAL_S, scrape, stage_totals

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
    _one_request(server, *voice_like)  # the counters exist once a stage has run
    time.sleep(2 * FLUSH_INTERVAL_S)
    before = _totals(server, model)
    for _ in range(REQUESTS):  # one at a time: one execute() per request
        _one_request(server, *voice_like)
    deadline = time.monotonic() + 10 * FLUSH_INTERVAL_S
    while True:
        after = _totals(server, model)
        runs = {s: after[s][1] - before[s][1] for s in stages}
        if all(n >= REQUESTS for n in runs.values()) or time.monotonic() > deadline:
            break
        time.sleep(FLUSH_INTERVAL_S / 5)
    assert runs == {s: REQUESTS for s in stages}, runs
    assert all(after[s][0] > before[s][0] for s in stages)

"""The load generator against the real server: answers checked, Triton's counters recorded, files written."""

from __future__ import annotations

import asyncio
import csv
import json

import numpy as np
import pytest

from speech2face.engine.bench_cli import _loadgen
from speech2face.engine.local_runtime import LocalRuntime



@pytest.fixture(scope="module")
def loadgen():
    return _loadgen()    # the module `s2f bench` runs


@pytest.mark.parametrize("mode, level", [("concurrency", 2), ("poisson", 20.0)])
def test_a_short_level_checks_answers_and_records_server_counters(loadgen, triton_server, bundle, mode, level):
    clips = loadgen.make_clips(3, 2.0)
    runtime = LocalRuntime(bundle, 2)
    expected = [runtime.infer(a, r).feature for a, r in clips]
    expected[2] = -expected[2]     # a deliberately wrong reference: its answers must count as wrong
    target = loadgen.TritonTarget("triton", triton_server.grpc_url)
    [result] = asyncio.run(loadgen.sweep(target, clips, mode, [level], 0.3, 1.5, expected, log=lambda *_: None))
    assert result.errors == 0 and result.completed > 0 and result.wrong > 0
    assert result.p50_ms <= result.p90_ms <= result.p99_ms
    counters = result.server["speech2face"]
    # The server saw every request the window counted (and those in flight at its edges).
    assert counters["requests"] >= result.completed and counters["failed"] == 0
    assert counters["avg_compute_ms"] > 0


def test_results_files_and_goals(loadgen, tmp_path):
    def row(target, level, rps, p50):
        return loadgen.LevelResult(target, "concurrency", level, 1.0, int(rps), 0, 0, rps, p50, p50, p50, p50,
                                   server={"speech2face": {"avg_batch": 2.0, "avg_queue_ms": 1.0}})

    results = [row("triton", 1, 70, 11.0), row("ort", 1, 80, 10.0), row("triton", 8, 90, 80.0),
               row("triton-2x1", 8, 99, 70.0), row("fastapi", 8, 60, 100.0)]
    goals = loadgen.goals(results)
    assert goals["throughput_c8_triton_over_fastapi"] == pytest.approx(1.5)
    assert goals["throughput_c8_best_triton_over_fastapi"] == pytest.approx(1.65)
    assert goals["throughput_c8_best_triton_target"] == "triton-2x1"
    assert goals["overhead_c1_p50_triton_vs_ort"] == pytest.approx(0.1)
    paths = loadgen.write_results(results, tmp_path, {"goals": goals})
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [r["target"] for r in rows] == [r.target for r in results]
    assert json.loads(paths["json"].read_text())["results"][3]["server"]["speech2face"]["avg_batch"] == 2.0
    assert "| triton-2x1 | concurrency | 8 | 99.00 |" in loadgen.summary_table(results)
    assert np.isfinite([r.throughput_rps for r in results]).all()

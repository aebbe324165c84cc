"""The load generator (speech2face.benchmarks.loadgen) against the real server: answers checked, Triton's
counters recorded, every transport (samples, FLAC files, shared memory), rounds kept apart,
files written. Tiny windows: nothing here asserts a speed."""

from __future__ import annotations

import asyncio
import csv
import json
import math

import numpy as np
import pytest

from speech2face.benchmarks.loadgen import engines
from speech2face.benchmarks.loadgen import report
from speech2face.benchmarks.loadgen.clips import make_clips
from speech2face.benchmarks.loadgen.measure import LevelResult, sweep
from speech2face.benchmarks.loadgen.targets import TritonTarget
from speech2face.engine.runtime.local_runtime import LocalRuntime


@pytest.fixture(scope="module")
def runtime(bundle):
    return LocalRuntime(bundle, 2)


@pytest.mark.parametrize("mode, level, send", [("concurrency", 2, "samples"), ("poisson", 20.0, "samples"),
                                                ("concurrency", 2, "file"), ("concurrency", 2, "shm")])
def test_a_short_level_checks_answers_and_records_server_counters(triton_server, runtime, mode, level, send):
    target = TritonTarget("triton", triton_server.grpc_url, send=send)
    payloads, seen = target.prepare(make_clips(3, 2.0))
    assert isinstance(payloads[0], bytes) == (send == "file")
    expected = [runtime.infer(a, r).feature for a, r in seen]
    expected[2] = -expected[2]     # a deliberately wrong reference: its answers must count as wrong
    [result] = asyncio.run(sweep(target, payloads, mode, [level], 0.3, 1.5, expected, log=lambda *_: None))
    assert result.errors == 0 and result.completed > 0 and result.wrong > 0
    assert result.p50_ms <= result.p90_ms <= result.p99_ms
    counters = result.server["speech2face"]
    # The server saw every request the window counted (and those in flight at its edges).
    assert counters["requests"] >= result.completed and counters["failed"] == 0
    assert counters["avg_compute_ms"] > 0


def test_rounds_interleave_engines_and_each_is_reported(bundle, tmp_path):
    lines = []
    results, described = engines.compare(["triton-file", "ort"], make_clips(2, 1.0), "concurrency", [1], 0.2, 0.6,
                                         bundle, tmp_path, log=lines.append, rounds=2)
    assert [(r.round, r.target) for r in results] == [(1, "triton-file"), (1, "ort"), (2, "triton-file"), (2, "ort")]
    assert all(r.errors == 0 and r.wrong == 0 and r.completed > 0 for r in results), results
    assert [d["name"] for d in described] == ["triton-file", "ort"] and described[0]["send"] == "file"
    assert "-- round 2: ort" in lines and sum(line.startswith("r2 ") for line in lines) == 2
    with pytest.raises(ValueError, match="unknown targets \\['tritton'\\]"):
        engines.compare(["tritton"], make_clips(1, 1.0), "concurrency", [1], 0.1, 0.1, bundle, tmp_path)


def _row(target, level, rps, p50, round_no=1):
    return LevelResult(target, "concurrency", level, 1.0, int(rps), 0, 0, rps, p50, p50, p50, p50, round=round_no,
                       server={"speech2face": {"avg_batch": 2.0, "avg_queue_ms": 1.0, "avg_compute_ms": 9.0}})


def test_goals_are_per_round_and_files_keep_every_row(tmp_path):
    results = [_row("triton", 1, 70, 11.0), _row("ort", 1, 80, 10.0), _row("triton", 8, 90, 80.0),
               _row("triton-2x1", 8, 99, 70.0), _row("fastapi", 8, 60, 100.0), _row("ort", 8, 100, 75.0),
               _row("triton", 1, 70, 20.0, 2), _row("ort", 1, 80, 10.0, 2)]
    goals = report.goals(results, engines.TRITON_TARGETS)
    assert goals["throughput_c8_triton_over_fastapi"] == pytest.approx([1.5])
    assert goals["throughput_c8_best_triton_over_fastapi"] == pytest.approx([1.65])
    assert goals["throughput_c8_best_triton_target"] == ["triton-2x1"]
    assert goals["throughput_c8_triton_over_ort"] == pytest.approx([0.9])
    # the bimodal case: round 2's c=1 overhead is not averaged into round 1's
    assert goals["overhead_c1_p50_ms_triton_minus_ort"] == pytest.approx([1.0, 10.0])
    results.append(LevelResult("fastapi", "concurrency", 1, 1.0, 0, 3, 0, 0.0, math.nan, math.nan, math.nan, math.nan))
    paths = report.write_results(results, tmp_path, {"goals": goals})
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [(r["round"], r["target"]) for r in rows] == [(str(r.round), r.target) for r in results]
    assert rows[0]["speech2face.avg_compute_ms"] == "9.0" and rows[-1]["errors"] == "3"
    saved = json.loads(paths["json"].read_text())
    assert saved["results"][-1]["p50_ms"] is None          # NaN is written as null, not as invalid JSON
    assert saved["meta"]["goals"]["overhead_c1_p50_ms_triton_minus_ort"] == [1.0, 10.0]
    table = report.summary_table(results)
    assert "| 1 | triton-2x1 | concurrency | 8 | 99.00 | 70.0 |" in table
    assert "| 2 | triton | concurrency | 1 | 70.00 | 20.0 |" in table


def test_s2f_bench_parser_is_the_package_and_bad_targets_are_one_line(capsys):
    from speech2face.engine.cli.main import main, parse

    args = parse(["bench", "--targets", "triton-shm,ort", "--rounds", "3", "--send", "file"])
    assert args.arguments == ["--targets", "triton-shm,ort", "--rounds", "3", "--send", "file"]
    assert main(["bench", "--targets", "nope", "--levels", "1", "--out", "/nonexistent"]) == 2
    assert "unknown targets ['nope']" in capsys.readouterr().err
    assert set(engines.DEFAULT_TARGETS) >= {"triton", "triton-file", "triton-shm", "fastapi", "ort"}


def test_in_process_engines_agree_torch_and_onnx_runtime(bundle):
    """The `torch` and `ort` targets answer the same clips alike (the comparison is only fair if so)."""
    pytest.importorskip("torch")
    from speech2face.benchmarks.loadgen.targets import ort_function, torch_function
    from speech2face.engine.contract.tensors import FEATURE_ATOL

    torch_run, source = torch_function(bundle, threads=2)
    ort_run = ort_function(bundle)
    assert source.endswith("checkpoint.pt")      # the built-in bundle carries its checkpoint
    clips = make_clips(3, 2.0)
    for audio, rate in clips:
        assert np.abs(torch_run(audio, rate) - ort_run(audio, rate)).max() <= FEATURE_ATOL
    # and the check can fail: another clip's answer is far outside the tolerance
    assert np.abs(torch_run(*clips[0]) - ort_run(*clips[2])).max() > 100 * FEATURE_ATOL

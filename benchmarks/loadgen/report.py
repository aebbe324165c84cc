"""What a benchmark run leaves: one line per level, results.csv / results.json / a plot, a
markdown table with every round's rows (rounds are never averaged: a bimodal engine shows as
rounds that disagree), and the goals computed per round."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import sys
from pathlib import Path

from speech2face.benchmarks.loadgen.measure import LevelResult
from speech2face.engine import contract


def batching_model(server_stats: dict) -> tuple[str, dict]:
    """The model whose batches carry the network: voice_encoder (ensemble layout) or speech2face (fused)."""
    for name in (contract.VOICE_ENCODER, contract.ENSEMBLE):
        if server_stats.get(name):
            return name, server_stats[name]
    return "", {}


def format_level(r: LevelResult) -> str:
    line = (f"r{r.round} {r.target:>15} {r.mode[:4]} {r.level:>6g}: {r.throughput_rps:6.2f} req/s  "
            f"p50 {r.p50_ms:7.1f}  p90 {r.p90_ms:7.1f}  p99 {r.p99_ms:7.1f} ms  "
            f"errors {r.errors}  wrong {r.wrong}  load {r.loadavg_1m:.1f}")
    if r.mode == "poisson":
        line += f"  (arrived {r.arrived_rps:.2f}/s)"
    if r.dropped:
        line += f"  dropped {r.dropped}"
    name, served = batching_model(r.server)
    if served:
        line += (f"  | {name} batch {served['avg_batch']:.2f} "
                 f"queue {served['avg_queue_ms']:.1f} ms compute {served['avg_compute_ms']:.1f} ms")
    if r.server.get("stages_ms"):
        line += " | " + " ".join(f"{stage} {ms:.2f}" for stage, ms in r.server["stages_ms"].items()) + " ms/execute"
    return line


def _clean(value):
    """JSON without NaN/Inf (null instead)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write_results(results: list[LevelResult], out_dir: Path, meta: dict) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [r.row() for r in results]
    columns = list(dict.fromkeys(c for row in rows for c in row))
    with open(out_dir / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / "results.json").write_text(json.dumps(
        _clean({"meta": meta, "results": [dataclasses.asdict(r) for r in results]}), indent=2) + "\n")
    paths = {"csv": out_dir / "results.csv", "json": out_dir / "results.json"}
    plot = plot_results(results, out_dir / "throughput_vs_p99.png", meta)
    if plot:
        paths["png"] = plot
    return paths


def plot_results(results: list[LevelResult], path: Path, meta: dict) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return None
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name, round_no in dict.fromkeys((r.target, r.round) for r in results):
        points = [r for r in results if r.target == name and r.round == round_no and r.completed]
        if points:
            ax.plot([r.throughput_rps for r in points], [r.p99_ms for r in points], marker="o",
                    label=f"{name} (round {round_no})")
    mode = results[0].mode if results else "concurrency"
    ax.set_xlabel("throughput (requests/s)")
    ax.set_ylabel("p99 latency (ms)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"speech2face: throughput vs p99 latency ({mode})\n"
                 f"{meta.get('clips')} clips of {meta.get('clip_seconds')} s at {meta.get('rate')} Hz; "
                 f"{meta.get('cpu_count')} CPU cores", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _number(stats: dict, key: str, digits: int) -> str:
    value = stats.get(key)
    return f"{value:.{digits}f}" if value is not None and math.isfinite(value) else ""


def summary_table(results: list[LevelResult]) -> str:
    lines = ["| round | target | mode | level | req/s | p50 ms | p90 ms | p99 ms | errors | wrong "
             "| batch (served model) | queue ms | compute ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        served = batching_model(r.server)[1]
        lines.append(f"| {r.round} | {r.target} | {r.mode} | {r.level:g} | {r.throughput_rps:.2f} | "
                     f"{r.p50_ms:.1f} | {r.p90_ms:.1f} | {r.p99_ms:.1f} | {r.errors} | {r.wrong} | "
                     f"{_number(served, 'avg_batch', 2)} | {_number(served, 'avg_queue_ms', 1)} | "
                     f"{_number(served, 'avg_compute_ms', 1)} |")
    return "\n".join(lines)


def _round_goals(results: list[LevelResult], triton_targets) -> dict:
    def find(target, level):
        return next((r for r in results if r.target == target and r.mode == "concurrency" and r.level == level), None)

    out = {}
    triton8, fastapi8, ort8 = find("triton", 8), find("fastapi", 8), find("ort", 8)
    if triton8 and fastapi8 and fastapi8.throughput_rps:
        out["throughput_c8_triton_over_fastapi"] = triton8.throughput_rps / fastapi8.throughput_rps
        best = max((r for r in (find(name, 8) for name in triton_targets) if r), key=lambda r: r.throughput_rps)
        out["throughput_c8_best_triton_over_fastapi"] = best.throughput_rps / fastapi8.throughput_rps
        out["throughput_c8_best_triton_target"] = best.target
    if triton8 and ort8 and ort8.throughput_rps:
        out["throughput_c8_triton_over_ort"] = triton8.throughput_rps / ort8.throughput_rps
    triton1, ort1, file1 = find("triton", 1), find("ort", 1), find("triton-file", 1)
    if triton1 and ort1 and ort1.p50_ms:
        out["overhead_c1_p50_ms_triton_minus_ort"] = triton1.p50_ms - ort1.p50_ms
        out["overhead_c1_p50_triton_vs_ort"] = triton1.p50_ms / ort1.p50_ms - 1
    if triton1 and file1:
        out["c1_p50_ms_file_minus_samples"] = file1.p50_ms - triton1.p50_ms
    return out


def goals(results: list[LevelResult], triton_targets=()) -> dict[str, list]:
    """The issue's goals, each as one value per round (in round order) where the rows exist."""
    out: dict[str, list] = {}
    for round_no in sorted({r.round for r in results}):
        for key, value in _round_goals([r for r in results if r.round == round_no], triton_targets).items():
            out.setdefault(key, []).append(value)
    return out


def format_goal(key: str, values: list) -> str:
    if isinstance(values[0], str):
        return f"{key}: {', '.join(values)}"
    if "_ms" in key:
        return f"{key}: {', '.join(f'{v:+.1f} ms' for v in values)}"
    if "overhead" in key:
        return f"{key}: {', '.join(f'{v:+.3f}' for v in values)}"
    return f"{key}: {', '.join(f'{v:.2f}x' for v in values)}"

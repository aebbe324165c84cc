"""Model Analyzer (Triton's own config search) on this repository, in one command.

    make model-analyzer    # installs Model Analyzer (.venv-analyzer) and perf_analyzer (.venv-perf), runs this
    python benchmarks/studies/model_analyzer_search.py [--analyzer PATH] [--levels 1,8] [--out DIR]

Model Analyzer starts tritonserver itself ("local" mode) on each configuration it writes. This
assembles what it needs and cannot find on its own:
- the default repository, and a backend folder with the Python backend and the stub for this
  Python from the nvidia-pytriton wheel (the launcher's `prepare_backends`);
- the environment: the wheel's libraries (tritonserver) and libcudart (perf_analyzer) on
  LD_LIBRARY_PATH, and .venv's python first on PATH (the Python backend runs the first python there);
- free loopback ports, perf_analyzer from `make perf-analyzer`, input data from `s2f perf-data`;
- the search space. Model Analyzer sweeps any field of the model config by hand ("manual brute
  search", `model_config_parameters`), the `parameters` map included, but brute search is not
  offered for ensembles (its config_search docs, "Support Matrix"), and the per-form models are
  ensembles; quick search, the one they get, moves only max_batch_size, dynamic batching and
  instance counts. So the search runs on the fused `speech2face` model itself (its inputs are
  optional; perf_analyzer sends AUDIO + SAMPLE_RATE from samples.json): instance count x the
  runtime parameters (contract.RUNTIME_PARAMETERS) below, at concurrencies --levels (1..8),
  the rest of the model's config as the repository writes it.
Objective: Model Analyzer's default (throughput). Prints its pick and every measurement.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from speech2face.benchmarks.loadgen.perf_analyzer import environment, find_perf_analyzer
from speech2face.benchmarks.loadgen.perf_data import write_perf_data
from speech2face.engine import contract

ROOT = Path(__file__).resolve().parents[2]
ANALYZER = ROOT / ".venv-analyzer" / "bin" / "model-analyzer"
# The search space: the fused model's runtime parameters (string values, as config.pbtxt holds them).
SPACE = {"instances": [1, 2], contract.RUNTIME_PARAMETERS["threads"]: ["1", "2"],
         contract.RUNTIME_PARAMETERS["concurrent_runs"]: ["1", "2"],
         contract.RUNTIME_PARAMETERS["pin_threads"]: ["0", "1"]}


def analyzer_config(work: Path, repository: Path, backends: Path, binary: Path, data: Path, levels: list[int],
                    server_binary: Path) -> dict:
    from speech2face.engine.server.launcher import free_port

    http, grpc, metrics = free_port(), free_port(), free_port()
    parameters = {name: {"string_value": values} for name, values in SPACE.items() if name != "instances"}
    return {
        "model_repository": str(repository),
        "output_model_repository_path": str(work / "variants"),
        "override_output_model_repository": True,
        "checkpoint_directory": str(work / "checkpoints"),
        "export_path": str(work / "results"),
        "triton_launch_mode": "local",
        "triton_server_path": str(server_binary),
        "triton_output_path": str(work / "tritonserver.log"),
        "triton_http_endpoint": f"127.0.0.1:{http}",
        "triton_grpc_endpoint": f"127.0.0.1:{grpc}",
        "triton_metrics_url": f"http://127.0.0.1:{metrics}/metrics",
        "triton_server_flags": {"backend-directory": str(backends), "http-address": "127.0.0.1",
                                "grpc-address": "127.0.0.1", "metrics-address": "127.0.0.1",
                                "allow-gpu-metrics": False},
        "perf_analyzer_path": str(binary),
        # Windows of 50 requests, stable within 50 % (-s 20 rarely settles on a shared 2-core machine).
        "perf_analyzer_flags": {"input-data": str(data), "measurement-mode": "count_windows",
                                "measurement-request-count": 50, "stability-percentage": 50},
        "client_protocol": "grpc",
        "run_config_search_mode": "brute",
        "skip_detailed_reports": True,   # the summary (HTML, and results/metrics-model-inference.csv) is kept
        "profile_models": {contract.ENSEMBLE: {
            "cpu_only": True,
            "parameters": {"concurrency": levels},
            "model_config_parameters": {
                "instance_group": [[{"count": SPACE["instances"], "kind": "KIND_CPU"}]],
                "parameters": parameters,
            },
        }},
    }


def server_environment(binary: Path) -> dict[str, str]:
    from speech2face.engine.server.launcher import _pytriton_dir

    env = environment(binary)   # libcudart for perf_analyzer
    libs = _pytriton_dir().parent / "nvidia_pytriton.libs"
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(libs), env.get("LD_LIBRARY_PATH")]))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def variants(folder: Path) -> dict[str, dict]:
    """Each configuration Model Analyzer wrote: its instance count and swept parameters."""
    found = {}
    for config in sorted(folder.glob("*/config.pbtxt")):
        text = config.read_text()
        count = re.search(r"\bcount:\s*(\d+)", text)
        entry = {"instances": count.group(1) if count else None}
        for name in SPACE:
            if name != "instances":
                value = re.search(rf'key:\s*"{name}"\s*value\s*{{\s*string_value:\s*"([^"]*)"', text)
                entry[name] = value.group(1) if value else None
        found[config.parent.name] = entry
    return found


def measurements(results: Path) -> dict[str, dict[int, tuple[float, float]]]:
    """{config: {concurrency: (throughput, p99 ms)}} from Model Analyzer's results CSV."""
    found: dict[str, dict[int, tuple[float, float]]] = {}
    for row in csv.DictReader((results / "results" / "metrics-model-inference.csv").open()):
        found.setdefault(row["Model Config Path"], {})[int(row["Concurrency"])] = (
            float(row["Throughput (infer/sec)"]), float(row["p99 Latency (ms)"]))
    return found


def report(log: str, work: Path, levels: list[int]) -> str:
    """Model Analyzer's pick (the first of its best configurations), then every configuration."""
    best = re.search(r"--report-model-configs (\S+)", log)
    ranked = best.group(1).split(",") if best else []
    configs, measured = variants(work / "variants"), measurements(work / "results")
    default = f"{contract.ENSEMBLE}_config_default"
    head = " | ".join(f"c={c} req/s | c={c} p99 ms" for c in levels)
    lines = [f"Model Analyzer's pick: {ranked[0] if ranked else '(none found in its log)'} "
             f"{configs.get(ranked[0]) if ranked else ''}; its best three: {', '.join(ranked)}",
             f"| config | {' | '.join(SPACE)} | {head} |", "|---" * (1 + len(SPACE) + 2 * len(levels)) + "|"]
    for name in ranked + sorted(set(measured) - set(ranked), key=lambda n: (len(n), n)):
        cells = [f"{measured[name][c][0]:.1f} | {measured[name][c][1]:.1f}" if c in measured[name] else "— | —"
                 for c in levels]
        lines.append(f"| {name} | {' | '.join(str(v) for v in configs.get(name, {}).values())} | {' | '.join(cells)} |")
    twins = [n for n, v in configs.items() if n != default and v == configs.get(default)]
    if twins:   # the grid holds the default's values too: the gap between the two is this run's noise
        lines.append(f"{default} and {', '.join(twins)} are the same configuration, measured twice")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--analyzer", default=str(ANALYZER), help="the model-analyzer script (.venv-analyzer's)")
    parser.add_argument("--perf-analyzer", help="the binary (default: $S2F_PERF_ANALYZER, else .venv-perf's)")
    parser.add_argument("--levels", default="1,8", help="concurrencies, within 1..8")
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "model-analyzer"))
    args = parser.parse_args(argv)
    binary, analyzer = find_perf_analyzer(args.perf_analyzer), Path(args.analyzer).resolve()
    if binary is None or not analyzer.exists():
        print("needs perf_analyzer and Model Analyzer: `make model-analyzer` installs both", file=sys.stderr)
        return 2
    levels = [int(v) for v in args.levels.split(",")]
    if not all(1 <= v <= 8 for v in levels):
        print("--levels: concurrencies within 1..8", file=sys.stderr)
        return 2
    from speech2face.engine.repository.cpu_repository import write_cpu_repository
    from speech2face.engine.runtime.builtin import SAMPLE_VOICE, default_bundle
    from speech2face.engine.server.launcher import _pytriton_dir, prepare_backends

    work = Path(args.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    repository = write_cpu_repository(default_bundle(), work / "repository")
    data = write_perf_data([SAMPLE_VOICE], work / "perf-data")["samples"]
    config = analyzer_config(work, repository, prepare_backends(work / "backends"), binary.resolve(), data, levels,
                             _pytriton_dir() / "tritonserver" / "bin" / "tritonserver")
    config_file = work / "config.yaml"
    config_file.write_text(json.dumps(config, indent=2))   # JSON is YAML
    for stale in ("checkpoints", "results", "variants"):   # Model Analyzer resumes from a checkpoint: start afresh
        shutil.rmtree(work / stale, ignore_errors=True)
    start = time.perf_counter()
    run = subprocess.run([str(analyzer), "profile", "-f", str(config_file)], env=server_environment(binary),
                         cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - start
    (work / "model-analyzer.log").write_text(run.stdout)
    print(f"model-analyzer profile: exit {run.returncode}, {wall:.0f} s (config {config_file}, "
          f"log {work / 'model-analyzer.log'})")
    if run.returncode != 0:
        print("\n".join(run.stdout.splitlines()[-30:]), file=sys.stderr)
        return run.returncode
    print(report(run.stdout, work, levels))
    return 0

if __name__ == "__main__":
    sys.exit(main())

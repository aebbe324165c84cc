"""Where a served request's time goes at concurrency 1, beside the same code in process.

    python benchmarks/breakdown.py [--rounds 4] [--requests 150] [--out benchmarks/results/breakdown]

One server on the default cpu repository (as `s2f serve` writes it) with Triton's trace on
(`--trace-config level=TIMESTAMPS`, every request). Each round sends `--requests` clips one at a
time with plain tritonclient gRPC and runs the same clips through the in-process LocalRuntime,
the two interleaved request by request (the order alternates), so both see the same machine.

Per request, from three sources that each measure their own part:
- the client: building the request (serialization) and the whole round trip;
- Triton's trace: gRPC read -> request, queue, compute input (tensors to the stub), compute infer
  (the stub's execute(), transfer included), compute output, response sent;
- the model's own stage metrics (`s2f_stage_duration_us_total`): inputs, features, encoder,
  decoder, outputs inside execute(); the stub transfer is compute infer minus their sum.
Every round is reported on its own (medians): a bimodal machine shows as rounds that disagree.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

SERVER_SPANS = {  # name: (start timestamp, end timestamp) in Triton's trace
    "grpc_read_to_request": ("GRPC_WAITREAD_END", "REQUEST_START"),
    "queue": ("QUEUE_START", "COMPUTE_START"),
    "compute_input": ("COMPUTE_START", "COMPUTE_INPUT_END"),
    "compute_infer": ("COMPUTE_INPUT_END", "COMPUTE_OUTPUT_START"),
    "compute_output": ("COMPUTE_OUTPUT_START", "COMPUTE_END"),
    "response_sent": ("COMPUTE_END", "GRPC_SEND_END"),
    "server_total": ("GRPC_WAITREAD_END", "GRPC_SEND_END"),
}


def trace_spans(trace_file: Path) -> list[dict[str, float]]:
    """Per traced request, each SERVER_SPANS duration in ms (requests in arrival order)."""
    by_id: dict[int, dict[str, int]] = {}
    for entry in json.loads(trace_file.read_text()):
        for stamp in entry.get("timestamps", []):
            by_id.setdefault(entry["id"], {})[stamp["name"]] = int(stamp["ns"])
    spans = []
    for stamps in sorted(by_id.values(), key=lambda s: s.get("REQUEST_START", 0)):
        if all(a in stamps and b in stamps for a, b in SERVER_SPANS.values()):
            spans.append({name: (stamps[b] - stamps[a]) / 1e6 for name, (a, b) in SERVER_SPANS.items()})
    return spans


def served_once(client, grpc, audio: np.ndarray, rate: int) -> dict[str, float]:
    start = time.perf_counter()
    samples = grpc.InferInput("AUDIO", [1, audio.size], "FP32")
    samples.set_data_from_numpy(audio.reshape(1, -1))
    rates = grpc.InferInput("SAMPLE_RATE", [1, 1], "INT32")
    rates.set_data_from_numpy(np.array([[rate]], np.int32))
    built = time.perf_counter()
    client.infer("speech2face", [samples, rates]).as_numpy("FACE_FEATURE")
    end = time.perf_counter()
    return {"client_serialization": (built - start) * 1e3, "client_round_trip": (end - built) * 1e3}


def local_once(runtime, audio: np.ndarray, rate: int) -> dict[str, float]:
    from speech2face.engine.audio import validate_audio

    times: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(name: str):
        begin = time.perf_counter()
        yield
        times[name] = (time.perf_counter() - begin) * 1e3

    start = time.perf_counter()
    with stage("inputs"):
        clip = validate_audio(audio, rate, runtime.bundle.feature_spec)
    runtime.run([clip], stage)
    times["total"] = (time.perf_counter() - start) * 1e3
    return times


def run_round(client, grpc, runtime, clips, requests: int, metrics_url: str, first: str) -> dict:
    from speech2face.engine.model_metrics import scrape, stage_means_ms, stage_totals

    before = stage_totals(scrape(metrics_url), "speech2face")
    served, local = [], []
    for k in range(requests):
        audio, rate = clips[k % len(clips)]
        order = ("served", "local") if (k % 2 == 0) == (first == "served") else ("local", "served")
        for engine in order:
            if engine == "served":
                served.append(served_once(client, grpc, audio, rate))
            else:
                local.append(local_once(runtime, audio, rate))
    stages = stage_means_ms(before, stage_totals(scrape(metrics_url), "speech2face"))
    return {"served_requests": served, "served_stage_means_ms": stages,
            "local": {k: float(np.median([r[k] for r in local])) for k in local[0]}}


def measure(rounds: int, requests: int, workdir: Path, overrides: dict | None = None) -> dict:
    import tritonclient.grpc as grpc

    from speech2face.bench.clips import make_clips
    from speech2face.engine.builtin import default_bundle
    from speech2face.engine.local_runtime import LocalRuntime
    from speech2face.engine.server import ServerOptions, TritonServer
    from speech2face.export.model_configs import BatchingPolicy
    from speech2face.export.repository import read_build_record, write_cpu_repository

    # The default policy, as `s2f serve` writes it, unless --set changes a field.
    repository = write_cpu_repository(default_bundle(), workdir / "repository",
                                      dataclasses.replace(BatchingPolicy(), **(overrides or {})))
    policy = read_build_record(repository)["policy"]
    runtime = LocalRuntime(default_bundle(), policy["intra_op_threads"])
    clips = make_clips(8, 6.0)
    trace = workdir / "trace.json"
    trace_args = ("--trace-config", f"triton,file={trace}", "--trace-config", "rate=1",
                  "--trace-config", "level=TIMESTAMPS", "--trace-config", "count=-1")
    report = {"policy": policy, "rounds": []}
    with TritonServer(ServerOptions(model_repository=repository, extra_args=trace_args)) as server:
        client = grpc.InferenceServerClient(server.grpc_url)
        metrics_url = f"http://127.0.0.1:{server.metrics_port}/metrics"
        run_round(client, grpc, runtime, clips, 20, metrics_url, "served")  # warm-up, not reported
        for r in range(rounds):
            report["rounds"].append(run_round(client, grpc, runtime, clips, requests, metrics_url,
                                              "served" if r % 2 == 0 else "local"))
        client.close()
    spans = iter(trace_spans(trace)[20:])  # in arrival order, after the warm-up requests
    for round_report in report["rounds"]:
        rows = round_report.pop("served_requests")
        for row in rows:  # one request at a time: the trace's k-th request is the client's k-th
            row.update(next(spans))
            row["client_and_wire"] = row["client_round_trip"] - row["server_total"]
        round_report["served"] = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
    return report


def table(report: dict) -> str:
    """Markdown: one column per round (served | in process), one row per part of a request."""
    stage_names = ("inputs", "features", "encoder", "decoder", "outputs")
    rows: dict[str, list[str]] = {}

    def add(name: str, served: float | None, local: float | None = None) -> None:
        cell = f"{served:.2f}" if served is not None else ""
        rows.setdefault(name, []).append(cell + (f" / {local:.2f}" if local is not None else ""))

    for r in report["rounds"]:
        srv, st, loc = r["served"], r["served_stage_means_ms"], r["local"]
        add("client: build the request (serialization)", srv["client_serialization"])
        add("client + gRPC on the wire (round trip − server)", srv["client_and_wire"])
        add("Triton: gRPC read → request", srv["grpc_read_to_request"])
        add("Triton: queue", srv["queue"])
        add("Triton: compute input (tensors to the stub)", srv["compute_input"])
        add("stub transfer (compute infer − execute() stages)",
            srv["compute_infer"] - sum(st.get(n, 0.0) for n in stage_names))
        for name in stage_names:
            add(f"execute(): {name}", st.get(name, 0.0), loc.get(name) if name != "outputs" else None)
        add("Triton: compute output", srv["compute_output"])
        add("Triton: response sent", srv["response_sent"])
        add("**total p50** (served / in process)", srv["client_serialization"] + srv["client_round_trip"],
            loc["total"])
    header = "| ms, medians (served / in process) | " + " | ".join(
        f"round {i + 1}" for i in range(len(report["rounds"]))) + " |"
    lines = [header, "|---" * (len(report["rounds"]) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=150, help="requests per round (and as many in process)")
    parser.add_argument("--out", default="benchmarks/results/breakdown")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=INT",
                        help="override a BatchingPolicy field, e.g. --set allow_spinning=1")
    args = parser.parse_args(argv)
    overrides = {k: int(v) for k, v in (item.split("=", 1) for item in args.set)}
    with tempfile.TemporaryDirectory(prefix="s2f-breakdown-") as workdir:
        report = measure(args.rounds, args.requests, Path(workdir), overrides)
    report["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "breakdown.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"policy: {report['policy']}")
    print(table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

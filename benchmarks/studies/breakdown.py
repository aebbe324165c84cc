"""Where a served request's time goes at concurrency 1, beside the same code in process.

    python benchmarks/studies/breakdown.py [--rounds 4] [--requests 150] [--out benchmarks/results/breakdown]

One server on the default cpu repository (as `s2f serve` writes it) with Triton's trace on
(`--trace-config level=TIMESTAMPS`, every request). Each round sends `--requests` clips one at a
time with plain tritonclient gRPC and runs the same clips through the in-process LocalRuntime,
the two interleaved request by request (the order alternates), so both see the same machine.

Rounds alternate between a warm machine (requests back to back) and an idle one (`--idle-ms` of
nothing before every request, served and in process alike): the two states a c=1 user sees.

Per request, from three sources that each measure their own part:
- the client: building the request (serialization) and the whole round trip;
- Triton's trace: gRPC read -> request, queue, compute input (tensors to the stub), compute infer
  (the stub's execute(), transfer included), compute output, response sent;
- the model's own stage metrics (`s2f_stage_duration_us_total`): inputs, features, encoder,
  decoder, outputs inside execute(); the stub transfer is compute infer minus their sum.
Every round is reported on its own: a bimodal machine shows as rounds that disagree. Whole
requests and Triton's spans are medians; execute() stages are means on both sides (the served
model's counters hold sums), and the stub transfer is the mean compute infer minus their sum.

Then the floor: the same repository with `benchmarks/studies/floor_model.py` in the model's place, a
model that computes nothing. Round trips to it, AUDIO samples and the same clips as FLAC files
through AUDIO_FILE, interleaved with libsndfile decoding those files in process, show what the
served path costs a request before any compute (also with the model sleeping 10 ms, so that the
serving threads sleep through a request as they do at c=1), what ten Triton counter updates per
request cost (the stage metrics' old way), and what a FLAC file saves on the way in against
what decoding it costs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
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


def sample_inputs(grpc, audio: np.ndarray, rate: int) -> list:
    """AUDIO [1, samples] and SAMPLE_RATE [1, 1] for one clip."""
    samples = grpc.InferInput("AUDIO", [1, audio.size], "FP32")
    samples.set_data_from_numpy(audio.reshape(1, -1))
    rates = grpc.InferInput("SAMPLE_RATE", [1, 1], "INT32")
    rates.set_data_from_numpy(np.array([[rate]], np.int32))
    return [samples, rates]


def served_once(client, grpc, audio: np.ndarray, rate: int) -> dict[str, float]:
    start = time.perf_counter()
    inputs = sample_inputs(grpc, audio, rate)
    built = time.perf_counter()
    client.infer("speech2face", inputs).as_numpy("FACE_FEATURE")
    end = time.perf_counter()
    return {"client_serialization": (built - start) * 1e3, "client_round_trip": (end - built) * 1e3}


def local_once(runtime, audio: np.ndarray, rate: int) -> dict[str, float]:
    from speech2face.engine.features.resampling import validate_audio

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


def run_round(client, grpc, runtime, clips, requests: int, metrics_url: str, first: str,
              idle_s: float = 0.0) -> dict:
    from speech2face.engine.runtime.model_metrics import scrape, stage_means_ms, stage_totals

    def totals():  # what the instances have handed over: all but their last FLUSH_INTERVAL_S
        return stage_totals(scrape(metrics_url), "speech2face")

    before = totals()
    served, local = [], []
    for k in range(requests):
        audio, rate = clips[k % len(clips)]
        order = ("served", "local") if (k % 2 == 0) == (first == "served") else ("local", "served")
        for engine in order:
            time.sleep(idle_s)  # an idle machine between requests, or none (warm)
            if engine == "served":
                served.append(served_once(client, grpc, audio, rate))
            else:
                local.append(local_once(runtime, audio, rate))
    stages = stage_means_ms(before, totals())
    return {"served_requests": served, "served_stage_means_ms": stages,
            "local": {k: float(np.median([r[k] for r in local])) for k in local[0]},
            "local_means": {k: float(np.mean([r[k] for r in local])) for k in local[0]}}


def round_state(r: int, idle_ms: float) -> str:
    """Rounds alternate: warm (requests back to back), then idle (`idle_ms` of nothing before each)."""
    return "idle" if r % 2 == 1 and idle_ms > 0 else "warm"


def measure(rounds: int, requests: int, workdir: Path, overrides: dict | None = None,
            idle_ms: float = 50.0) -> dict:
    import tritonclient.grpc as grpc

    from speech2face.benchmarks.loadgen.clips import make_clips
    from speech2face.engine.runtime.builtin import default_bundle
    from speech2face.engine.runtime.local_runtime import LocalRuntime
    from speech2face.engine.server.launcher import ServerOptions, TritonServer
    from speech2face.engine.repository.model_configs import BatchingPolicy
    from speech2face.engine.repository.cpu_repository import read_build_record, write_cpu_repository

    # The default policy, as `s2f serve` writes it, unless --set changes a field.
    batching = dataclasses.replace(BatchingPolicy(), **(overrides or {}))
    repository = write_cpu_repository(default_bundle(), workdir / "repository", batching)
    policy = read_build_record(repository)["policy"]
    runtime = LocalRuntime(default_bundle(), options=batching.runtime_options())  # the served model's own
    clips = make_clips(8, 6.0)
    trace = workdir / "trace.json"
    trace_args = ("--trace-config", f"triton,file={trace}", "--trace-config", "rate=1",
                  "--trace-config", "level=TIMESTAMPS", "--trace-config", "count=-1")
    report = {"policy": policy, "idle_ms": idle_ms, "rounds": []}
    with TritonServer(ServerOptions(model_repository=repository, extra_args=trace_args)) as server:
        client = grpc.InferenceServerClient(server.grpc_url)
        metrics_url = f"http://127.0.0.1:{server.metrics_port}/metrics"
        run_round(client, grpc, runtime, clips, 20, metrics_url, "served")  # warm-up, not reported
        for r in range(rounds):
            state = round_state(r, idle_ms)
            report["rounds"].append(run_round(client, grpc, runtime, clips, requests, metrics_url,
                                              "served" if r % 4 < 2 else "local",
                                              idle_ms / 1e3 if state == "idle" else 0.0))
            report["rounds"][-1]["state"] = state
        client.close()
    spans = iter(trace_spans(trace)[20:])  # in arrival order, after the warm-up requests
    for round_report in report["rounds"]:
        rows = round_report.pop("served_requests")
        for row in rows:  # one request at a time: the trace's k-th request is the client's k-th
            row.update(next(spans))
            row["client_and_wire"] = row["client_round_trip"] - row["server_total"]
        round_report["served"] = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
        round_report["served_means"] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    report["floor"] = measure_floor(rounds, requests, workdir, clips, runtime)
    return report


FLOOR_MODEL = Path(__file__).with_name("floor_model.py")
FLOOR_WAIT_MS = 10  # about the real model's compute at c=1
STAGE_COUNTER_UPDATES = 10  # five stages, two counters: what a request cost when each went to Triton at once


def floor_once(client, grpc, payload, model: str = "speech2face") -> float:
    """ms for one round trip to the floor model: `payload` is (samples, rate) or a file's bytes."""
    if isinstance(payload, bytes):
        files = grpc.InferInput("AUDIO_FILE", [1, 1], "BYTES")
        files.set_data_from_numpy(np.array([payload], dtype=object).reshape(1, 1))
        inputs = [files]
    else:
        inputs = sample_inputs(grpc, *payload)
    start = time.perf_counter()
    client.infer(model, inputs).as_numpy("FACE_FEATURE")
    return (time.perf_counter() - start) * 1e3


def _floor_copy(repository: Path, name: str, **parameters: int) -> None:
    """Another floor model, `name`, with config parameters (floor_model.py: wait_ms, counter_updates)."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as pb

    shutil.copytree(repository / "speech2face", repository / name)
    config = text_format.Parse((repository / name / "config.pbtxt").read_text(), pb.ModelConfig())
    config.name = name
    for key, value in parameters.items():
        config.parameters[key].string_value = str(value)
    (repository / name / "config.pbtxt").write_text(text_format.MessageToString(config))


def measure_floor(rounds: int, requests: int, workdir: Path, clips, runtime) -> list[dict]:
    """Per round, medians: round trips to the floor model (samples, FLAC file), libsndfile's decode
    of those files in process, and the real model in process, interleaved request by request."""
    import tritonclient.grpc as grpc

    from speech2face.benchmarks.loadgen.clips import flac_file
    from speech2face.engine.contract.audio_files import decode_audio
    from speech2face.engine.server.launcher import ServerOptions, TritonServer

    repository = workdir / "floor-repository"
    shutil.copytree(workdir / "repository", repository)
    shutil.copyfile(FLOOR_MODEL, repository / "speech2face" / "1" / "model.py")
    _floor_copy(repository, "speech2face_wait", wait_ms=FLOOR_WAIT_MS)
    _floor_copy(repository, "speech2face_counters", counter_updates=STAGE_COUNTER_UPDATES)
    files = [flac_file(audio, rate)[0] for audio, rate in clips]
    steps = {
        "samples": lambda k: floor_once(client, grpc, clips[k % len(clips)]),
        "samples_wait": lambda k: floor_once(client, grpc, clips[k % len(clips)], "speech2face_wait") - FLOOR_WAIT_MS,
        "samples_counters": lambda k: floor_once(client, grpc, clips[k % len(clips)], "speech2face_counters"),
        "flac_file": lambda k: floor_once(client, grpc, files[k % len(files)]),
        "decode": lambda k: _timed(decode_audio, files[k % len(files)]),
        "in_process": lambda k: _timed(runtime.infer, *clips[k % len(clips)]),
    }
    report = []
    with TritonServer(ServerOptions(model_repository=repository)) as server:
        client = grpc.InferenceServerClient(server.grpc_url)
        for r in range(rounds + 1):  # round 0 warms up, unreported
            times: dict[str, list[float]] = {name: [] for name in steps}
            for k in range(requests if r else 20):
                names = list(steps) if (k + r) % 2 == 0 else list(steps)[::-1]
                for name in names:
                    times[name].append(steps[name](k))
            if r:
                report.append({name: float(np.median(v)) for name, v in times.items()})
        client.close()
    return report


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1e3


def floor_table(floor: list[dict]) -> str:
    """Markdown: the floor model's round trips and the in-process decode, one column per round."""
    rows = {
        "floor: round trip, AUDIO samples (384 KB of float32)": "samples",
        f"floor: round trip − {FLOOR_WAIT_MS} ms, AUDIO samples, the model sleeping {FLOOR_WAIT_MS} ms": "samples_wait",
        f"floor: round trip, AUDIO samples, {STAGE_COUNTER_UPDATES} counter updates per request": "samples_counters",
        "floor: round trip, AUDIO_FILE (16-bit FLAC, undecoded)": "flac_file",
        "in process: libsndfile decodes that FLAC": "decode",
        "in process: the real model (LocalRuntime.infer)": "in_process",
    }
    lines = ["| ms, medians | " + " | ".join(f"round {i + 1}" for i in range(len(floor))) + " |",
             "|---" * (len(floor) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(f"{r[key]:.2f}" for r in floor) + " |" for label, key in rows.items()]
    lines.append("| FLAC path − samples path, at best (file round trip + decode − samples round trip) | "
                 + " | ".join(f"{r['flac_file'] + r['decode'] - r['samples']:+.2f}" for r in floor) + " |")
    return "\n".join(lines)


def table(report: dict) -> str:
    """Markdown: one column per round (served | in process), one row per part of a request."""
    stage_names = ("inputs", "features", "encoder", "decoder", "outputs")
    rows: dict[str, list[str]] = {}

    def add(name: str, served: float | None, local: float | None = None) -> None:
        cell = f"{served:.2f}" if served is not None else ""
        rows.setdefault(name, []).append(cell + (f" / {local:.2f}" if local is not None else ""))

    for r in report["rounds"]:
        srv, st, loc, loc_means = r["served"], r["served_stage_means_ms"], r["local"], r["local_means"]
        add("client: build the request (serialization)", srv["client_serialization"])
        add("client + gRPC on the wire (round trip − server)", srv["client_and_wire"])
        add("Triton: gRPC read → request", srv["grpc_read_to_request"])
        add("Triton: queue", srv["queue"])
        add("Triton: compute input (tensors to the stub)", srv["compute_input"])
        add("stub transfer (mean compute infer − execute() stages)",
            r["served_means"]["compute_infer"] - sum(st.get(n, 0.0) for n in stage_names))
        for name in stage_names:
            add(f"execute(): {name} (mean)", st.get(name, 0.0), loc_means.get(name) if name != "outputs" else None)
        add("Triton: compute output", srv["compute_output"])
        add("Triton: response sent", srv["response_sent"])
        add("**total p50** (served / in process)", srv["client_serialization"] + srv["client_round_trip"],
            loc["total"])
    header = "| ms, medians unless marked (served / in process) | " + " | ".join(
        f"round {i + 1} ({r['state']})" for i, r in enumerate(report["rounds"])) + " |"
    lines = [header, "|---" * (len(report["rounds"]) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="rounds alternate warm and idle")
    parser.add_argument("--idle-ms", type=float, default=50.0,
                        help="idle rounds: the pause before each request (0: every round warm)")
    parser.add_argument("--requests", type=int, default=150, help="requests per round (and as many in process)")
    parser.add_argument("--out", default="benchmarks/results/breakdown")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=INT",
                        help="override a BatchingPolicy field, e.g. --set allow_spinning=1")
    args = parser.parse_args(argv)
    overrides = {k: int(v) for k, v in (item.split("=", 1) for item in args.set)}
    with tempfile.TemporaryDirectory(prefix="s2f-breakdown-") as workdir:
        report = measure(args.rounds, args.requests, Path(workdir), overrides, args.idle_ms)
    report["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "breakdown.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"policy: {report['policy']}")
    print(table(report))
    print()
    print(floor_table(report["floor"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

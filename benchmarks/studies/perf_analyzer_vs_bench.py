"""perf_analyzer (Triton's own load generator) beside `s2f bench`, on one server, the same cases and clips.

    make perf-analyzer    # installs perf_analyzer into .venv-perf, then runs this
    python benchmarks/studies/perf_analyzer_vs_bench.py [--perf-analyzer PATH] [--levels 1,8] [--window 6]

One server on the default repository, its admin APIs behind the key as `s2f serve` leaves them
(perf_analyzer passes the key with -H: benchmarks/loadgen/perf_analyzer.py). Cases: transport
(gRPC, HTTP, system shared memory over gRPC) x input (samples to `speech2face_samples`, files to
`speech2face_file`) x concurrency. In each case both tools run one after the other, the order
alternating from case to case, so that both see the same machine.

- perf_analyzer: `--concurrency-range C`, windows of `--window` / 3 seconds until 3 in a row agree
  within 50 % (its figures are those 3 windows; never stable in 10 windows: once more with windows
  twice as long), input data from `s2f perf-data` on the clips below.
  Its exit status must be 0 and the model's failure count on the server must not grow.
- s2f bench: its own load loop and Triton target (benchmarks/loadgen: the same client, no retries,
  every answer checked against the in-process feature), sent to the same per-form model
  (`s2f bench --url` always calls `speech2face`), `--warmup` then a `--window` second window.
  Its shared-memory mode carries samples only (a file goes inline), so shm x files is perf_analyzer's.

The clips: `s2f bench`'s 8 synthetic 6 s clips as 16-bit FLAC files; samples are their decoded
samples, files their FLAC bytes, for both tools.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from speech2face.benchmarks.loadgen.clips import flac_file, make_clips
from speech2face.benchmarks.loadgen.measure import sweep
from speech2face.benchmarks.loadgen.perf_analyzer import PerfResult, find_perf_analyzer, measure
from speech2face.benchmarks.loadgen.perf_data import write_perf_data
from speech2face.benchmarks.loadgen.targets import TritonTarget
from speech2face.engine import contract

TRANSPORTS = ("grpc", "http", "shm")           # shm: system shared memory, over gRPC
INPUTS = {"samples": contract.SAMPLES_MODEL, "files": contract.FILE_MODEL}


class FormTarget(TritonTarget):
    """s2f bench's Triton target, its requests sent to one per-form model."""

    def __init__(self, model: str, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    async def infer(self, payload):
        if isinstance(payload, bytes):
            return (await self.client.infer_file(payload, model=self.model)).feature
        return (await self.client.infer(*payload, model=self.model)).feature


def failures(url: str, model: str) -> int:
    """The server's failed-request count for `model` so far."""
    import tritonclient.grpc as grpc

    stats = grpc.InferenceServerClient(url).get_inference_statistics(model, as_json=True)
    return sum(int(m["inference_stats"]["fail"].get("count", 0)) for m in stats["model_stats"])


def run_perf_analyzer(binary, server, transport, inputs, level, data, window_s) -> dict:
    model, protocol = INPUTS[inputs], "http" if transport == "http" else "grpc"
    url = server.http_url if protocol == "http" else server.grpc_url
    before = failures(server.grpc_url, model)
    for window_ms in (round(window_s * 1000 / 3), round(window_s * 2000 / 3)):   # once more, longer, if unstable
        result: PerfResult = measure(binary, model, url, protocol, data[inputs], level,
                                     shared_memory=transport == "shm", window_ms=window_ms)
        if not result.unstable:
            break
    failed = failures(server.grpc_url, model) - before
    if not result.ok:
        print(f"perf_analyzer failed (exit {result.returncode}):\n{result.output}", file=sys.stderr)
    return {"rps": result.throughput_rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
            "exit": result.returncode, "unstable": result.unstable,
            "errors": failed + (not result.ok and not result.unstable)}


def run_bench(server, transport, inputs, level, payloads, expected, warmup_s, window_s) -> dict | None:
    if transport == "shm" and inputs == "files":
        return None
    target = FormTarget(INPUTS[inputs], name=f"{transport}-{inputs}", url=server.grpc_url if transport != "http"
                        else server.http_url, protocol="http" if transport == "http" else "grpc",
                        send="shm" if transport == "shm" else "samples")
    [result] = asyncio.run(sweep(target, payloads[inputs], "concurrency", [level], warmup_s, window_s, expected,
                                 log=lambda _: None))
    for example in result.error_examples:
        print(f"s2f bench error: {example}", file=sys.stderr)
    return {"rps": result.throughput_rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
            "errors": result.errors, "wrong": result.wrong}


def _cell(value: float, digits: int = 1) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def table(rows: list[dict]) -> str:
    lines = ["| case | perf_analyzer req/s | p50 ms | p99 ms | s2f bench req/s | p50 ms | p99 ms "
             "| errors (perf_analyzer / s2f bench) |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        pa, bench = row["perf_analyzer"], row["bench"] or {}
        errors = f"{pa['errors']}{' (unstable)' if pa['unstable'] else ''} / " + \
            (f"{bench['errors'] + bench['wrong']}" if bench else "n/a")
        lines.append(f"| {row['case']} | {_cell(pa['rps'], 2)} | {_cell(pa['p50_ms'])} | {_cell(pa['p99_ms'])} | "
                     f"{_cell(bench.get('rps'), 2)} | {_cell(bench.get('p50_ms'))} | {_cell(bench.get('p99_ms'))} | "
                     f"{errors} |")
    return "\n".join(lines)


def clips_and_data(folder: Path):
    """(payloads per input, expected features, perf_analyzer input-data files) for s2f bench's clips."""
    from speech2face.engine.runtime.builtin import default_bundle
    from speech2face.engine.runtime.local_runtime import LocalRuntime

    files, decoded = [], []
    for k, (audio, rate) in enumerate(make_clips()):
        data, samples = flac_file(audio, rate)
        (folder / f"clip{k}.flac").write_bytes(data)
        files.append(data)
        decoded.append((samples, rate))
    runtime = LocalRuntime(default_bundle(), intra_op_threads=2)
    expected = [runtime.infer(audio, rate).feature for audio, rate in decoded]
    data = write_perf_data(sorted(folder.glob("clip*.flac"), key=lambda p: int(p.stem[4:])), folder / "perf-data")
    return {"samples": decoded, "files": files}, expected, data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--perf-analyzer", help="the binary (default: $S2F_PERF_ANALYZER, else .venv-perf's)")
    parser.add_argument("--levels", default="1,8", help="concurrencies")
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    parser.add_argument("--inputs", default=",".join(INPUTS))
    parser.add_argument("--window", type=float, default=6.0, help="seconds measured per case and tool")
    parser.add_argument("--warmup", type=float, default=2.0, help="s2f bench's warm-up seconds")
    parser.add_argument("--out", default="benchmarks/results/perf_analyzer", help="folder for results.json")
    args = parser.parse_args(argv)
    binary = find_perf_analyzer(args.perf_analyzer)
    if binary is None:
        print("no perf_analyzer: `make perf-analyzer` installs one into .venv-perf", file=sys.stderr)
        return 2
    from speech2face.engine.repository.cpu_repository import write_default_repository
    from speech2face.engine.server.launcher import ServerOptions, TritonServer

    cases = [(t, i, int(c)) for t in args.transports.split(",") for i in args.inputs.split(",")
             for c in args.levels.split(",")]
    started, rows = time.perf_counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        payloads, expected, data = clips_and_data(Path(tmp))
        with TritonServer(ServerOptions(model_repository=write_default_repository(Path(tmp) / "repo"))) as server:
            for n, (transport, inputs, level) in enumerate(cases):
                row = {"case": f"{transport} {inputs} c={level}"}
                for name in (("perf_analyzer", "bench") if n % 2 == 0 else ("bench", "perf_analyzer")):
                    row[name] = (run_perf_analyzer(binary, server, transport, inputs, level, data, args.window)
                                 if name == "perf_analyzer" else
                                 run_bench(server, transport, inputs, level, payloads, expected, args.warmup,
                                           args.window))
                print(f"{row['case']}: perf_analyzer {row['perf_analyzer']}  s2f bench {row['bench']}", flush=True)
                rows.append(row)
    wall = time.perf_counter() - started
    print(table(rows))
    print(f"wall time {wall:.0f} s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"rows": rows, "wall_s": wall, "args": vars(args)}, indent=2))
    failed = [r["case"] for r in rows if r["perf_analyzer"]["errors"] or r["perf_analyzer"]["unstable"]
              or (r["bench"] and r["bench"]["errors"] + r["bench"]["wrong"])]
    if failed:
        print(f"errors or no stable perf_analyzer figures in: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

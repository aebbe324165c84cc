"""`s2f bench` (and `python -m speech2face.benchmarks.loadgen`): the comparison, or one running server.

    s2f bench                                               # every engine, one round
    s2f bench --targets triton,ort --rounds 3 --levels 1,8  # interleaved rounds, each reported
    s2f bench --url 127.0.0.1:8001 --levels 1,8             # one running server
    s2f bench --mode poisson --levels 2,4,8                 # open-loop Poisson arrivals at these rates

Writes results.csv, results.json and throughput_vs_p99.png into --out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path

from speech2face.benchmarks.loadgen.clips import RATE, make_clips
from speech2face.benchmarks.loadgen.engines import ALL_TARGETS, DEFAULT_TARGETS, TRITON_TARGETS, compare
from speech2face.benchmarks.loadgen.measure import sweep
from speech2face.benchmarks.loadgen.report import format_goal, goals, summary_table, write_results
from speech2face.benchmarks.loadgen.targets import TritonTarget


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="benchmark this running Triton server only (host:port)")
    parser.add_argument("--protocol", choices=("grpc", "http"), default="grpc", help="with --url")
    parser.add_argument("--send", choices=("samples", "file", "shm"), default="samples",
                        help="with --url: AUDIO samples, FLAC files (AUDIO_FILE) or shared memory")
    parser.add_argument("--targets", default=",".join(DEFAULT_TARGETS),
                        help=f"without --url: engines to compare, from {','.join(ALL_TARGETS)}")
    parser.add_argument("--rounds", type=int, default=1,
                        help="passes over the targets, interleaved; every round is reported on its own")
    parser.add_argument("--mode", choices=("concurrency", "poisson"), default="concurrency")
    parser.add_argument("--levels", default=None,
                        help="concurrency levels, or request rates (req/s) in poisson mode "
                             "(default 1,2,4,8,16 / 2,4,8,12)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each level")
    parser.add_argument("--window", type=float, default=8.0, help="seconds measured at each level")
    parser.add_argument("--clips", type=int, default=8, help="distinct clips, used round-robin")
    parser.add_argument("--seconds", type=float, default=6.0, help="clip length (the model's clip is 6 s)")
    parser.add_argument("--bundle", help="model bundle (default: the built-in model)")
    parser.add_argument("--out", default="benchmarks/results/load", help="folder for CSV, JSON and PNG")


def _levels(args) -> list[float]:
    default = "1,2,4,8,16" if args.mode == "concurrency" else "2,4,8,12"
    levels = [float(x) for x in (args.levels or default).split(",")]
    if args.mode == "concurrency" and any(level < 1 or level != int(level) for level in levels):
        raise ValueError("concurrency levels must be whole numbers >= 1")
    if args.window <= 0 or args.warmup < 0 or args.rounds < 1:
        raise ValueError("--window must be > 0, --warmup >= 0 and --rounds >= 1")
    return levels


def _one_server(args, clips, levels, bundle):
    from speech2face.engine.runtime.builtin import default_bundle
    from speech2face.engine.runtime.local_runtime import LocalRuntime

    runtime = LocalRuntime(bundle or default_bundle(), intra_op_threads=2)
    target = TritonTarget("triton", args.url, args.protocol, send=args.send)
    payloads, seen = target.prepare(clips)
    expected = [runtime.infer(a, r).feature for a, r in seen]
    results = []
    for round_no in range(1, args.rounds + 1):
        results += asyncio.run(sweep(target, payloads, args.mode, levels, args.warmup, args.window,
                                     expected, round_no=round_no))
    return results, [target.describe()]


def run(args) -> int:
    from speech2face.engine.contract.bundle import load_bundle

    levels = _levels(args)
    clips = make_clips(args.clips, args.seconds)
    bundle = load_bundle(args.bundle) if args.bundle else None
    meta = {"mode": args.mode, "levels": levels, "warmup_s": args.warmup, "window_s": args.window,
            "rounds": args.rounds, "clips": args.clips, "clip_seconds": args.seconds, "rate": RATE,
            "cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if args.url:
        results, meta["engines"] = _one_server(args, clips, levels, bundle)
    else:
        targets = [t.strip() for t in args.targets.split(",") if t.strip()]
        results, meta["engines"] = compare(targets, clips, args.mode, levels, args.warmup, args.window, bundle,
                                           rounds=args.rounds)
    meta["goals"] = goals(results, TRITON_TARGETS)
    paths = write_results(results, Path(args.out), meta)
    print(summary_table(results))
    for key, values in meta["goals"].items():
        print(format_goal(key, values))
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m speech2face.benchmarks.loadgen") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="speech2face load generator")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ValueError as error:   # bad levels, targets or durations: one line, exit 2, like other usage errors
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2

"""`s2f tune`: a small Model Analyzer for the cpu target (engine/repository/tuning.py), run against a
live server; the load is the load generator's closed loop."""

from __future__ import annotations

import asyncio

from speech2face.engine.cli.common import add_server_options, int_list, repository, server_options


def add(commands) -> None:
    tuning = commands.add_parser("tune", help="sweep instances, queue delay and max batch; write the best config")
    tuning.add_argument("--repository", required=True,
                        help="cpu repository to tune and rewrite (write one with `s2f export --target cpu`)")
    tuning.add_argument("--url", help="gRPC host:port of a server started with --model-control explicit "
                                      "on that repository (default: start one)")
    tuning.add_argument("--audio", help="clip to send (default: the bundled sample)")
    tuning.add_argument("--concurrency", type=int, default=8)
    tuning.add_argument("--window", type=float, default=5.0, help="seconds measured per candidate")
    tuning.add_argument("--instances", type=int_list, default=[1, 2])
    tuning.add_argument("--delays", type=int_list, default=[0, 2000, 8000], help="max queue delays, us")
    tuning.add_argument("--max-batch", type=int_list, default=[8, 32])
    tuning.add_argument("--threads", type=int_list, default=None,
                        help="threads per instance (ONNX Runtime and feature kernel); default: as written")
    tuning.add_argument("--lanes", type=int_list, default=None,
                        help="fused model: single-thread lanes a batch is split over (0: none); default: as written")
    tuning.add_argument("--preferred", type=int_list, default=None,
                        help="dynamic batcher's preferred batch sizes to try (0: batch every queued request); "
                             "default: as written")
    tuning.add_argument("--pin", type=int_list, default=None,
                        help="fused model: pin a lone request's threads to CPUs of their own (0/1); "
                             "default: as written")
    tuning.add_argument("--p99-budget-ms", type=float, help="pick the fastest candidate within this p99")
    add_server_options(tuning)
    tuning.set_defaults(run=run)


def measure(url: str, candidate, audio, rate: int, concurrency: int, window_s: float, warmup_s: float = 1.0):
    """The load generator's closed loop (no retries) on one clip, after a warm-up."""
    from speech2face.benchmarks.loadgen.measure import run_concurrency
    from speech2face.benchmarks.loadgen.targets import TritonTarget
    from speech2face.engine.repository.tuning import Measurement

    async def run_loop():
        target = TritonTarget("tune", url)
        await target.open()
        try:
            return await run_concurrency(target, [(audio, rate)], concurrency, warmup_s, window_s)
        finally:
            await target.close()

    level = asyncio.run(run_loop())
    return Measurement(candidate, level.throughput_rps, level.p50_ms, level.p99_ms, level.errors)


def _sweep(args, repo, candidates, audio, rate) -> list:
    from speech2face.engine.client import Speech2FaceClient
    from speech2face.engine.repository import tuning
    from speech2face.engine.server.launcher import TritonServer

    args.model_control = "explicit"
    server = None if args.url else TritonServer(server_options(args, repo)).start()
    url = args.url or server.grpc_url
    results = []
    try:
        control = Speech2FaceClient(url)   # its load_model carries the admin key (engine/contract/admin_key.py)
        for candidate in candidates:
            tuning.configure(control, repo, candidate)
            result = measure(url, candidate, audio, rate, args.concurrency, args.window)
            results.append(result)
            print(f"{candidate.label():<54} {result.throughput:7.1f} req/s  p50 {result.p50_ms:7.1f} ms  "
                  f"p99 {result.p99_ms:7.1f} ms  errors {result.errors}", flush=True)
    finally:
        if server is not None:
            server.stop()
    return results


def run(args) -> int:
    from speech2face.engine.contract.audio_files import read_audio
    from speech2face.engine.repository import tuning
    from speech2face.engine.runtime.builtin import SAMPLE_VOICE

    repo = repository(args)
    audio, rate = read_audio(args.audio or SAMPLE_VOICE)
    candidates = tuning.candidates(args.instances, args.delays, args.max_batch, args.threads, args.lanes,
                                   args.preferred, args.pin)
    results = _sweep(args, repo, candidates, audio, rate)
    print(f"\nfrontier (throughput vs p99 at concurrency {args.concurrency}):")
    for r in sorted(tuning.frontier(results), key=lambda r: r.p99_ms):
        print(f"  {r.candidate.label():<54} {r.throughput:7.1f} req/s  p99 {r.p99_ms:7.1f} ms")
    chosen = tuning.choose(results, args.p99_budget_ms)
    tuning.write_choice(repo, chosen.candidate)
    print(f"\nchosen: {chosen.candidate.label()}; written to {repo}")
    return 0

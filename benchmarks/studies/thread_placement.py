"""Why c=1 latency is bimodal: the same model under different thread settings, idle gaps and placements.

    python benchmarks/studies/thread_placement.py [--runs 200] [--gaps-ms 0,3,50] [--out benchmarks/results/placement]

Run it on an otherwise idle machine: that is the state it is about. In process, the LocalRuntime
(2 threads) runs one clip at a time, back to back (gap 0) or with a sleep between runs (3 ms:
what a server sees between requests at c=1; 50 ms: a server at low traffic), in each runtime
option: ONNX Runtime workers sleeping between operators, spinning within a run, pinned to their
own CPUs (the default since the 50 ms gap was measured).
Then the same options served by tritonserver at c=1 (plain tritonclient gRPC). For every
variant: p50 and p90 of the model's own time, and how often the worker thread last ran on the
calling thread's CPU (1.0: the two threads shared a CPU, so the second thread bought nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

VARIANTS = {  # name: RuntimeOptions / BatchingPolicy fields
    "sleeping workers": {"spinning": False, "pin_threads": False},
    "spinning within a run": {"spinning": True, "pin_threads": False},
    "pinned, sleeping": {"spinning": False, "pin_threads": True},
    "pinned, spinning": {"spinning": True, "pin_threads": True},
}


def last_cpu(tid: int) -> int:
    return int(open(f"/proc/{os.getpid()}/task/{tid}/stat").read().rsplit(")", 1)[1].split()[36])


def in_process(bundle, clip, fields: dict, runs: int, gap_s: float) -> dict:
    import threading

    from speech2face.engine.runtime.local_runtime import LocalRuntime, RuntimeOptions

    before = set(os.listdir(f"/proc/{os.getpid()}/task"))
    runtime = LocalRuntime(bundle, options=RuntimeOptions(threads=2, **fields))
    workers = [int(t) for t in set(os.listdir(f"/proc/{os.getpid()}/task")) - before]
    caller = threading.get_native_id()
    times, shared = [], []
    for k in range(runs + 20):
        start = time.perf_counter()
        runtime.run([clip])
        if k >= 20:
            times.append((time.perf_counter() - start) * 1e3)
            shared.append(any(last_cpu(w) == last_cpu(caller) for w in workers))
        if gap_s:
            time.sleep(gap_s)
    os.sched_setaffinity(0, set(range(os.cpu_count())))  # unpin this thread for the next variant
    return {"p50_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)),
            "shared_cpu": float(np.mean(shared))}


def served(bundle, clip, fields: dict, runs: int, workdir: Path) -> dict:
    import tritonclient.grpc as grpc

    from speech2face.engine.server.launcher import ServerOptions, TritonServer
    from speech2face.engine.repository.model_configs import BatchingPolicy
    from speech2face.engine.repository.cpu_repository import write_cpu_repository

    # One instance of 2 threads, the setting whose c=1 latency was bimodal, with this variant's threads.
    policy = BatchingPolicy(instances=1, adaptive_threads=False, concurrent_runs=0,
                            allow_spinning=fields["spinning"], pin_threads=fields["pin_threads"])
    repository = write_cpu_repository(bundle, workdir / "repository", policy)
    times = []
    with TritonServer(ServerOptions(model_repository=repository)) as server:
        client = grpc.InferenceServerClient(server.grpc_url)
        for k in range(runs + 20):
            audio = grpc.InferInput("AUDIO", [1, clip.size], "FP32")
            audio.set_data_from_numpy(clip.reshape(1, -1))
            rate = grpc.InferInput("SAMPLE_RATE", [1, 1], "INT32")
            rate.set_data_from_numpy(np.array([[16000]], np.int32))
            start = time.perf_counter()
            client.infer("speech2face", [audio, rate])
            if k >= 20:
                times.append((time.perf_counter() - start) * 1e3)
        client.close()
    return {"p50_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90))}


def main(argv: list[str] | None = None) -> int:
    from speech2face.benchmarks.loadgen.clips import make_clips
    from speech2face.engine.runtime.builtin import default_bundle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--gaps-ms", default="0,3,50", help="idle gaps between in-process runs, ms")
    parser.add_argument("--out", default="benchmarks/results/placement")
    args = parser.parse_args(argv)
    bundle, clip = default_bundle(), make_clips(1, 6.0)[0][0]
    rows = []
    for name, fields in VARIANTS.items():
        for gap in (float(g) / 1e3 for g in args.gaps_ms.split(",")):
            rows.append({"engine": "in process", "variant": name, "gap_ms": gap * 1e3,
                         **in_process(bundle, clip, fields, args.runs, gap)})
            print(rows[-1], flush=True)
    for name, fields in VARIANTS.items():
        with tempfile.TemporaryDirectory(prefix="s2f-placement-") as workdir:
            rows.append({"engine": "served (c=1)", "variant": name, **served(bundle, clip, fields, args.runs,
                                                                              Path(workdir))})
        print(rows[-1], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "placement.json").write_text(json.dumps({"load_average": os.getloadavg(), "rows": rows}, indent=2))
    print("\n| engine | variant | gap | p50 ms | p90 ms | worker on the caller's CPU |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {r['variant']} | {r.get('gap_ms', '')} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} "
              f"| {r.get('shared_cpu', '')} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

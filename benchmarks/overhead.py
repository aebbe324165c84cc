"""Triton's serving overhead at concurrency 1, measured interleaved with the in-process runtime.

Sequential engine runs (`s2f bench`) drift with a shared machine's load by more than the ~1 ms
being measured. Here each iteration sends one clip to the server (sync gRPC client) and runs the
same clip through the in-process LocalRuntime (same ONNX graphs, same thread count), alternating
which goes first, so both see the same machine state. Reported: the medians, their ratio, and the
median of the paired differences.

    python benchmarks/overhead.py [--layouts fused,ensemble] [--iterations 300] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def measure(url: str, runtime, clips, iterations: int, warmup: int = 20) -> dict:
    from speech2face.engine.client import Speech2FaceClient

    served_ms, local_ms = [], []
    with Speech2FaceClient(url) as client:
        for k in range(warmup + iterations):
            audio, rate = clips[k % len(clips)]
            timings = {}
            for engine in (("served", "local") if k % 2 == 0 else ("local", "served")):
                start = time.perf_counter()
                if engine == "served":
                    client.infer(audio, rate)
                else:
                    runtime.infer(audio, rate)
                timings[engine] = (time.perf_counter() - start) * 1e3
            if k >= warmup:
                served_ms.append(timings["served"])
                local_ms.append(timings["local"])
    served, local = np.array(served_ms), np.array(local_ms)
    return {"iterations": iterations, "served_p50_ms": float(np.median(served)),
            "local_p50_ms": float(np.median(local)), "served_mean_ms": float(served.mean()),
            "local_mean_ms": float(local.mean()),
            "overhead_p50": float(np.median(served) / np.median(local) - 1),
            "paired_difference_p50_ms": float(np.median(served - local))}


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from loadgen import make_clips

    from speech2face.engine.builtin import default_bundle
    from speech2face.engine.local_runtime import LocalRuntime
    from speech2face.engine.server import ServerOptions, TritonServer
    from speech2face.export.repository import write_cpu_repository

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", default="fused,ensemble")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--out", default="benchmarks/results/load")
    args = parser.parse_args(argv)
    bundle = default_bundle()
    runtime = LocalRuntime(bundle, intra_op_threads=2)
    clips = make_clips(8, 6.0)
    report = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "layouts": {}}
    with tempfile.TemporaryDirectory(prefix="s2f-overhead-") as workdir:
        for layout in args.layouts.split(","):
            repository = write_cpu_repository(bundle, Path(workdir) / layout, layout=layout)
            with TritonServer(ServerOptions(model_repository=repository)) as server:
                result = measure(server.grpc_url, runtime, clips, args.iterations)
            report["layouts"][layout] = result
            print(f"{layout:>9}: served p50 {result['served_p50_ms']:.2f} ms, in-process p50 "
                  f"{result['local_p50_ms']:.2f} ms, overhead {100 * result['overhead_p50']:+.1f} % "
                  f"(paired difference p50 {result['paired_difference_p50_ms']:+.2f} ms)", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

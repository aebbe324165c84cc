"""The CPU ceiling of the built-in model on this machine, with no serving at all.

Each configuration runs `processes` copies of the in-process LocalRuntime (ONNX Runtime with
`threads` intra-op threads each, C++ features), every copy calling `run` on batches of `batch`
identical 6 s clips in a tight loop for a fixed time. The sum of their clips per second is what
any server of this model could reach at best on these cores, whatever its protocol.

    python benchmarks/studies/cpu_ceiling.py 1x2x1 2x1x1 2x2x1 1x2x8     # processes x threads x batch
"""

from __future__ import annotations

import multiprocessing
import sys
import time

import numpy as np


def _worker(threads: int, batch: int, seconds: float, results) -> None:
    from speech2face.engine.runtime.builtin import default_bundle
    from speech2face.engine.runtime.local_runtime import LocalRuntime

    runtime = LocalRuntime(default_bundle(), threads)
    clips = [(np.random.default_rng(0).standard_normal(96000) * 0.1).astype(np.float32)] * batch
    for _ in range(3):
        runtime.run(clips)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        runtime.run(clips)
        done += batch
    results.put(done / (time.perf_counter() - start))


def clips_per_second(processes: int, threads: int, batch: int, seconds: float = 8.0) -> float:
    results = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_worker, args=(threads, batch, seconds, results))
               for _ in range(processes)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(results.get() for _ in workers)


def main(argv: list[str]) -> None:
    for text in argv or ["1x2x1", "2x1x1", "2x2x1", "1x2x8"]:
        processes, threads, batch = (int(v) for v in text.split("x"))
        rate = clips_per_second(processes, threads, batch)
        print(f"{processes} process(es) x {threads} thread(s), batch {batch}: {rate:6.1f} clips/s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

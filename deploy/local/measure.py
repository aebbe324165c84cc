"""The numbers behind docs/DEPLOY.md: `s2f serve` start-up time on the built-in model (what the
startup probe is sized from) and one replica's capacity on this machine's CPUs.

    python -m deploy.local.measure [--starts 3] [--window 10] [--levels 1,2,4,8,16]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from speech2face.engine.contract.audio_files import read_audio
from speech2face.engine.runtime.builtin import SAMPLE_VOICE, default_bundle
from speech2face.engine.server.launcher import free_port

from deploy.local.load import Load
from deploy.local.replicas import Replica, write_versioned_repository


def startup_seconds(repository: Path) -> float:
    """From launching `s2f serve` to /v2/health/ready answering 200 (then SIGTERM)."""
    http, grpc, metrics = free_port(), free_port(), free_port()
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "speech2face.engine.cli.main", "serve",
                                "--repository", str(repository), "--http-port", str(http),
                                "--grpc-port", str(grpc), "--metrics-port", str(metrics)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - start
            except OSError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"s2f serve exited with {process.returncode}")
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def resident_mib(pid: int) -> dict[str, float]:
    """Resident memory of a server's process group (tritonserver and its Python backend stubs), MiB."""
    group = os.getpgid(pid)
    rows = subprocess.run(["ps", "-eo", "pgid=,rss=,comm="], capture_output=True, text=True, check=True).stdout
    memory: dict[str, float] = {}
    for pgid, rss, name in (line.split(None, 2) for line in rows.splitlines()):
        if int(pgid) == group:
            memory[name] = memory.get(name, 0.0) + int(rss) / 1024
    return memory


def capacity(repository: Path, levels: list[int], window_s: float) -> list[tuple[int, float, float, float]]:
    """(concurrency, requests/s, p50 ms, p99 ms) of one replica, closed loop, the bundled clip."""
    audio, rate = read_audio(SAMPLE_VOICE)
    replica = Replica("r0", free_port(), free_port(), free_port())
    replica.start(repository)
    rows = []
    try:
        for level in levels:
            with Load(f"127.0.0.1:{replica.grpc_port}", np.asarray(audio, np.float32), rate, level) as load:
                time.sleep(2.0)  # warm-up, not counted
                ok0, _ = load.snapshot()
                load.latencies.clear()
                time.sleep(window_s)
                ok1, _ = load.snapshot()
                latencies = np.array(load.latencies) * 1e3
            rows.append((level, (ok1 - ok0) / window_s, float(np.percentile(latencies, 50)),
                         float(np.percentile(latencies, 99))))
        memory = resident_mib(replica.server.pid)
        print(f"resident memory after the load: {sum(memory.values()):.0f} MiB "
              f"({', '.join(f'{name} {mib:.0f}' for name, mib in memory.items())})")
    finally:
        replica.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per concurrency level")
    parser.add_argument("--levels", default="1,2,4,8,16")
    args = parser.parse_args(argv)
    repository = write_versioned_repository(default_bundle(), Path(tempfile.mkdtemp()) / "repository", 1)
    print(f"machine: {os.cpu_count()} CPUs; built-in model, cpu target, fused layout; clip {SAMPLE_VOICE.name}")
    starts = [startup_seconds(repository) for _ in range(args.starts)]
    print(f"s2f serve start-up to ready: median {statistics.median(starts):.2f} s, max {max(starts):.2f} s "
          f"({args.starts} starts)")
    print("concurrency  requests/s  p50 ms  p99 ms")
    for level, rps, p50, p99 in capacity(repository, [int(v) for v in args.levels.split(",")], args.window):
        print(f"{level:>11}  {rps:>10.1f}  {p50:>6.0f}  {p99:>6.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

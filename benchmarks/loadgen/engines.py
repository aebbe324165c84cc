"""Starting each engine for a comparison, one at a time, in interleaved rounds.

- triton          the default cpu repository as `s2f serve` writes it (fused layout), gRPC, AUDIO samples
- triton-file     the same, each clip sent as a 16-bit FLAC file through AUDIO_FILE
- triton-shm      the same, samples through system shared memory (a co-located client)
- triton-anybatch the default with batches of every queued request (before preferred_batch_size 1)
- triton-unpinned the default without pinning a lone request's threads (before pin_threads)
- triton-1x2      the fused layout with 1 instance of 2 threads, any batch (the default before adaptive threads)
- triton-2x1      the fused layout with 2 instances of 1 thread each
- triton-2x2      the fused layout with 2 instances of 2 threads that do not adapt to each other
- triton-ensemble the ensemble layout (preprocess -> voice_encoder -> face_decoder)
- triton-nobatch  the fused layout with max_batch_size=1 (dynamic batching off)
- triton-http     the fused layout over HTTP
- fastapi         benchmarks/loadgen/fastapi_baseline.py: FastAPI + uvicorn + ONNX Runtime, a subprocess
- ort             in process: LocalRuntime (C++ features + ONNX Runtime) with the options the default
                  repository serves with, no server
- torch           in process: C++ features + the PyTorch checkpoint, eager
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from speech2face.benchmarks.loadgen.measure import LevelResult, sweep
from speech2face.benchmarks.loadgen.targets import (FastAPITarget, InProcessTarget, Target, TritonTarget, ort_function,
                                       served_options, torch_function)

DEFAULT_TARGETS = ("triton", "triton-file", "triton-shm", "triton-1x2", "triton-2x1", "triton-ensemble",
                   "triton-nobatch", "fastapi", "ort", "torch")


@dataclasses.dataclass(frozen=True)
class TritonSetup:
    layout: str = "fused"
    policy: tuple = ()            # BatchingPolicy fields that differ from the default
    protocol: str = "grpc"
    send: str = "samples"


TRITON_TARGETS = {
    "triton": TritonSetup(),
    "triton-file": TritonSetup(send="file"),
    "triton-shm": TritonSetup(send="shm"),
    "triton-anybatch": TritonSetup(policy=(("preferred_batch_size", 0),)),
    "triton-unpinned": TritonSetup(policy=(("pin_threads", False),)),
    "triton-1x2": TritonSetup(policy=(("instances", 1), ("adaptive_threads", False), ("concurrent_runs", 0),
                                      ("preferred_batch_size", 0), ("pin_threads", False))),
    "triton-2x1": TritonSetup(policy=(("instances", 2), ("intra_op_threads", 1), ("adaptive_threads", False))),
    "triton-2x2": TritonSetup(policy=(("adaptive_threads", False), ("concurrent_runs", 0))),
    "triton-ensemble": TritonSetup(layout="ensemble"),
    "triton-nobatch": TritonSetup(policy=(("max_batch_size", 1),)),
    "triton-http": TritonSetup(protocol="http"),
}
ALL_TARGETS = (*TRITON_TARGETS, "fastapi", "ort", "torch")


@contextlib.contextmanager
def _fastapi(bundle_dir: Path, threads: int = 2, startup_timeout_s: float = 120.0):
    from speech2face.engine.server.launcher import free_port

    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="s2f-fastapi-", suffix=".log", delete=False)
    process = subprocess.Popen([sys.executable, "-m", "speech2face.benchmarks.loadgen.fastapi_baseline",
                                "--bundle", str(bundle_dir),
                                "--port", str(port), "--threads", str(threads)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the FastAPI baseline exited: {Path(log.name).read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the FastAPI baseline did not start") from None
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        os.unlink(log.name)


def _triton_target(name: str, bundle, workdir: Path, stack: contextlib.ExitStack) -> Target:
    from speech2face.engine.server.launcher import ServerOptions, TritonServer
    from speech2face.engine.repository.cpu_repository import default_policy, write_cpu_repository

    setup = TRITON_TARGETS[name]
    policy = dataclasses.replace(default_policy(setup.layout), **dict(setup.policy))
    repository = workdir / f"repo-{setup.layout}-{'-'.join(f'{k}{v}' for k, v in setup.policy) or 'default'}"
    if not repository.exists():
        write_cpu_repository(bundle, repository, policy, setup.layout)
    server = stack.enter_context(TritonServer(ServerOptions(model_repository=repository)))
    url = server.http_url if setup.protocol == "http" else server.grpc_url
    return TritonTarget(name, url, setup.protocol, f"{setup.layout} layout, {dataclasses.asdict(policy)}", setup.send,
                        metrics_url=f"http://127.0.0.1:{server.metrics_port}/metrics")


def open_target(name: str, bundle, workdir: Path, stack: contextlib.ExitStack) -> Target:
    """The engine `name`, started inside `stack` (servers stop when it closes)."""
    if name in TRITON_TARGETS:
        return _triton_target(name, bundle, workdir, stack)
    if name == "fastapi":
        return FastAPITarget(name, stack.enter_context(_fastapi(bundle.directory)))
    if name == "ort":
        options = served_options()
        return InProcessTarget(name, ort_function(bundle, options),
                               f"LocalRuntime with the default repository's options {dataclasses.asdict(options)}")
    fn, source = torch_function(bundle)
    return InProcessTarget(name, fn, f"PyTorch eager (2 threads) from {source}")


def compare(targets, clips, mode: str, levels, warmup_s: float, window_s: float, bundle=None,
            workdir: Path | None = None, log=print, rounds: int = 1) -> tuple[list[LevelResult], list[dict]]:
    """Each named engine in turn on the same clips, the whole list `rounds` times (interleaved:
    a, b, a, b), each engine's answers checked against the in-process runtime."""
    from speech2face.engine.runtime.builtin import default_bundle
    from speech2face.engine.runtime.local_runtime import LocalRuntime

    unknown = set(targets) - set(ALL_TARGETS)
    if unknown:
        raise ValueError(f"unknown targets {sorted(unknown)}; choose from {', '.join(ALL_TARGETS)}")
    bundle = bundle or default_bundle()
    runtime = LocalRuntime(bundle, intra_op_threads=2)
    results: list[LevelResult] = []
    engines: list[dict] = []
    with contextlib.ExitStack() as stack:
        workdir = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="s2f-bench-")))
        for round_no in range(1, rounds + 1):
            for name in targets:
                log(f"-- round {round_no}: {name}")
                with contextlib.ExitStack() as engine:
                    target = open_target(name, bundle, workdir, engine)
                    payloads, seen = target.prepare(clips)
                    expected = [runtime.infer(a, r).feature for a, r in seen]
                    if round_no == 1:
                        engines.append(target.describe())
                    results += asyncio.run(sweep(target, payloads, mode, levels, warmup_s, window_s,
                                                 expected, log, round_no))
    return results, engines

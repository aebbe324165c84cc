"""Load generator for the speech2face engine (perf_analyzer is not installable here).

Two modes, both with a warm-up and then a fixed measurement window:

- `concurrency`: N closed-loop workers, each sends its next request when the last returns;
- `poisson`: an open loop, requests arrive at exponentially spaced times at a given rate
  (latency counts from the scheduled arrival, so a falling-behind server is not hidden).

Each level reports p50/p90/p99/mean latency, throughput (requests completed inside the window
per second), errors and wrong answers (each response is checked against the in-process ONNX
Runtime result for the same clip), and for Triton targets the server's own per-model counters
over the window (queue vs compute time, average dynamic batch size).

`compare` runs the engines side by side on the same clips, one at a time:

- triton          the default cpu repository (fused layout) over gRPC, dynamic batching on
- triton-ensemble the ensemble layout (preprocess -> voice_encoder -> face_decoder), batching on
- triton-2x1      the fused layout with 2 instances of 1 thread each (what `s2f tune` picks for
                  throughput on 2 cores; the default, 1 instance of 2 threads, is best at concurrency 1)
- triton-nobatch  the fused layout with max_batch_size=1 (dynamic batching off)
- triton-http     the fused layout over HTTP (not in the default set)
- fastapi         benchmarks/fastapi_baseline.py: FastAPI + uvicorn + ONNX Runtime, a subprocess
- ort             in process: LocalRuntime (C++ features + ONNX Runtime), no server
- torch           in process: C++ features + the PyTorch checkpoint, eager

    python benchmarks/loadgen.py compare --out benchmarks/results/load      # or: s2f bench
    python benchmarks/loadgen.py run --url 127.0.0.1:8001 --levels 1,4,16   # one running server

Writes results.csv, results.json and throughput_vs_p99.png into --out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

RATE = 16000
FEATURE_ATOL = 1e-4        # unit-norm features: served, ORT and torch agree far closer than this
DEFAULT_TARGETS = ("triton", "triton-2x1", "triton-ensemble", "triton-nobatch", "fastapi", "ort", "torch")
ALL_TARGETS = ("triton", "triton-2x1", "triton-ensemble", "triton-nobatch", "triton-http", "fastapi", "ort", "torch")

# The Triton targets' repository settings (layout, policy); every other setting is the default.
TRITON_TARGETS = {
    "triton": ("fused", {}),
    "triton-2x1": ("fused", {"instances": 2, "intra_op_threads": 1}),
    "triton-ensemble": ("ensemble", {}),
    "triton-nobatch": ("fused", {"max_batch_size": 1}),
    "triton-http": ("fused", {}),
}


# ------------------------------------------------------------------------------------------ clips
def make_clips(count: int = 8, seconds: float = 6.0, rate: int = RATE, seed: int = 0) -> list[tuple[np.ndarray, int]]:
    """Deterministic voice-like clips: harmonic stacks with vibrato, different pitch, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    clips = []
    for k in range(count):
        f0 = 90 + 160 * k / max(1, count - 1) + 15 * np.sin(2 * np.pi * (2 + k % 3) * t)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        voice = sum(np.sin(h * phase) / h for h in range(1, 10)) * 0.15
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t + k)
        audio = voice * envelope + 0.01 * rng.standard_normal(t.size)
        clips.append((audio.astype(np.float32), rate))
    return clips


# ---------------------------------------------------------------------------------------- targets
class Target:
    """One engine under load. infer() returns the L2-normalised feature of one clip."""

    name = "target"
    served = False

    async def open(self) -> None: ...

    async def infer(self, audio: np.ndarray, rate: int) -> np.ndarray:
        raise NotImplementedError

    async def statistics(self):
        """{model: ModelStatistics} (cumulative), or None when the engine keeps none."""
        return None

    async def close(self) -> None: ...

    def describe(self) -> dict:
        return {"name": self.name}


class TritonTarget(Target):
    served = True

    def __init__(self, name: str, url: str, protocol: str = "grpc", note: str = ""):
        self.name, self.url, self.protocol, self.note = name, url, protocol, note
        self.client = None

    async def open(self):
        from speech2face.engine.async_client import AsyncSpeech2FaceClient
        from speech2face.engine.client import RetryPolicy

        # No retries under load: a failure must show up as an error, not as a slow success.
        self.client = AsyncSpeech2FaceClient(self.url, self.protocol, timeout_s=120.0,
                                             retry=RetryPolicy(max_attempts=1))

    async def infer(self, audio, rate):
        return (await self.client.infer(audio, rate)).feature

    async def statistics(self):
        return await self.client.statistics()

    async def close(self):
        if self.client is not None:
            await self.client.close()

    def describe(self):
        return {"name": self.name, "url": self.url, "protocol": self.protocol, "note": self.note}


class FastAPITarget(Target):
    served = True

    def __init__(self, name: str, url: str):
        self.name, self.url = name, url
        self.session = None

    async def open(self):
        import aiohttp

        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120),
                                             connector=aiohttp.TCPConnector(limit=256))

    async def infer(self, audio, rate):
        body = np.ascontiguousarray(audio, dtype="<f4").tobytes()
        async with self.session.post(f"http://{self.url}/infer", params={"sample_rate": str(rate)}, data=body,
                                     headers={"Content-Type": "application/octet-stream"}) as response:
            payload = await response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {payload[:200].decode(errors='replace')}")
            dim = int(response.headers["X-Feature-Dim"])
        return np.frombuffer(payload[: 4 * dim], dtype="<f4")

    async def close(self):
        if self.session is not None:
            await self.session.close()

    def describe(self):
        return {"name": self.name, "url": self.url, "note": "FastAPI + uvicorn (1 worker) + ONNX Runtime"}


class InProcessTarget(Target):
    """A blocking callable run on a thread pool: concurrency N = N threads calling it."""

    def __init__(self, name: str, fn: Callable[[np.ndarray, int], np.ndarray], note: str = "", threads: int = 64):
        self.name, self.fn, self.note = name, fn, note
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def infer(self, audio, rate):
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.fn, audio, rate)

    async def close(self):
        self.pool.shutdown(wait=True)

    def describe(self):
        return {"name": self.name, "note": self.note}


def ort_function(bundle, threads: int = 2) -> Callable[[np.ndarray, int], np.ndarray]:
    from speech2face.engine.local_runtime import LocalRuntime

    runtime = LocalRuntime(bundle, intra_op_threads=threads)
    return lambda audio, rate: runtime.infer(audio, rate).feature


def torch_function(bundle, threads: int = 2) -> tuple[Callable[[np.ndarray, int], np.ndarray], str]:
    """PyTorch eager on the bundle's checkpoint (or the fixed-seed untrained default), same features."""
    import torch
    import torch.nn.functional as F

    from speech2face.engine.features import compute_features, validate_audio

    checkpoint_path = Path(bundle.directory) / "checkpoint.pt"
    if checkpoint_path.exists():
        from speech2face.training.checkpoint import load_checkpoint

        checkpoint, source = load_checkpoint(checkpoint_path), str(checkpoint_path)
    else:
        from speech2face.training.default_model import untrained_default

        checkpoint, source = untrained_default(), "untrained_default() (no checkpoint.pt in the bundle)"
    from speech2face.training.face_decoder import to_uint8_image

    torch.set_num_threads(threads)
    encoder, decoder = checkpoint.voice_encoder.eval(), checkpoint.face_decoder.eval()
    spec = bundle.feature_spec

    def run(audio, rate):
        features = compute_features([validate_audio(audio, rate, spec)], spec, threads)
        with torch.inference_mode():
            raw = encoder(torch.from_numpy(features))
            _landmarks, image = decoder(raw)
            to_uint8_image(image)
            return F.normalize(raw, dim=1)[0].numpy()

    return run, source


# ------------------------------------------------------------------------------------ measurement
@dataclasses.dataclass
class LevelResult:
    target: str
    mode: str                  # "concurrency" or "poisson"
    level: float               # workers, or offered requests/s
    window_s: float
    completed: int             # successful responses completed inside the window
    errors: int
    wrong: int                 # responses that disagree with the reference for their clip
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    dropped: int = 0           # poisson only: arrivals refused by the client's in-flight cap
    loadavg_1m: float = float("nan")   # the machine's load average after the level (shared machines are noisy)
    arrived_rps: float = float("nan")  # poisson only: arrivals actually drawn inside the window, per second
    error_examples: list[str] = dataclasses.field(default_factory=list)
    server: dict = dataclasses.field(default_factory=dict)   # Triton per-model counters over the window

    def row(self) -> dict:
        row = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("error_examples", "server")}
        for model, s in self.server.items():
            for key in ("avg_batch", "avg_queue_ms", "avg_compute_ms"):
                row[f"{model}.{key}"] = s.get(key)
        return row


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class _Recorder:
    def __init__(self, measure_start: float, measure_end: float, expected: list[np.ndarray] | None):
        self.start, self.end, self.expected = measure_start, measure_end, expected
        self.latencies: list[float] = []
        self.errors = 0
        self.wrong = 0
        self.examples: dict[str, int] = {}

    async def call(self, target: Target, clips, index: int, issued: float) -> None:
        audio, rate = clips[index]
        try:
            feature = await target.infer(audio, rate)
            error = None
        except Exception as exc:  # noqa: BLE001 - counted, with the message kept
            feature, error = None, f"{type(exc).__name__}: {exc}"
        done = time.perf_counter()
        if not self.start <= done <= self.end:
            return
        if error is not None:
            self.errors += 1
            self.examples[error[:300]] = self.examples.get(error[:300], 0) + 1
            return
        if self.expected is not None and (feature is None or feature.shape != self.expected[index].shape or
                                          np.abs(feature - self.expected[index]).max() > FEATURE_ATOL):
            self.wrong += 1
            return
        self.latencies.append(done - issued)

    def result(self, target: str, mode: str, level: float, window_s: float, server: dict, dropped: int = 0):
        ms = [x * 1e3 for x in self.latencies]
        return LevelResult(target, mode, level, window_s, len(ms), self.errors, self.wrong,
                           len(ms) / window_s, _percentile(ms, 50), _percentile(ms, 90), _percentile(ms, 99),
                           float(np.mean(ms)) if ms else float("nan"), dropped,
                           os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
                           error_examples=[f"{n}x {m}" for m, n in
                                           sorted(self.examples.items(), key=lambda kv: -kv[1])[:5]],
                           server=server)


async def _server_window(target: Target, measure_start: float, done: asyncio.Event) -> dict:
    """Triton's per-model counters at the start of the window and after the last response."""
    if not target.served:
        return {}
    await asyncio.sleep(max(0.0, measure_start - time.perf_counter()))
    try:
        before = await target.statistics()
    except Exception:  # noqa: BLE001 - statistics are extra information
        return {}
    await done.wait()
    if not before:
        return {}
    after = await target.statistics()
    return {name: after[name].delta(before[name]).summary() for name in after if name in before}


async def run_concurrency(target: Target, clips, concurrency: int, warmup_s: float, window_s: float,
                          expected: list[np.ndarray] | None = None) -> LevelResult:
    start = time.perf_counter()
    measure_start, measure_end = start + warmup_s, start + warmup_s + window_s
    recorder = _Recorder(measure_start, measure_end, expected)
    done = asyncio.Event()

    async def worker(k: int) -> None:
        index = k
        while time.perf_counter() < measure_end:
            await recorder.call(target, clips, index % len(clips), time.perf_counter())
            index += concurrency

    stats_task = asyncio.create_task(_server_window(target, measure_start, done))
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    done.set()
    return recorder.result(target.name, "concurrency", concurrency, window_s, await stats_task)


async def run_poisson(target: Target, clips, rate_rps: float, warmup_s: float, window_s: float,
                      expected: list[np.ndarray] | None = None, max_in_flight: int = 256,
                      seed: int = 0) -> LevelResult:
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    measure_start, measure_end = start + warmup_s, start + warmup_s + window_s
    recorder = _Recorder(measure_start, measure_end, expected)
    done = asyncio.Event()
    stats_task = asyncio.create_task(_server_window(target, measure_start, done))
    in_flight: set[asyncio.Task] = set()
    dropped, arrival, index, arrived = 0, start, 0, 0
    while True:
        arrival += rng.exponential(1.0 / rate_rps)
        if arrival >= measure_end:
            break
        arrived += measure_start <= arrival
        await asyncio.sleep(max(0.0, arrival - time.perf_counter()))
        if len(in_flight) >= max_in_flight:
            dropped += measure_start <= arrival
            continue
        task = asyncio.create_task(recorder.call(target, clips, index % len(clips), arrival))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        index += 1
    if in_flight:
        await asyncio.gather(*in_flight)
    done.set()
    result = recorder.result(target.name, "poisson", rate_rps, window_s, await stats_task, dropped)
    result.arrived_rps = arrived / window_s
    return result


async def sweep(target: Target, clips, mode: str, levels, warmup_s: float, window_s: float,
                expected=None, log=print) -> list[LevelResult]:
    results = []
    await target.open()
    try:
        for n, level in enumerate(levels):
            if mode == "concurrency":
                result = await run_concurrency(target, clips, int(level), warmup_s, window_s, expected)
            else:
                result = await run_poisson(target, clips, float(level), warmup_s, window_s, expected, seed=n)
            log(format_level(result))
            results.append(result)
    finally:
        await target.close()
    return results


def format_level(r: LevelResult) -> str:
    line = (f"{r.target:>15} {r.mode[:4]} {r.level:>6g}: {r.throughput_rps:6.2f} req/s  "
            f"p50 {r.p50_ms:7.1f}  p90 {r.p90_ms:7.1f}  p99 {r.p99_ms:7.1f} ms  "
            f"errors {r.errors}  wrong {r.wrong}  load {r.loadavg_1m:.1f}")
    if r.mode == "poisson":
        line += f"  (arrived {r.arrived_rps:.2f}/s)"
    if r.dropped:
        line += f"  dropped {r.dropped}"
    name, encoder = batching_model(r.server)
    if encoder:
        line += (f"  | {name} batch {encoder['avg_batch']:.2f} "
                 f"queue {encoder['avg_queue_ms']:.1f} ms compute {encoder['avg_compute_ms']:.1f} ms")
    return line


def batching_model(server_stats: dict) -> tuple[str, dict]:
    """The model whose batches carry the network: voice_encoder (ensemble layout) or speech2face (fused)."""
    for name in ("voice_encoder", "speech2face"):
        if server_stats.get(name):
            return name, server_stats[name]
    return "", {}


# ---------------------------------------------------------------------------------------- outputs
def write_results(results: list[LevelResult], out_dir: Path, meta: dict) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [r.row() for r in results]
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with open(out_dir / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    (out_dir / "results.json").write_text(json.dumps(
        clean({"meta": meta, "results": [dataclasses.asdict(r) for r in results]}), indent=2) + "\n")
    paths = {"csv": out_dir / "results.csv", "json": out_dir / "results.json"}
    plot = plot_results(results, out_dir / "throughput_vs_p99.png", meta)
    if plot:
        paths["png"] = plot
    return paths


def plot_results(results: list[LevelResult], path: Path, meta: dict) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return None
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name in dict.fromkeys(r.target for r in results):
        points = [r for r in results if r.target == name and r.completed]
        if not points:
            continue
        ax.plot([r.throughput_rps for r in points], [r.p99_ms for r in points], marker="o", label=name)
        for r in points:
            ax.annotate(f"{r.level:g}", (r.throughput_rps, r.p99_ms), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
    mode = results[0].mode if results else "concurrency"
    ax.set_xlabel("throughput (requests/s)")
    ax.set_ylabel("p99 latency (ms)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"speech2face: throughput vs p99 latency ({mode}; labels = "
                 f"{'concurrency' if mode == 'concurrency' else 'offered req/s'})\n"
                 f"{meta.get('clips')} clips of {meta.get('clip_seconds')} s at {meta.get('rate')} Hz; "
                 f"{meta.get('cpu_count')} CPU cores, no GPU", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def summary_table(results: list[LevelResult]) -> str:
    lines = ["| target | mode | level | req/s | p50 ms | p90 ms | p99 ms | errors | wrong | batch (served model) | queue ms (served model) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        enc = batching_model(r.server)[1]
        batch = f"{enc['avg_batch']:.2f}" if enc.get("avg_batch") is not None and math.isfinite(enc["avg_batch"]) else ""
        queue = f"{enc['avg_queue_ms']:.1f}" if enc.get("avg_queue_ms") is not None and math.isfinite(enc["avg_queue_ms"]) else ""
        lines.append(f"| {r.target} | {r.mode} | {r.level:g} | {r.throughput_rps:.2f} | {r.p50_ms:.1f} | "
                     f"{r.p90_ms:.1f} | {r.p99_ms:.1f} | {r.errors} | {r.wrong} | {batch} | {queue} |")
    return "\n".join(lines)


def goals(results: list[LevelResult]) -> dict:
    """The two stated goals, computed where the needed rows exist."""
    def find(target, level):
        return next((r for r in results if r.target == target and r.mode == "concurrency" and r.level == level), None)

    out = {}
    triton8, fastapi8 = find("triton", 8), find("fastapi", 8)
    if triton8 and fastapi8 and fastapi8.throughput_rps:
        out["throughput_c8_triton_over_fastapi"] = triton8.throughput_rps / fastapi8.throughput_rps
        served8 = [r for r in (find(name, 8) for name in TRITON_TARGETS) if r]
        best = max(served8, key=lambda r: r.throughput_rps)
        out["throughput_c8_best_triton_over_fastapi"] = best.throughput_rps / fastapi8.throughput_rps
        out["throughput_c8_best_triton_target"] = best.target
    triton1, ort1 = find("triton", 1), find("ort", 1)
    if triton1 and ort1 and ort1.p50_ms:
        out["overhead_c1_p50_triton_vs_ort"] = triton1.p50_ms / ort1.p50_ms - 1
        out["overhead_c1_mean_triton_vs_ort"] = triton1.mean_ms / ort1.mean_ms - 1
    return out


# ---------------------------------------------------------------------------------------- engines
@contextlib.contextmanager
def _triton(repository: Path):
    from speech2face.engine.server import ServerOptions, TritonServer

    with TritonServer(ServerOptions(model_repository=repository)) as server:
        yield server


@contextlib.contextmanager
def _fastapi(bundle_dir: Path, threads: int = 2, startup_timeout_s: float = 120.0):
    from speech2face.engine.server import free_port

    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="s2f-fastapi-", suffix=".log", delete=False)
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("fastapi_baseline.py")),
                                "--bundle", str(bundle_dir), "--port", str(port), "--threads", str(threads)],
                               stdout=log, stderr=subprocess.STDOUT)
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


def compare(targets, clips, mode: str, levels, warmup_s: float, window_s: float, bundle=None,
            workdir: Path | None = None, log=print) -> tuple[list[LevelResult], list[dict]]:
    """Runs each named engine in turn on the same clips; returns the results and engine notes."""
    from speech2face.engine.builtin import default_bundle
    from speech2face.engine.local_runtime import LocalRuntime
    from speech2face.export.model_configs import BatchingPolicy
    from speech2face.export.repository import write_cpu_repository

    unknown = set(targets) - set(ALL_TARGETS)
    if unknown:
        raise ValueError(f"unknown targets {sorted(unknown)}; choose from {', '.join(ALL_TARGETS)}")
    bundle = bundle or default_bundle()
    runtime = LocalRuntime(bundle, intra_op_threads=2)
    expected = [runtime.infer(a, r).feature for a, r in clips]
    results: list[LevelResult] = []
    engines: list[dict] = []
    with contextlib.ExitStack() as stack:
        workdir = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="s2f-bench-")))
        for name in targets:
            log(f"-- {name}")
            with contextlib.ExitStack() as engine:
                if name in TRITON_TARGETS:
                    layout, settings = TRITON_TARGETS[name]
                    policy = BatchingPolicy(**settings)
                    repository = write_cpu_repository(bundle, workdir / f"repo-{name}", policy, layout)
                    server = engine.enter_context(_triton(repository))
                    protocol = "http" if name == "triton-http" else "grpc"
                    url = server.http_url if protocol == "http" else server.grpc_url
                    target: Target = TritonTarget(name, url, protocol, note=f"{layout} layout, {dataclasses.asdict(policy)}")
                elif name == "fastapi":
                    target = FastAPITarget(name, engine.enter_context(_fastapi(bundle.directory)))
                elif name == "ort":
                    target = InProcessTarget(name, ort_function(bundle), "LocalRuntime, ORT intra-op 2 threads")
                else:
                    fn, source = torch_function(bundle)
                    target = InProcessTarget(name, fn, f"PyTorch eager (2 threads) from {source}")
                engines.append(target.describe())
                results += asyncio.run(sweep(target, clips, mode, levels, warmup_s, window_s, expected, log))
    return results, engines


# -------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="benchmark this running Triton server only (host:port)")
    parser.add_argument("--protocol", choices=("grpc", "http"), default="grpc", help="with --url")
    parser.add_argument("--targets", default=",".join(DEFAULT_TARGETS),
                        help=f"without --url: engines to compare, from {','.join(ALL_TARGETS)}")
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


def run(args) -> int:
    from speech2face.engine.bundle import load_bundle

    levels = [float(x) for x in (args.levels or ("1,2,4,8,16" if args.mode == "concurrency" else "2,4,8,12")).split(",")]
    if args.mode == "concurrency" and any(level < 1 or level != int(level) for level in levels):
        raise ValueError("concurrency levels must be whole numbers >= 1")
    if args.window <= 0 or args.warmup < 0:
        raise ValueError("--window must be > 0 and --warmup >= 0")
    clips = make_clips(args.clips, args.seconds)
    bundle = load_bundle(args.bundle) if args.bundle else None
    meta = {"mode": args.mode, "levels": levels, "warmup_s": args.warmup, "window_s": args.window,
            "clips": args.clips, "clip_seconds": args.seconds, "rate": RATE, "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if args.url:
        from speech2face.engine.builtin import default_bundle
        from speech2face.engine.local_runtime import LocalRuntime

        runtime = LocalRuntime(bundle or default_bundle(), intra_op_threads=2)
        expected = [runtime.infer(a, r).feature for a, r in clips]
        target = TritonTarget("triton", args.url, args.protocol)
        results = asyncio.run(sweep(target, clips, args.mode, levels, args.warmup, args.window, expected))
        meta["engines"] = [target.describe()]
    else:
        targets = [t.strip() for t in args.targets.split(",") if t.strip()]
        results, meta["engines"] = compare(targets, clips, args.mode, levels, args.warmup, args.window, bundle)
    meta["goals"] = goals(results)
    paths = write_results(results, Path(args.out), meta)
    print(summary_table(results))
    for key, value in meta["goals"].items():
        if isinstance(value, str):
            print(f"{key}: {value}")
        else:
            print(f"{key}: {value:+.3f}" if "overhead" in key else f"{key}: {value:.2f}x")
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loadgen", description="speech2face load generator")
    sub = parser.add_subparsers(dest="command")
    for name in ("compare", "run"):
        add_arguments(sub.add_parser(name, help="compare engines" if name == "compare" else "one server (--url)"))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "run" and not args.url:
        parser.error("run needs --url")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())

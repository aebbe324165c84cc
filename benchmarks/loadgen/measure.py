"""The one load loop: closed-loop workers or Poisson arrivals, every answer checked and timed.

`s2f bench`, `s2f tune` and the soak test all drive their load through `closed_loop`; none of
them retries (a request that needed a retry would hide a failure as a slow success).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import os
import time

import numpy as np

from speech2face.benchmarks.loadgen.targets import Target
from speech2face.engine.contract.tensors import FEATURE_ATOL


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
    round: int = 1             # which pass over the engines (rounds interleave engines; each is reported)
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


class Recorder:
    """Outcome of every request by index ("ok", "wrong", "error"), counted when it completes
    inside [start, end]; latencies of the good ones."""

    def __init__(self, expected: list[np.ndarray] | None, start: float = -math.inf, end: float = math.inf):
        self.start, self.end, self.expected = start, end, expected
        self.latencies: list[float] = []
        self.outcomes: dict[int, str] = {}
        self.examples: dict[str, int] = {}

    @property
    def errors(self) -> int:
        return sum(1 for v in self.outcomes.values() if v == "error")

    @property
    def wrong(self) -> int:
        return sum(1 for v in self.outcomes.values() if v == "wrong")

    def _is_wrong(self, feature, index: int) -> bool:
        if self.expected is None:
            return False
        reference = self.expected[index % len(self.expected)]
        return feature is None or feature.shape != reference.shape or np.abs(feature - reference).max() > FEATURE_ATOL

    async def call(self, target: Target, payloads: list, index: int, issued: float) -> None:
        try:
            feature = await target.infer(payloads[index % len(payloads)])
            error = None
        except Exception as exc:  # noqa: BLE001 - counted, with the message kept
            feature, error = None, f"{type(exc).__name__}: {exc}"
        done = time.perf_counter()
        if not self.start <= done <= self.end:
            return
        if error is not None:
            self.outcomes[index] = "error"
            self.examples[error[:300]] = self.examples.get(error[:300], 0) + 1
        elif self._is_wrong(feature, index):
            self.outcomes[index] = "wrong"
        else:
            self.outcomes[index] = "ok"
            self.latencies.append(done - issued)

    def error_examples(self) -> list[str]:
        return [f"{n}x {m}" for m, n in sorted(self.examples.items(), key=lambda kv: -kv[1])[:5]]

    def result(self, target: str, mode: str, level: float, window_s: float, server: dict, dropped: int = 0):
        ms = [x * 1e3 for x in self.latencies]
        return LevelResult(target, mode, level, window_s, len(ms), self.errors, self.wrong,
                           len(ms) / window_s, _percentile(ms, 50), _percentile(ms, 90), _percentile(ms, 99),
                           float(np.mean(ms)) if ms else float("nan"), dropped,
                           os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
                           error_examples=self.error_examples(), server=server)


async def closed_loop(target: Target, payloads: list, recorder: Recorder, concurrency: int, *,
                      until: float | None = None, total: int | None = None) -> None:
    """`concurrency` workers, each sending its next request when its last one returns, until
    the `until` perf_counter deadline or until `total` requests were sent (request i gets
    payload i mod len(payloads))."""
    counter = itertools.count()

    async def worker() -> None:
        while until is None or time.perf_counter() < until:
            index = next(counter)
            if total is not None and index >= total:
                return
            await recorder.call(target, payloads, index, time.perf_counter())

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _server_window(target: Target, measure_start: float, done: asyncio.Event) -> dict:
    """Triton's per-model counters at the start of the window and after the last response."""
    if not target.served:
        return {}
    await asyncio.sleep(max(0.0, measure_start - time.perf_counter()))
    try:
        before, stages_before = await target.statistics(), await target.stage_totals()
    except Exception:  # noqa: BLE001 - statistics are extra information
        return {}
    await done.wait()
    if not before:
        return {}
    after, stages_after = await target.statistics(), await target.stage_totals()
    window = {name: after[name].delta(before[name]).summary() for name in after if name in before}
    if stages_after:
        from speech2face.engine.runtime.model_metrics import stage_means_ms

        window["stages_ms"] = stage_means_ms(stages_before, stages_after)
    return window


async def run_concurrency(target: Target, payloads: list, concurrency: int, warmup_s: float, window_s: float,
                          expected: list[np.ndarray] | None = None) -> LevelResult:
    start = time.perf_counter()
    measure_start, measure_end = start + warmup_s, start + warmup_s + window_s
    recorder = Recorder(expected, measure_start, measure_end)
    done = asyncio.Event()
    stats_task = asyncio.create_task(_server_window(target, measure_start, done))
    await closed_loop(target, payloads, recorder, concurrency, until=measure_end)
    done.set()
    return recorder.result(target.name, "concurrency", concurrency, window_s, await stats_task)


async def run_poisson(target: Target, payloads: list, rate_rps: float, warmup_s: float, window_s: float,
                      expected: list[np.ndarray] | None = None, max_in_flight: int = 256,
                      seed: int = 0) -> LevelResult:
    """An open loop: exponentially spaced arrivals; latency counts from the scheduled arrival."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    measure_start, measure_end = start + warmup_s, start + warmup_s + window_s
    recorder = Recorder(expected, measure_start, measure_end)
    done = asyncio.Event()
    stats_task = asyncio.create_task(_server_window(target, measure_start, done))
    in_flight: set[asyncio.Task] = set()
    dropped, arrival, index, arrived = 0, start, 0, 0
    while (arrival := arrival + rng.exponential(1.0 / rate_rps)) < measure_end:
        arrived += measure_start <= arrival
        await asyncio.sleep(max(0.0, arrival - time.perf_counter()))
        if len(in_flight) >= max_in_flight:
            dropped += measure_start <= arrival
            continue
        task = asyncio.create_task(recorder.call(target, payloads, index, arrival))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        index += 1
    if in_flight:
        await asyncio.gather(*in_flight)
    done.set()
    result = recorder.result(target.name, "poisson", rate_rps, window_s, await stats_task, dropped)
    result.arrived_rps = arrived / window_s
    return result


async def sweep(target: Target, payloads: list, mode: str, levels, warmup_s: float, window_s: float,
                expected=None, log=print, round_no: int = 1) -> list[LevelResult]:
    """Opens the target, measures each level in turn, closes it."""
    from speech2face.benchmarks.loadgen.report import format_level

    results = []
    await target.open()
    try:
        for n, level in enumerate(levels):
            if mode == "concurrency":
                result = await run_concurrency(target, payloads, int(level), warmup_s, window_s, expected)
            else:
                result = await run_poisson(target, payloads, float(level), warmup_s, window_s, expected, seed=n)
            result.round = round_no
            log(format_level(result))
            results.append(result)
    finally:
        await target.close()
    return results


async def run_total(target: Target, payloads: list, concurrency: int, total: int,
                    expected: list[np.ndarray] | None = None) -> Recorder:
    """Exactly `total` requests from `concurrency` workers (the soak): every outcome by request index."""
    recorder = Recorder(expected)
    await target.open()
    try:
        await closed_loop(target, payloads, recorder, concurrency, total=total)
    finally:
        await target.close()
    return recorder

"""Custom Prometheus metrics of the served Python models (Triton's `pb_utils.MetricFamily`).

Triton counts a request that our model refuses as a success (the backend answered), so every
refusal is counted here, per reason. Each stage of `execute()` adds its wall time here too, so
the metrics port shows where a served request's time goes, beside Triton's own queue and
compute counters:

- `s2f_refusals_total{model, reason}`: requests refused, per `AudioError.reason`;
- `s2f_stage_duration_us_total{model, stage}` and `s2f_stage_runs_total{model, stage}`:
  cumulative microseconds and runs of each stage (mean = duration / runs); the stages are
  inputs, features, encoder, decoder (or lanes, for a batch split over lanes) and outputs.

Every counter update is a round trip between the model's stub process and Triton; ten per
request (five stages, two counters) cost a request ~0.3 ms (the floor rows of
`benchmarks/studies/breakdown.py`). So stage times add up inside the stub, and the first execute() after
FLUSH_INTERVAL_S hands the sums to Triton before it starts: one request in that interval pays
the round trips, and a scrape sees a stage time once a later request has arrived (the model's
finalize() flushes the rest). No stub thread of ours calls into Triton while a request runs.
Refusals are rare and counted at once.
"""

from __future__ import annotations

import contextlib
import time

REFUSALS = "s2f_refusals_total"
STAGE_DURATION = "s2f_stage_duration_us_total"
STAGE_RUNS = "s2f_stage_runs_total"
FLUSH_INTERVAL_S = 0.5


class ModelMetrics:
    """Counters for one model; `pb_utils` is the Python backend's module (absent outside Triton)."""

    def __init__(self, pb_utils, model_name: str, flush_interval_s: float = FLUSH_INTERVAL_S):
        kind = pb_utils.MetricFamily.COUNTER
        self._model = model_name
        self._refusals_family = pb_utils.MetricFamily(
            name=REFUSALS, description="Requests refused by the model, per reason", kind=kind)
        self._duration_family = pb_utils.MetricFamily(
            name=STAGE_DURATION, description="Cumulative wall time of each execute() stage, us", kind=kind)
        self._runs_family = pb_utils.MetricFamily(
            name=STAGE_RUNS, description="Runs of each execute() stage", kind=kind)
        self._refusals: dict[str, object] = {}
        self._stages: dict[str, tuple[object, object]] = {}
        self._pending: dict[str, list[float]] = {}  # stage -> [us, runs] not yet handed to Triton
        self._flush_interval_s = flush_interval_s
        self._flushed_at = time.monotonic()

    def refused(self, reason: str) -> None:
        counter = self._refusals.get(reason)
        if counter is None:
            counter = self._refusals[reason] = self._refusals_family.Metric(
                labels={"model": self._model, "reason": reason})
        counter.increment(1)

    def add_stage(self, stage: str, seconds: float) -> None:
        pending = self._pending.setdefault(stage, [0.0, 0])
        pending[0] += seconds * 1e6
        pending[1] += 1

    def flush_if_due(self) -> None:
        """Called at the start of execute(): hands the sums over once every FLUSH_INTERVAL_S."""
        if time.monotonic() - self._flushed_at >= self._flush_interval_s:
            self.flush()

    def flush(self) -> None:
        """Hands the stage sums gathered so far to Triton's counters."""
        pending, self._pending = self._pending, {}
        self._flushed_at = time.monotonic()
        for stage, (us, runs) in pending.items():
            counters = self._stages.get(stage)
            if counters is None:
                labels = {"model": self._model, "stage": stage}
                counters = self._stages[stage] = (self._duration_family.Metric(labels=labels),
                                                  self._runs_family.Metric(labels=labels))
            counters[0].increment(us)
            counters[1].increment(runs)

    @contextlib.contextmanager
    def stage(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add_stage(stage, time.perf_counter() - start)


def scrape(metrics_url: str, timeout_s: float = 5.0) -> str:
    """The Prometheus text of a server's metrics port (http://host:port/metrics)."""
    import urllib.request

    with urllib.request.urlopen(metrics_url, timeout=timeout_s) as response:
        return response.read().decode()


def _samples(text: str, family: str, model: str, label: str) -> dict[str, float]:
    """label value -> sample value, for one metric family and model in Prometheus text."""
    values = {}
    for line in text.splitlines():
        if line.startswith(family + "{") and f'model="{model}"' in line:
            key = line.split(f'{label}="', 1)[1].split('"', 1)[0]
            values[key] = float(line.rsplit(" ", 1)[1])
    return values


def refusal_counts(text: str, model: str) -> dict[str, float]:
    """reason -> requests refused so far."""
    return _samples(text, REFUSALS, model, "reason")


def stage_totals(text: str, model: str) -> dict[str, tuple[float, float]]:
    """stage -> (cumulative us, runs) so far."""
    durations, runs = _samples(text, STAGE_DURATION, model, "stage"), _samples(text, STAGE_RUNS, model, "stage")
    return {stage: (durations[stage], runs.get(stage, 0.0)) for stage in durations}


def stage_means_ms(before: dict, after: dict) -> dict[str, float]:
    """Mean ms per run of each stage between two `stage_totals` readings."""
    means = {}
    for stage, (us, runs) in after.items():
        us0, runs0 = before.get(stage, (0.0, 0.0))
        if runs > runs0:
            means[stage] = (us - us0) / (runs - runs0) / 1e3
    return means

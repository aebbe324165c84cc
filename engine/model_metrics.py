"""Custom Prometheus metrics of the served Python models (Triton's `pb_utils.MetricFamily`).

Triton counts a request that our model refuses as a success (the backend answered), so every
refusal is counted here, per reason. Each stage of `execute()` adds its wall time here too, so
the metrics port shows where a served request's time goes, beside Triton's own queue and
compute counters:

- `s2f_refusals_total{model, reason}`: requests refused, per `AudioError.reason`;
- `s2f_stage_duration_us_total{model, stage}` and `s2f_stage_runs_total{model, stage}`:
  cumulative microseconds and runs of each stage (mean = duration / runs).
"""

from __future__ import annotations

import contextlib
import time

REFUSALS = "s2f_refusals_total"
STAGE_DURATION = "s2f_stage_duration_us_total"
STAGE_RUNS = "s2f_stage_runs_total"
STAGES = ("inputs", "decode", "features", "encoder", "decoder", "outputs")


class ModelMetrics:
    """Counters for one model; `pb_utils` is the Python backend's module (absent outside Triton)."""

    def __init__(self, pb_utils, model_name: str):
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

    def refused(self, reason: str) -> None:
        counter = self._refusals.get(reason)
        if counter is None:
            counter = self._refusals[reason] = self._refusals_family.Metric(
                labels={"model": self._model, "reason": reason})
        counter.increment(1)

    def add_stage(self, stage: str, seconds: float) -> None:
        counters = self._stages.get(stage)
        if counters is None:
            labels = {"model": self._model, "stage": stage}
            counters = self._stages[stage] = (self._duration_family.Metric(labels=labels),
                                              self._runs_family.Metric(labels=labels))
        counters[0].increment(seconds * 1e6)
        counters[1].increment(1)

    @contextlib.contextmanager
    def stage(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add_stage(stage, time.perf_counter() - start)

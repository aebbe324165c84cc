"""Triton's per-model counters (the statistics extension) as numbers a report can use.

The ensemble returns no per-request timing, so results carry the client-measured latency only;
`ModelStatistics.delta` turns two cumulative snapshots into per-request averages.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ModelStatistics:
    """Triton's cumulative per-model counters (see the statistics extension); `delta` subtracts."""

    model: str
    version: str
    inference_count: int = 0     # requests' batch rows
    execution_count: int = 0     # model executions (a dynamic batch is one)
    success_count: int = 0
    fail_count: int = 0
    success_ns: int = 0          # end-to-end time inside the server, successful requests
    queue_ns: int = 0
    compute_input_ns: int = 0
    compute_infer_ns: int = 0
    compute_output_ns: int = 0

    @classmethod
    def from_json(cls, entry: dict) -> "ModelStatistics":
        stats = entry.get("inference_stats", {})

        def field(name: str, key: str) -> int:
            return int(stats.get(name, {}).get(key, 0) or 0)

        return cls(model=entry["name"], version=str(entry.get("version", "")),
                   inference_count=int(entry.get("inference_count", 0) or 0),
                   execution_count=int(entry.get("execution_count", 0) or 0),
                   success_count=field("success", "count"), fail_count=field("fail", "count"),
                   success_ns=field("success", "ns"), queue_ns=field("queue", "ns"),
                   compute_input_ns=field("compute_input", "ns"),
                   compute_infer_ns=field("compute_infer", "ns"),
                   compute_output_ns=field("compute_output", "ns"))

    def delta(self, earlier: "ModelStatistics") -> "ModelStatistics":
        return dataclasses.replace(self, **{f.name: getattr(self, f.name) - getattr(earlier, f.name)
                                            for f in dataclasses.fields(self)
                                            if f.name not in ("model", "version")})

    def _per_request_ms(self, ns: int) -> float:
        return ns / self.success_count / 1e6 if self.success_count else float("nan")

    @property
    def avg_request_ms(self) -> float:
        return self._per_request_ms(self.success_ns)

    @property
    def avg_queue_ms(self) -> float:
        return self._per_request_ms(self.queue_ns)

    @property
    def avg_compute_ms(self) -> float:
        return self._per_request_ms(self.compute_input_ns + self.compute_infer_ns + self.compute_output_ns)

    @property
    def avg_batch_size(self) -> float:
        return self.inference_count / self.execution_count if self.execution_count else float("nan")

    def summary(self) -> dict:
        return {"model": self.model, "requests": self.success_count, "failed": self.fail_count,
                "executions": self.execution_count, "avg_batch": self.avg_batch_size,
                "avg_request_ms": self.avg_request_ms, "avg_queue_ms": self.avg_queue_ms,
                "avg_compute_ms": self.avg_compute_ms}


def parse_statistics(payload: dict) -> dict[str, ModelStatistics]:
    """{model name: statistics} from get_inference_statistics(as_json=True) (gRPC or HTTP)."""
    return {entry["name"]: ModelStatistics.from_json(entry) for entry in payload.get("model_stats", [])}

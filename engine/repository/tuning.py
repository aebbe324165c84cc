"""Tuning the cpu repository: candidates, reloading models with one, the frontier, the choice.

`s2f tune` (engine/cli/tune_command.py) drives it against a live server.

A candidate sets up to seven knobs: instances, max queue delay and max batch size (always), and
threads per instance, the fused model's lanes, the dynamic batcher's preferred batch size and
thread pinning (each kept as written when not swept). For every candidate the command reloads
every model of the repository (stages, then `speech2face`, then the per-form ensembles) through
Triton's model-control API (the server runs with `--model-control explicit`), drives it with a
closed loop of `concurrency` clients for `window_s`, and records throughput and latency
percentiles; then it prints the throughput / p99 frontier and writes the chosen configuration.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2 as pb

from speech2face.engine import contract
from speech2face.engine.contract.fileio import atomic_write_text

STAGE_MODELS = (contract.PREPROCESS, contract.VOICE_ENCODER, contract.FACE_DECODER)


def repository_models(repository: Path) -> list[str]:
    """The repository's models in reload order: stages (ensemble layout) first, then `speech2face`,
    then the per-form ensembles over it (an ensemble's batch size follows its composing model's)."""
    order = (*STAGE_MODELS, contract.ENSEMBLE, contract.SAMPLES_MODEL, contract.FILE_MODEL)
    return [m for m in order if (repository / m / contract.CONFIG_FILE).exists()]




@dataclasses.dataclass(frozen=True)
class Candidate:
    instances: int
    max_queue_delay_us: int
    max_batch_size: int
    threads: int | None = None     # per instance; None keeps the repository's setting
    lanes: int | None = None       # fused model's single-thread lanes for batches; None keeps it
    preferred: int | None = None   # dynamic batcher's preferred batch size (0: none); None keeps it
    pin: int | None = None         # fused model's pin_threads (0/1); None keeps it

    def label(self) -> str:
        threads = "" if self.threads is None else f" threads={self.threads}"
        lanes = "" if self.lanes is None else f" lanes={self.lanes}"
        preferred = "" if self.preferred is None else f" preferred={self.preferred or 'any'}"
        pin = "" if self.pin is None else f" pin={self.pin}"
        return (f"instances={self.instances}{threads}{lanes}{pin} delay={self.max_queue_delay_us}us "
                f"max_batch={self.max_batch_size}{preferred}")


@dataclasses.dataclass
class Measurement:
    candidate: Candidate
    throughput: float      # requests per second
    p50_ms: float
    p99_ms: float
    errors: int


def read_config(repository: Path, model: str) -> pb.ModelConfig:
    return text_format.Parse((repository / model / contract.CONFIG_FILE).read_text(), pb.ModelConfig())


def apply(config: pb.ModelConfig, candidate: Candidate) -> pb.ModelConfig:
    tuned = pb.ModelConfig()
    tuned.CopyFrom(config)
    tuned.max_batch_size = candidate.max_batch_size
    if tuned.platform != "ensemble":
        tuned.dynamic_batching.max_queue_delay_microseconds = candidate.max_queue_delay_us
        if candidate.preferred is not None:
            tuned.dynamic_batching.ClearField("preferred_batch_size")
            if candidate.preferred:
                tuned.dynamic_batching.preferred_batch_size.append(candidate.preferred)
        for group in tuned.instance_group:
            group.count = candidate.instances
        pin = None if candidate.pin is None else int(bool(candidate.pin))
        runtime = contract.RUNTIME_PARAMETERS
        for value, parameter in ((candidate.threads, runtime["threads"]), (candidate.lanes, runtime["concurrent_runs"]),
                                 (pin, runtime["pin_threads"])):
            if value is not None and parameter in tuned.parameters:  # None keeps; models without it skip
                tuned.parameters[parameter].string_value = str(value)
    return tuned


def configure(client, repository: Path, candidate: Candidate) -> None:
    """Reloads every model with the candidate's settings (stages first, then `speech2face`).

    client: a Speech2FaceClient, whose load_model carries the admin key that the restricted
    model-repository API needs (engine/contract/admin_key.py)."""
    for model in repository_models(repository):
        config = apply(read_config(repository, model), candidate)
        client.load_model(model, config=json_format.MessageToJson(config, preserving_proto_field_name=True))


def frontier(results: list[Measurement]) -> list[Measurement]:
    """Candidates no other candidate beats on both throughput and p99 latency."""
    return [r for r in results if not any(o.throughput >= r.throughput and o.p99_ms <= r.p99_ms and o is not r
                                          and (o.throughput > r.throughput or o.p99_ms < r.p99_ms)
                                          for o in results)]


def choose(results: list[Measurement], p99_budget_ms: float | None) -> Measurement:
    ok = [r for r in results if r.errors == 0 and (p99_budget_ms is None or r.p99_ms <= p99_budget_ms)]
    if not ok:
        raise RuntimeError("no candidate met the p99 budget without errors")
    return max(ok, key=lambda r: r.throughput)


def write_choice(repository: Path, candidate: Candidate) -> None:
    """Rewrites each model's config with the candidate's settings (each file whole or not at all)."""
    for model in repository_models(repository):
        text = text_format.MessageToString(apply(read_config(repository, model), candidate))
        atomic_write_text(repository / model / contract.CONFIG_FILE, text)


def candidates(instances: list[int], delays: list[int], batches: list[int],
               threads: list[int] | None = None, lanes: list[int] | None = None,
               preferred: list[int] | None = None, pin: list[int] | None = None) -> list[Candidate]:
    return [Candidate(i, d, b, t, n, f, p) for i, d, b, t, n, f, p in
            itertools.product(instances, delays, batches, threads or [None], lanes or [None], preferred or [None],
                              pin or [None])]

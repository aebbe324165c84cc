"""`s2f tune` against a real server in explicit model-control mode."""

from __future__ import annotations

import shutil
import subprocess
import sys

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from speech2face.engine import contract
from speech2face.engine.repository.tuning import (Candidate, Measurement, apply, frontier, read_config,
                                     repository_models)


def test_frontier_keeps_only_undominated_candidates():
    def m(i, tput, p99):
        return Measurement(Candidate(i, 0, 8), tput, p99 / 2, p99, 0)

    fast_slow, slow_fast, dominated = m(1, 30.0, 400.0), m(2, 20.0, 200.0), m(3, 15.0, 450.0)
    assert frontier([fast_slow, slow_fast, dominated]) == [fast_slow, slow_fast]


def test_tune_sweeps_a_live_server_and_writes_the_choice(cpu_repository, tmp_path):
    repository = tmp_path / "repo"
    shutil.copytree(cpu_repository, repository)
    result = subprocess.run(
        [sys.executable, "-m", "speech2face.engine.cli.main", "tune", "--repository", str(repository),
         "--concurrency", "2", "--window", "1.5", "--instances", "1", "--delays", "0,4000", "--max-batch", "4"],
        capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("req/s") >= 3  # two measurements and at least one frontier row
    assert "chosen: instances=1" in result.stdout
    config = text_format.Parse((repository / contract.ENSEMBLE / "config.pbtxt").read_text(), pb.ModelConfig())
    assert config.max_batch_size == 4
    assert config.dynamic_batching.max_queue_delay_microseconds in (0, 4000)


def test_apply_sets_instances_batching_and_threads_of_python_models(cpu_repository, ensemble_repository):
    candidate = Candidate(instances=2, max_queue_delay_us=500, max_batch_size=4, threads=1)
    for repository in (cpu_repository, ensemble_repository):
        for model in repository_models(repository):
            tuned = apply(read_config(repository, model), candidate)
            assert tuned.max_batch_size == 4
            if tuned.platform == "ensemble":
                continue
            assert [g.count for g in tuned.instance_group] == [2]
            assert tuned.dynamic_batching.max_queue_delay_microseconds == 500
            assert tuned.parameters[contract.THREADS_PARAMETER].string_value == "1", model
    # None keeps what the repository says
    kept = apply(read_config(cpu_repository, contract.ENSEMBLE), Candidate(1, 0, 8))
    assert kept.parameters[contract.THREADS_PARAMETER].string_value == "2"


def test_apply_sets_or_clears_the_preferred_batch_size(cpu_repository):
    written = read_config(cpu_repository, contract.ENSEMBLE)
    assert list(written.dynamic_batching.preferred_batch_size) == [1]  # the default policy's
    assert list(apply(written, Candidate(2, 0, 32, preferred=0)).dynamic_batching.preferred_batch_size) == []
    assert list(apply(written, Candidate(2, 0, 32, preferred=4)).dynamic_batching.preferred_batch_size) == [4]
    assert list(apply(written, Candidate(2, 0, 32)).dynamic_batching.preferred_batch_size) == [1]  # None keeps it


def test_apply_sets_the_pinning_of_the_fused_model(cpu_repository):
    written = read_config(cpu_repository, contract.ENSEMBLE)
    pin = contract.RUNTIME_PARAMETERS["pin_threads"]
    assert written.parameters[pin].string_value == "1"  # the default policy's
    assert apply(written, Candidate(2, 0, 32, pin=0)).parameters[pin].string_value == "0"
    assert apply(written, Candidate(2, 0, 32)).parameters[pin].string_value == "1"

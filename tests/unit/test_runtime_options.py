"""The fused model's runtime options change how the cores are used, never the answer."""

from __future__ import annotations

import numpy as np
import pytest

from speech2face.engine.contract.tensors import FEATURE_ATOL
from speech2face.engine.runtime.local_runtime import LocalRuntime, RuntimeOptions
from speech2face.engine.repository.tuning import Candidate, apply, read_config

IMAGE_MAX_LEVELS = 1  # ONNX Runtime may pick other kernels for another batch size or thread count


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(7)
    return [(rng.standard_normal(16000 * 3) * 0.1).astype(np.float32) for _ in range(5)]


@pytest.mark.parametrize("options", [
    RuntimeOptions(threads=2, concurrent_runs=2),   # the default: a batch on two single-thread lanes
    RuntimeOptions(threads=2, concurrent_runs=3),   # more lanes than clips per lane: uneven chunks
    RuntimeOptions(threads=2, spinning=True),
    RuntimeOptions(threads=2, pin_threads=True),
    RuntimeOptions(threads=2, concurrent_runs=2, pin_threads=True),
], ids=["2 lanes", "3 lanes", "spinning", "pinned", "pinned with lanes"])
def test_options_give_the_same_faces_as_one_plain_run(bundle, clips, options):
    plain_features, plain_images = LocalRuntime(bundle, options=RuntimeOptions(threads=1)).run(clips)
    features, images = LocalRuntime(bundle, options=options).run(clips)
    assert features.shape == plain_features.shape and images.shape == plain_images.shape
    assert np.abs(features - plain_features).max() <= FEATURE_ATOL
    assert np.abs(images.astype(int) - plain_images.astype(int)).max() <= IMAGE_MAX_LEVELS
    # Each clip keeps its own answer, in order (lanes must not shuffle the batch).
    assert np.abs(features[0] - features[1]).max() > FEATURE_ATOL


def test_a_pinned_run_pins_its_caller_only_while_it_runs(bundle, clips):
    import os
    import threading

    runtime = LocalRuntime(bundle, options=RuntimeOptions(threads=2, pin_threads=True))
    if runtime._caller_cpu is None:
        pytest.skip(f"pinning applies where a process may use exactly 2 CPUs; this one may use "
                    f"{len(os.sched_getaffinity(0))}")
    before = os.sched_getaffinity(0)
    seen = []
    runtime.run(clips[:1], lambda name: _note_affinity(seen, name))
    assert seen and all(cpus == {runtime._caller_cpu} for cpus in seen)
    assert os.sched_getaffinity(0) == before  # the caller's CPUs come back after the run
    # Concurrent callers: one holds the pinned lane, the others run single-threaded, unpinned,
    # and every caller gets the same answer.
    plain, _ = LocalRuntime(bundle, options=RuntimeOptions(threads=1)).run(clips[:1])
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(runtime.run(clips[:1])[0])) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(answers) == 4 and all(np.abs(a - plain).max() <= FEATURE_ATOL for a in answers)


def _note_affinity(seen: list, _name: str):
    import contextlib
    import os

    seen.append(os.sched_getaffinity(0))
    return contextlib.nullcontext()


def test_tune_rewrites_the_lanes_parameter(cpu_repository):
    config = apply(read_config(cpu_repository, "speech2face"), Candidate(2, 0, 8, threads=1, lanes=0))
    assert config.parameters["concurrent_runs"].string_value == "0"
    assert config.parameters["intra_op_threads"].string_value == "1"
    assert [g.count for g in config.instance_group] == [2]


def _hold_lock(path: str, started, release) -> None:
    from speech2face.engine.runtime.peer_activity import PeerActivity

    with PeerActivity(path).computing():
        started.put(True)
        release.wait(60)


def test_adaptive_threads_give_the_same_faces_alone_and_beside_a_busy_peer(bundle, clips, tmp_path):
    import multiprocessing

    lock = str(tmp_path / "instances.lock")
    plain_features, _ = LocalRuntime(bundle, options=RuntimeOptions(threads=1)).run(clips)
    runtime = LocalRuntime(bundle, options=RuntimeOptions(threads=2, concurrent_runs=2, peers_lock=lock))
    alone, _ = runtime.run(clips)
    context = multiprocessing.get_context("spawn")
    started, release = context.Queue(), context.Event()
    peer = context.Process(target=_hold_lock, args=(lock, started, release))  # another instance, computing
    peer.start()
    try:
        started.get(timeout=60)
        beside_peer, _ = runtime.run(clips)   # runs on the single-thread lane
    finally:
        release.set()
        peer.join(60)
    assert np.abs(alone - plain_features).max() <= FEATURE_ATOL
    assert np.abs(beside_peer - plain_features).max() <= FEATURE_ATOL

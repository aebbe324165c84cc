"""ONNX Runtime sessions as the engine runs them (Triton cpu target and the local runtime)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort


def open_session(path: str | Path, intra_op_threads: int = 0, spinning: bool = False,
                 worker_cpus: tuple[int, ...] = ()) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads  # 0: ONNX Runtime picks (all cores)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle ONNX Runtime threads busy-wait by default; several sessions (one per Triton model
    # process) then burn the cores each other need (benchmarks/LOAD.md).
    # `spinning`: workers spin between the operators of one run (no sleep and wake-up per parallel
    # section, which costs most on an otherwise idle virtual machine) and stop when the run ends.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    if worker_cpus:  # one CPU per worker thread (the caller's thread is not ONNX Runtime's to pin)
        options.add_session_config_entry("session.intra_op_thread_affinities",
                                         ";".join(str(cpu + 1) for cpu in worker_cpus))  # 1-based ids
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def open_model_session(args: dict) -> ort.InferenceSession:
    """The session of a Triton Python model (its `initialize` args): the version folder's ONNX
    file, with the threads its config names."""
    import json

    from speech2face.engine import contract

    parameters = json.loads(args["model_config"])["parameters"]
    path = Path(args["model_repository"]) / args["model_version"] / contract.ONNX_FILE
    return open_session(path, int(parameters[contract.THREADS_PARAMETER]["string_value"]))


def run_batched(session: ort.InferenceSession, batches: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Runs many requests' inputs as one batch; returns each request's slice of every output."""
    sizes = [len(b) for b in batches]
    merged = batches[0] if len(batches) == 1 else np.concatenate(batches)
    input_name = session.get_inputs()[0].name
    outputs = session.run(None, {input_name: merged})
    bounds = np.cumsum([0] + sizes)
    return [[out[lo:hi] for out in outputs] for lo, hi in zip(bounds[:-1], bounds[1:])]

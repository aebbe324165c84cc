"""The same pipeline as the served models, in process: FeatureSpec kernels + ONNX Runtime.

The fused `speech2face` Triton model runs this class too, so served and in-process results
(and their costs) differ only by the serving path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, ContextManager

import numpy as np

from speech2face.engine import contract
from speech2face.engine.contract.bundle import ModelBundle
from speech2face.engine.features.kernels import compute_features
from speech2face.engine.features.resampling import validate_audio
from speech2face.engine.runtime.onnx_runner import open_session
from speech2face.engine.runtime.peer_activity import PeerActivity
from speech2face.engine.contract.results import FaceResult


def _untimed(_stage: str) -> ContextManager:
    return contextlib.nullcontext()


@dataclasses.dataclass(frozen=True)
class RuntimeOptions:
    """How one runtime uses the cores (the cpu target's config parameters carry the same fields)."""

    threads: int = 0              # ONNX Runtime intra-op and feature-kernel threads; 0: all cores
    spinning: bool = False        # ONNX Runtime workers busy-wait between parallel sections
    concurrent_runs: int = 0      # single-thread lanes a batch of several clips is split over; 0: none
    # A multi-thread run keeps its caller and each ONNX Runtime worker on a CPU of its own, one
    # caller at a time (another caller meanwhile runs single-threaded, unpinned): a guest scheduler
    # that packs threads onto few vCPUs after an idle spell would otherwise run both on one
    # (benchmarks/LOAD.md, "Why c=1 latency was bimodal").
    pin_threads: bool = False
    # A lock file shared by all instances of one served model (engine/runtime/peer_activity.py): while
    # another instance computes, this one runs single-threaded; alone, it uses all `threads`.
    peers_lock: str | None = None

    def parameters(self) -> dict[str, str]:
        """The options as the cpu target's config parameters (contract.RUNTIME_PARAMETERS)."""
        return {name: str(int(getattr(self, field))) for field, name in contract.RUNTIME_PARAMETERS.items()}

    @classmethod
    def from_parameters(cls, parameters: dict[str, str], peers_lock: str | None = None) -> RuntimeOptions:
        """Options from config parameters; one a config lacks keeps its default."""
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        values = {field: (parameters[name] == "1" if kinds[field] == "bool" else int(parameters[name]))
                  for field, name in contract.RUNTIME_PARAMETERS.items() if name in parameters}
        return cls(**values, peers_lock=peers_lock)

    def placement(self) -> tuple[int | None, tuple[int, ...]]:
        """(the caller's CPU, the workers' CPUs) when pinning applies, else (None, ()).

        Only where this process may use exactly `threads` CPUs (a small VM, a pod with exclusive
        CPUs, taskset): there the run owns them. On a larger shared set, fixed CPUs could be the
        ones every other process (and every other server started with these options) also pins.
        """
        cpus = sorted(os.sched_getaffinity(0))
        if not self.pin_threads or self.threads < 2 or len(cpus) != self.threads:
            return None, ()
        return cpus[0], tuple(cpus[1:self.threads])


@dataclasses.dataclass
class _Lane:
    """One encoder and decoder session pair and the feature-kernel threads that go with them."""

    encoder: object
    decoder: object
    threads: int

    @classmethod
    def open(cls, bundle: ModelBundle, threads: int, spinning: bool = False, workers: tuple[int, ...] = ()):
        return cls(open_session(bundle.voice_encoder, threads, spinning, workers),
                   open_session(bundle.face_decoder, threads, spinning, workers), threads)


class LocalRuntime:
    def __init__(self, bundle: ModelBundle, intra_op_threads: int = 0, options: RuntimeOptions | None = None):
        self.bundle = bundle
        self.options = options or RuntimeOptions(threads=intra_op_threads)
        self.threads = self.options.threads
        self._caller_cpu, workers = self.options.placement()
        self._all_cpus = os.sched_getaffinity(0)
        self._main_busy = threading.Lock()  # the pinned main lane: one caller at a time
        self._main = _Lane.open(bundle, self.threads, self.options.spinning, workers)
        self.encoder, self.decoder = self._main.encoder, self._main.decoder
        # Single-thread lanes for batches: independent sessions computing side by side never wait
        # for each other, where one multi-thread run meets a barrier at every operator.
        lanes = self.options.concurrent_runs
        self._lanes = [_Lane.open(bundle, 1) for _ in range(lanes)]
        self._pool = ThreadPoolExecutor(lanes, thread_name_prefix="s2f-lane") if lanes else None
        self._peers = PeerActivity(self.options.peers_lock) if self.options.peers_lock else None
        self._solo = _Lane.open(bundle, 1) if self._peers or self._caller_cpu is not None else None

    def run(self, clips: list[np.ndarray], stage: Callable[[str], ContextManager] = _untimed,
            ) -> tuple[np.ndarray, np.ndarray]:
        """Validated clips (mono float32 at the spec's rate) -> (normalised features, uint8 images).

        `stage(name)` wraps each stage (the served model times them into its metrics). A lone
        clip runs on all `threads`; with `concurrent_runs` lanes a batch is cut into that many
        chunks, each run on its own single-thread lane at the same time (timed as one stage).
        """
        if self._peers is not None:
            with self._peers.computing() as alone:
                if not alone:  # another instance holds a core: one thread here, no barriers
                    return self._run_lane(self._solo, clips, stage)
                return self._run_alone(clips, stage)
        return self._run_alone(clips, stage)

    def _run_alone(self, clips: list[np.ndarray], stage: Callable[[str], ContextManager]):
        if self._pool is None or len(clips) < 2:
            return self._run_main(clips, stage)
        chunks = [c for c in np.array_split(np.arange(len(clips)), len(self._lanes)) if c.size]
        with stage("lanes"):
            results = list(self._pool.map(lambda lane, idx: self._run_lane(lane, [clips[i] for i in idx], _untimed),
                                          self._lanes, chunks))
        return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])

    def _run_main(self, clips: list[np.ndarray], stage: Callable[[str], ContextManager]):
        """The multi-thread lane; pinned (its workers' CPUs are fixed in its sessions) when the
        options say so, with the caller on its own CPU for the run, or single-threaded when
        another caller holds it."""
        if self._caller_cpu is None:
            return self._run_lane(self._main, clips, stage)
        if not self._main_busy.acquire(blocking=False):
            return self._run_lane(self._solo, clips, stage)
        try:
            os.sched_setaffinity(0, {self._caller_cpu})  # pid 0: this thread only
            try:
                return self._run_lane(self._main, clips, stage)
            finally:
                os.sched_setaffinity(0, self._all_cpus)
        finally:
            self._main_busy.release()

    def _run_lane(self, lane: _Lane, clips: list[np.ndarray], stage: Callable[[str], ContextManager]):
        with stage("features"):
            spectrograms = compute_features(clips, self.bundle.feature_spec, lane.threads or None)
        with stage("encoder"):
            raw, normalized = lane.encoder.run(None, {contract.ONNX_ENCODER_INPUT: spectrograms})
        with stage("decoder"):
            images, _landmarks = lane.decoder.run(None, {contract.ONNX_DECODER_INPUT: raw})
        return normalized, images

    def infer_batch(self, clips: list[tuple[np.ndarray, int]]) -> list[FaceResult]:
        start = time.perf_counter()
        spec = self.bundle.feature_spec
        normalized, images = self.run([validate_audio(a, r, spec) for a, r in clips])
        latency = time.perf_counter() - start
        return [FaceResult(f, im, latency) for f, im in zip(normalized, images)]

    def infer(self, audio: np.ndarray, sample_rate: int) -> FaceResult:
        return self.infer_batch([(audio, sample_rate)])[0]

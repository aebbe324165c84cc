"""The same pipeline as the served models, in process: FeatureSpec kernels + ONNX Runtime.

The fused `speech2face` Triton model runs this class too, so served and in-process results
(and their costs) differ only by the serving path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, ContextManager

import numpy as np

from speech2face.engine import contract
from speech2face.engine.bundle import ModelBundle
from speech2face.engine.features import compute_features, validate_audio
from speech2face.engine.onnx_runner import open_session
from speech2face.engine.results import FaceResult


def _untimed(_stage: str) -> ContextManager:
    return contextlib.nullcontext()


@dataclasses.dataclass(frozen=True)
class RuntimeOptions:
    """How one runtime uses the cores (the cpu target's config parameters carry the same fields)."""

    threads: int = 0              # ONNX Runtime intra-op and feature-kernel threads; 0: all cores
    spinning: bool = False        # ONNX Runtime workers busy-wait between parallel sections
    concurrent_runs: int = 1      # a batch of several clips runs as this many concurrent chunks


class LocalRuntime:
    def __init__(self, bundle: ModelBundle, intra_op_threads: int = 0, options: RuntimeOptions | None = None):
        self.bundle = bundle
        self.options = options or RuntimeOptions(threads=intra_op_threads)
        self.threads = self.options.threads
        self.encoder = open_session(bundle.voice_encoder, self.threads, self.options.spinning)
        self.decoder = open_session(bundle.face_decoder, self.threads, self.options.spinning)
        self._pool = (ThreadPoolExecutor(self.options.concurrent_runs, thread_name_prefix="s2f-run")
                      if self.options.concurrent_runs > 1 else None)

    def run(self, clips: list[np.ndarray], stage: Callable[[str], ContextManager] = _untimed,
            ) -> tuple[np.ndarray, np.ndarray]:
        """Validated clips (mono float32 at the spec's rate) -> (normalised features, uint8 images).

        `stage(name)` wraps each stage (the served model times them into its metrics). With
        `concurrent_runs` > 1, a batch is cut into that many chunks run side by side: ONNX
        Runtime's caller threads then join its pool's workers, so the cores stay busy where one
        batched run would wait at every operator's barrier.
        """
        if self._pool is None or len(clips) < 2:
            return self._run_chunk(clips, stage)
        chunks = [c for c in np.array_split(np.arange(len(clips)), self.options.concurrent_runs) if c.size]
        results = list(self._pool.map(lambda idx: self._run_chunk([clips[i] for i in idx], _untimed), chunks))
        return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])

    def _run_chunk(self, clips: list[np.ndarray], stage: Callable[[str], ContextManager]):
        with stage("features"):
            spectrograms = compute_features(clips, self.bundle.feature_spec, self.threads or None)
        with stage("encoder"):
            raw, normalized = self.encoder.run(None, {contract.ONNX_ENCODER_INPUT: spectrograms})
        with stage("decoder"):
            images, _landmarks = self.decoder.run(None, {contract.ONNX_DECODER_INPUT: raw})
        return normalized, images

    def infer_batch(self, clips: list[tuple[np.ndarray, int]]) -> list[FaceResult]:
        start = time.perf_counter()
        spec = self.bundle.feature_spec
        normalized, images = self.run([validate_audio(a, r, spec) for a, r in clips])
        latency = time.perf_counter() - start
        return [FaceResult(f, im, latency) for f, im in zip(normalized, images)]

    def infer(self, audio: np.ndarray, sample_rate: int) -> FaceResult:
        return self.infer_batch([(audio, sample_rate)])[0]

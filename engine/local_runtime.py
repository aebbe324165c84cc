"""The same pipeline as the served models, in process: FeatureSpec kernels + ONNX Runtime.

The fused `speech2face` Triton model runs this class too, so served and in-process results
(and their costs) differ only by the serving path.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, ContextManager

import numpy as np

from speech2face.engine import contract
from speech2face.engine.bundle import ModelBundle
from speech2face.engine.features import compute_features, validate_audio
from speech2face.engine.onnx_runner import open_session
from speech2face.engine.results import FaceResult


class LocalRuntime:
    def __init__(self, bundle: ModelBundle, intra_op_threads: int = 0):
        self.bundle = bundle
        self.threads = intra_op_threads
        self.encoder = open_session(bundle.voice_encoder, intra_op_threads)
        self.decoder = open_session(bundle.face_decoder, intra_op_threads)

    def run(self, clips: list[np.ndarray],
            stage: Callable[[str], ContextManager] = lambda _name: contextlib.nullcontext(),
            ) -> tuple[np.ndarray, np.ndarray]:
        """Validated clips (mono float32 at the spec's rate) -> (normalised features, uint8 images).

        `stage(name)` wraps each stage (the served model times them into its metrics).
        """
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

"""The same pipeline as the served ensemble, in process: FeatureSpec kernels + ONNX Runtime."""

from __future__ import annotations

import time

import numpy as np

from speech2face.engine import contract
from speech2face.engine.bundle import ModelBundle
from speech2face.engine.client import FaceResult
from speech2face.engine.features import compute_features, validate_audio
from speech2face.engine.onnx_runner import open_session


class LocalRuntime:
    def __init__(self, bundle: ModelBundle, intra_op_threads: int = 0):
        self.bundle = bundle
        self.encoder = open_session(bundle.voice_encoder, intra_op_threads)
        self.decoder = open_session(bundle.face_decoder, intra_op_threads)

    def features(self, clips: list[tuple[np.ndarray, int]]) -> np.ndarray:
        spec = self.bundle.feature_spec
        return compute_features([validate_audio(a, r, spec) for a, r in clips], spec)

    def infer_batch(self, clips: list[tuple[np.ndarray, int]]) -> list[FaceResult]:
        start = time.perf_counter()
        raw, normalized = self.encoder.run(None, {contract.ONNX_ENCODER_INPUT: self.features(clips)})
        images, _landmarks = self.decoder.run(None, {contract.ONNX_DECODER_INPUT: raw})
        latency = time.perf_counter() - start
        return [FaceResult(f, im, latency) for f, im in zip(normalized, images)]

    def infer(self, audio: np.ndarray, sample_rate: int) -> FaceResult:
        return self.infer_batch([(audio, sample_rate)])[0]

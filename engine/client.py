"""Thin client of the speech2face ensemble over gRPC or HTTP (tritonclient, NumPy, soundfile)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from speech2face.engine import contract


class InferenceError(RuntimeError):
    """The server refused or failed a request; the message is the server's."""


@dataclasses.dataclass
class FaceResult:
    feature: np.ndarray      # (D,) float32, L2-normalised
    image: np.ndarray        # (H, W, 3) uint8
    latency_s: float


class Speech2FaceClient:
    def __init__(self, url: str, protocol: str = "grpc", timeout_s: float = 60.0):
        if protocol == "grpc":
            import tritonclient.grpc as triton
        elif protocol == "http":
            import tritonclient.http as triton
        else:
            raise ValueError(f"protocol must be 'grpc' or 'http', got {protocol!r}")
        self._triton = triton
        self.protocol = protocol
        self.timeout_s = timeout_s
        self._client = triton.InferenceServerClient(url=url)

    def infer(self, audio: np.ndarray, sample_rate: int, model: str = contract.ENSEMBLE) -> FaceResult:
        audio = np.asarray(audio, dtype=np.float32).reshape(1, -1)
        rate = np.array([[sample_rate]], dtype=np.int32)
        inputs = [self._triton.InferInput(contract.AUDIO.name, list(audio.shape), contract.AUDIO.triton_dtype),
                  self._triton.InferInput(contract.SAMPLE_RATE.name, [1, 1], contract.SAMPLE_RATE.triton_dtype)]
        inputs[0].set_data_from_numpy(audio)
        inputs[1].set_data_from_numpy(rate)
        outputs = [self._triton.InferRequestedOutput(n)
                   for n in (contract.FACE_FEATURE_NAME, contract.FACE_IMAGE_NAME)]
        start = time.perf_counter()
        try:
            if self.protocol == "grpc":
                result = self._client.infer(model, inputs, outputs=outputs, client_timeout=self.timeout_s)
            else:
                result = self._client.infer(model, inputs, outputs=outputs)
        except self._triton_exception() as error:
            raise InferenceError(error.message() if hasattr(error, "message") else str(error)) from None
        latency = time.perf_counter() - start
        return FaceResult(result.as_numpy(contract.FACE_FEATURE_NAME)[0],
                          result.as_numpy(contract.FACE_IMAGE_NAME)[0], latency)

    def _triton_exception(self):
        from tritonclient.utils import InferenceServerException
        return InferenceServerException

    def is_ready(self) -> bool:
        return self._client.is_model_ready(contract.ENSEMBLE)

    def close(self) -> None:
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

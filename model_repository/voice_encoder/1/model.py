"""voice_encoder: spectrogram -> face feature (raw, and L2-normalised), ONNX Runtime inside."""

import triton_python_backend_utils as pb_utils

from speech2face.engine import contract
from speech2face.engine.runtime.onnx_runner import open_model_session, run_batched


class TritonPythonModel:
    def initialize(self, args):
        self.session = open_model_session(args)

    def execute(self, requests):
        spectrograms = [pb_utils.get_input_tensor_by_name(r, contract.SPECTROGRAM_NAME).as_numpy() for r in requests]
        responses = []
        for raw, normalized in run_batched(self.session, spectrograms):
            responses.append(pb_utils.InferenceResponse([
                pb_utils.Tensor(contract.FEATURE_RAW_NAME, raw),
                pb_utils.Tensor(contract.FACE_FEATURE_NAME, normalized),
            ]))
        return responses

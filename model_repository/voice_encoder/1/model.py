"""voice_encoder: spectrogram -> face feature (raw, and L2-normalised), ONNX Runtime inside."""

import json
from pathlib import Path

import triton_python_backend_utils as pb_utils

from speech2face.engine import contract
from speech2face.engine.onnx_runner import open_session, run_batched


class TritonPythonModel:
    def initialize(self, args):
        parameters = json.loads(args["model_config"])["parameters"]
        model_path = Path(args["model_repository"]) / args["model_version"] / contract.ONNX_FILE
        self.session = open_session(model_path, int(parameters[contract.THREADS_PARAMETER]["string_value"]))

    def execute(self, requests):
        spectrograms = [pb_utils.get_input_tensor_by_name(r, contract.SPECTROGRAM_NAME).as_numpy() for r in requests]
        responses = []
        for raw, normalized in run_batched(self.session, spectrograms):
            responses.append(pb_utils.InferenceResponse([
                pb_utils.Tensor(contract.FEATURE_RAW_NAME, raw),
                pb_utils.Tensor(contract.FACE_FEATURE_NAME, normalized),
            ]))
        return responses

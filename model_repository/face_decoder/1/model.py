"""face_decoder: raw face feature -> uint8 face image (H, W, 3), ONNX Runtime inside."""

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
        features = [pb_utils.get_input_tensor_by_name(r, contract.FEATURE_RAW_NAME).as_numpy()
                    for r in requests]
        return [pb_utils.InferenceResponse([pb_utils.Tensor(contract.FACE_IMAGE_NAME, image)])
                for image, _landmarks in run_batched(self.session, features)]

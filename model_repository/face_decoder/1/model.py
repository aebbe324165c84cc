"""face_decoder: raw face feature -> uint8 face image (H, W, 3), ONNX Runtime inside."""

import triton_python_backend_utils as pb_utils

from speech2face.engine import contract
from speech2face.engine.runtime.onnx_runner import open_model_session, run_batched


class TritonPythonModel:
    def initialize(self, args):
        self.session = open_model_session(args)

    def execute(self, requests):
        features = [pb_utils.get_input_tensor_by_name(r, contract.FEATURE_RAW_NAME).as_numpy()
                    for r in requests]
        return [pb_utils.InferenceResponse([pb_utils.Tensor(contract.FACE_IMAGE_NAME, image)])
                for image, _landmarks in run_batched(self.session, features)]

"""speech2face (fused layout): raw audio -> face feature and face image in one Python model.

The same contract as the ensemble, with one process hop instead of three: features (C++
kernels), voice encoder and face decoder (ONNX Runtime) run here, through the very code the
in-process LocalRuntime runs. The version folder is a model bundle.
"""

import json
from pathlib import Path

import triton_python_backend_utils as pb_utils

from speech2face.engine import contract
from speech2face.engine.bundle import load_bundle
from speech2face.engine.local_runtime import LocalRuntime
from speech2face.engine.request_batch import gather_clips


class TritonPythonModel:
    def initialize(self, args):
        parameters = json.loads(args["model_config"])["parameters"]
        bundle = load_bundle(Path(args["model_repository"]) / args["model_version"])
        self.runtime = LocalRuntime(bundle, int(parameters["intra_op_threads"]["string_value"]))

    def execute(self, requests):
        batch = gather_clips(((pb_utils.get_input_tensor_by_name(r, contract.AUDIO.name).as_numpy(),
                               pb_utils.get_input_tensor_by_name(r, contract.SAMPLE_RATE.name).as_numpy())
                              for r in requests), self.runtime.bundle.feature_spec)
        responses = [None] * len(requests)
        for i, message in batch.refusals.items():
            responses[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(message, pb_utils.TritonError.INVALID_ARG))
        if batch.clips:
            features, images = self.runtime.run(batch.clips)
            for i, mask in batch.requests_served():
                responses[i] = pb_utils.InferenceResponse([pb_utils.Tensor(contract.FACE_FEATURE_NAME, features[mask]),
                                                           pb_utils.Tensor(contract.FACE_IMAGE_NAME, images[mask])])
        return responses

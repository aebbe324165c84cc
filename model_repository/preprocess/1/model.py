"""preprocess: raw audio of any length -> the FeatureSpec's spectrogram, one kernel call per execute()."""

import json

import triton_python_backend_utils as pb_utils

from speech2face.engine import contract
from speech2face.engine.feature_spec import FeatureSpec
from speech2face.engine.features import compute_features
from speech2face.engine.request_batch import gather_clips


class TritonPythonModel:
    def initialize(self, args):
        parameters = json.loads(args["model_config"])["parameters"]
        self.spec = FeatureSpec.from_json(parameters["feature_spec"]["string_value"])
        self.num_threads = int(parameters["num_threads"]["string_value"])

    def execute(self, requests):
        batch = gather_clips(((pb_utils.get_input_tensor_by_name(r, contract.AUDIO.name).as_numpy(),
                               pb_utils.get_input_tensor_by_name(r, contract.SAMPLE_RATE.name).as_numpy())
                              for r in requests), self.spec)
        responses = [None] * len(requests)
        for i, message in batch.refusals.items():
            responses[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(message, pb_utils.TritonError.INVALID_ARG))
        if batch.clips:
            features = compute_features(batch.clips, self.spec, self.num_threads)
            for i, mask in batch.requests_served():
                responses[i] = pb_utils.InferenceResponse([pb_utils.Tensor(contract.SPECTROGRAM_NAME, features[mask])])
        return responses

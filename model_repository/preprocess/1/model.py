"""preprocess: raw audio of any length, or an encoded file -> the FeatureSpec's spectrogram.

One kernel call per execute(), whatever the mix of requests.
"""

import json

import triton_python_backend_utils as pb_utils

from speech2face.engine import contract
from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.engine.features.kernels import compute_features
from speech2face.engine.runtime.model_metrics import ModelMetrics
from speech2face.engine.runtime.request_batch import gather_clips, refusal_response_error


class TritonPythonModel:
    def initialize(self, args):
        parameters = json.loads(args["model_config"])["parameters"]
        self.spec = FeatureSpec.from_json(parameters[contract.FEATURE_SPEC_PARAMETER]["string_value"])
        self.num_threads = int(parameters[contract.THREADS_PARAMETER]["string_value"])
        self.metrics = ModelMetrics(pb_utils, args["model_name"])

    def execute(self, requests):
        self.metrics.flush_if_due()
        with self.metrics.stage("inputs"):
            batch = gather_clips(requests, pb_utils.get_input_tensor_by_name, self.spec)
        responses = [None] * len(requests)
        for i, error in batch.refusals.items():
            self.metrics.refused(error.reason)
            responses[i] = pb_utils.InferenceResponse(error=refusal_response_error(pb_utils, error))
        if batch.clips:
            with self.metrics.stage("features"):
                features = compute_features(batch.clips, self.spec, self.num_threads)
            with self.metrics.stage("outputs"):
                for i, mask in batch.requests_served():
                    responses[i] = pb_utils.InferenceResponse([pb_utils.Tensor(contract.SPECTROGRAM_NAME, features[mask])])
        return responses

    def finalize(self):
        self.metrics.flush()  # the stage times not yet handed to Triton

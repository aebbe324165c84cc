"""preprocess: raw audio of any length -> the FeatureSpec's spectrogram, one kernel call per execute()."""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from speech2face.engine import contract
from speech2face.engine.feature_spec import FeatureSpec
from speech2face.engine.features import AudioError, compute_features, validate_audio


class TritonPythonModel:
    def initialize(self, args):
        parameters = json.loads(args["model_config"])["parameters"]
        self.spec = FeatureSpec.from_json(parameters["feature_spec"]["string_value"])
        self.num_threads = int(parameters["num_threads"]["string_value"])

    def _clips(self, request):
        audio = pb_utils.get_input_tensor_by_name(request, contract.AUDIO.name).as_numpy()
        rates = pb_utils.get_input_tensor_by_name(request, contract.SAMPLE_RATE.name).as_numpy()
        if audio.ndim != 2:
            raise AudioError(f"AUDIO must be (batch, samples), got shape {audio.shape}")
        if rates.shape != (audio.shape[0], 1):
            raise AudioError(f"SAMPLE_RATE must be (batch, 1), got shape {rates.shape}")
        return [validate_audio(row, int(rate), self.spec) for row, rate in zip(audio, rates[:, 0])]

    def execute(self, requests):
        responses = [None] * len(requests)
        clips, owners = [], []
        for i, request in enumerate(requests):
            try:
                request_clips = self._clips(request)
            except AudioError as error:
                refusal = pb_utils.TritonError(str(error), pb_utils.TritonError.INVALID_ARG)
                responses[i] = pb_utils.InferenceResponse(error=refusal)
                continue
            clips += request_clips
            owners += [i] * len(request_clips)
        if clips:
            features = compute_features(clips, self.spec, self.num_threads)
            owners = np.asarray(owners)
            for i in np.unique(owners):
                tensor = pb_utils.Tensor(contract.SPECTROGRAM_NAME, features[owners == i])
                responses[i] = pb_utils.InferenceResponse([tensor])
        return responses

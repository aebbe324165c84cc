"""speech2face (fused layout): raw audio or an encoded file -> face feature and face image.

The same contract as the ensemble, with one process hop instead of three: decoding and
features (libsndfile, C++ kernels), voice encoder and face decoder (ONNX Runtime) run here,
through the very code the in-process LocalRuntime runs. The version folder is a model bundle.
"""

import hashlib
import json
import os
import tempfile
from pathlib import Path

import triton_python_backend_utils as pb_utils

from speech2face.engine import contract
from speech2face.engine.contract.bundle import load_bundle
from speech2face.engine.runtime.local_runtime import LocalRuntime, RuntimeOptions
from speech2face.engine.runtime.model_metrics import ModelMetrics
from speech2face.engine.runtime.request_batch import gather_clips, refusal_response_error


class TritonPythonModel:
    def initialize(self, args):
        parameters = {k: v["string_value"] for k, v in json.loads(args["model_config"])["parameters"].items()}
        options = RuntimeOptions.from_parameters(parameters, peers_lock=self._peers_lock(args, parameters))
        bundle = load_bundle(Path(args["model_repository"]) / args["model_version"])
        self.runtime = LocalRuntime(bundle, options=options)
        self.metrics = ModelMetrics(pb_utils, args["model_name"])

    @staticmethod
    def _peers_lock(args, parameters):
        """The lock file all instances of this model share (None: instances do not adapt).

        Beside config.pbtxt; where the repository is read-only, in the temp folder, named after it.
        """
        if parameters.get(contract.ADAPTIVE_THREADS_PARAMETER, "0") != "1":
            return None
        model_dir = Path(args["model_repository"])
        if os.access(model_dir, os.W_OK):
            return str(model_dir / contract.PEERS_LOCK_FILE)
        digest = hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:16]
        return str(Path(tempfile.gettempdir()) / f"s2f-{digest}{contract.PEERS_LOCK_FILE}")

    def execute(self, requests):
        self.metrics.flush_if_due()
        with self.metrics.stage("inputs"):
            batch = gather_clips(requests, pb_utils.get_input_tensor_by_name, self.runtime.bundle.feature_spec)
        responses = [None] * len(requests)
        for i, error in batch.refusals.items():
            self.metrics.refused(error.reason)
            responses[i] = pb_utils.InferenceResponse(error=refusal_response_error(pb_utils, error))
        if batch.clips:
            features, images = self.runtime.run(batch.clips, self.metrics.stage)
            with self.metrics.stage("outputs"):
                for i, mask in batch.requests_served():
                    responses[i] = pb_utils.InferenceResponse([pb_utils.Tensor(contract.FACE_FEATURE_NAME, features[mask]),
                                                               pb_utils.Tensor(contract.FACE_IMAGE_NAME, images[mask])])
        return responses

    def finalize(self):
        self.metrics.flush()  # the stage times not yet handed to Triton

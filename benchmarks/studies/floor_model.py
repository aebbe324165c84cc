"""A served model that computes nothing: the floor of the served path (benchmarks/studies/breakdown.py).

It takes the fused speech2face model's place, config and contract unchanged: it reads its
input (AUDIO samples, or AUDIO_FILE bytes left undecoded) and answers zeros of the output
shapes. A round trip to it is what serving costs one request with the model's own work taken
away: the client, gRPC, Triton and the Python backend's process hop. With the config parameter
`wait_ms` it sleeps that long before answering: a request that spends the real model's time in
the model without using a core, so the serving threads sleep through it as they do in real use.
With `counter_updates` it updates a Triton counter that many times per execute(), as the served
models once did for their stage times (each update is a round trip to the server process).
"""

import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.wait_s = float(parameters.get("wait_ms", "0")) / 1e3
        self.counter = None
        self.counter_updates = int(parameters.get("counter_updates", "0"))
        if self.counter_updates:
            # The family must outlive its metric (the Python backend deletes them in that order).
            self.family = pb_utils.MetricFamily(name="s2f_floor_updates_total", description="floor model updates",
                                                kind=pb_utils.MetricFamily.COUNTER)
            self.counter = self.family.Metric(labels={"model": args["model_name"]})
        outputs = config["output"]
        self.outputs = [(o["name"], pb_utils.triton_string_to_numpy(o["data_type"]), [int(d) for d in o["dims"]])
                        for o in outputs]

    def execute(self, requests):
        time.sleep(self.wait_s)
        for _ in range(self.counter_updates):
            self.counter.increment(1)
        responses = []
        for request in requests:
            audio = pb_utils.get_input_tensor_by_name(request, "AUDIO")
            sent = audio if audio is not None else pb_utils.get_input_tensor_by_name(request, "AUDIO_FILE")
            batch = sent.as_numpy().shape[0]
            responses.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor(name, np.zeros([batch] + dims, dtype)) for name, dtype, dims in self.outputs]))
        return responses

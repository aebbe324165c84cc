"""One model per input form, every input required: what a generic client, perf_analyzer and Model
Analyzer can call from the metadata alone. Both cpu layouts serve them, with the same answers."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import tritonclient.grpc as grpcclient

from speech2face.engine import contract
from speech2face.engine.runtime.builtin import SAMPLE_VOICE

FORMS = (contract.SAMPLES_MODEL, contract.FILE_MODEL)


def _generic_inputs(metadata: dict) -> list:
    """Every input the metadata declares, filled from the bundled clip by datatype alone (Triton's
    image_client pattern: nothing but the metadata says what goes where)."""
    audio, rate = soundfile.read(SAMPLE_VOICE, dtype="float32")
    values = {"FP32": audio[None, :], "INT32": np.array([[rate]], np.int32),
              "BYTES": np.array([[SAMPLE_VOICE.read_bytes()]], dtype=object)}
    inputs = []
    for entry in metadata["inputs"]:
        value = values[entry["datatype"]]
        tensor = grpcclient.InferInput(entry["name"], list(value.shape), entry["datatype"])
        tensor.set_data_from_numpy(value)
        inputs.append(tensor)
    return inputs


@pytest.mark.parametrize("model", FORMS)
def test_every_input_of_a_per_form_model_is_required(any_layout_server, model):
    client = grpcclient.InferenceServerClient(any_layout_server.grpc_url)
    metadata = client.get_model_metadata(model, as_json=True)
    config = client.get_model_config(model, as_json=True)["config"]
    assert [i["name"] for i in metadata["inputs"]] == [t.name for t in contract.MODEL_INPUTS[model]]
    assert not any(i.get("optional", False) for i in config["input"]), config["input"]
    assert {o["name"] for o in metadata["outputs"]} == {contract.FACE_FEATURE_NAME, contract.FACE_IMAGE_NAME}


@pytest.mark.parametrize("model", FORMS)
def test_a_request_filling_every_declared_input_is_answered(any_layout_server, model, reference):
    client = grpcclient.InferenceServerClient(any_layout_server.grpc_url)
    result = client.infer(model, _generic_inputs(client.get_model_metadata(model, as_json=True)))
    feature = result.as_numpy(contract.FACE_FEATURE_NAME)[0]
    assert np.abs(feature - reference.feature).max() <= contract.FEATURE_ATOL   # the same answer as in process
    assert result.as_numpy(contract.FACE_IMAGE_NAME).shape[1:] == reference.image.shape


def test_a_per_form_model_refuses_a_missing_input_by_name(triton_server):
    client = grpcclient.InferenceServerClient(triton_server.grpc_url)
    audio = grpcclient.InferInput(contract.AUDIO.name, [1, 16000], "FP32")
    audio.set_data_from_numpy(np.zeros((1, 16000), np.float32) + 0.1)
    with pytest.raises(Exception, match=contract.SAMPLE_RATE.name):
        client.infer(contract.SAMPLES_MODEL, [audio])


@pytest.fixture(scope="module")
def reference(bundle):
    from speech2face.engine.runtime.local_runtime import LocalRuntime

    audio, rate = soundfile.read(SAMPLE_VOICE, dtype="float32")
    return LocalRuntime(bundle).infer(audio, rate)

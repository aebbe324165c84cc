"""The generated repository: configs parse as ModelConfig and follow the one contract."""

from __future__ import annotations

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from speech2face.engine import contract
from speech2face.export.repository import read_build_record


def _config(repository, name) -> pb.ModelConfig:
    return text_format.Parse((repository / name / "config.pbtxt").read_text(), pb.ModelConfig())


def test_every_config_parses(cpu_repository):
    names = {p.name for p in cpu_repository.iterdir() if p.is_dir()}
    assert names == {contract.ENSEMBLE, contract.PREPROCESS, contract.VOICE_ENCODER, contract.FACE_DECODER}
    for name in names:
        config = _config(cpu_repository, name)
        assert config.name == name
        assert config.max_batch_size > 0


def test_ensemble_contract(cpu_repository, bundle):
    config = _config(cpu_repository, contract.ENSEMBLE)
    assert [(i.name, pb.DataType.Name(i.data_type), list(i.dims)) for i in config.input] == [
        ("AUDIO", "TYPE_FP32", [-1]), ("SAMPLE_RATE", "TYPE_INT32", [1])]
    assert [(o.name, pb.DataType.Name(o.data_type), list(o.dims)) for o in config.output] == [
        ("FACE_FEATURE", "TYPE_FP32", [bundle.feature_dim]),
        ("FACE_IMAGE", "TYPE_UINT8", [bundle.image_size, bundle.image_size, 3])]
    assert [s.model_name for s in config.ensemble_scheduling.step] == [
        contract.PREPROCESS, contract.VOICE_ENCODER, contract.FACE_DECODER]


def test_raw_audio_is_ragged_and_batched(cpu_repository):
    config = _config(cpu_repository, contract.PREPROCESS)
    audio = next(i for i in config.input if i.name == contract.AUDIO.name)
    assert audio.allow_ragged_batch
    assert config.HasField("dynamic_batching")


def test_build_record_names_the_onnx_files(cpu_repository, bundle):
    record = read_build_record(cpu_repository)
    assert record["target"] == "cpu"
    assert set(record["onnx_sha256"]) == {"voice_encoder", "face_decoder"}
    assert record["feature_spec"] == bundle.feature_spec.to_dict()

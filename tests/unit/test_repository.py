"""The generated repository: configs parse as ModelConfig and follow the one contract."""

from __future__ import annotations

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from speech2face.engine import contract
from speech2face.engine.contract.bundle import load_bundle
from speech2face.engine.repository.cpu_repository import read_build_record, write_cpu_repository


def _config(repository, name) -> pb.ModelConfig:
    return text_format.Parse((repository / name / "config.pbtxt").read_text(), pb.ModelConfig())


@pytest.fixture(params=["fused", "ensemble"])
def repository(request):
    return request.getfixturevalue("cpu_repository" if request.param == "fused" else "ensemble_repository")


def test_every_config_parses(cpu_repository, ensemble_repository):
    forms = {contract.SAMPLES_MODEL, contract.FILE_MODEL}
    layouts = {cpu_repository: {contract.ENSEMBLE, *forms},
               ensemble_repository: {contract.ENSEMBLE, contract.PREPROCESS, contract.VOICE_ENCODER,
                                     contract.FACE_DECODER, *forms}}
    for repository, expected in layouts.items():
        names = {p.name for p in repository.iterdir() if p.is_dir()}
        assert names == expected
        for name in names:
            config = _config(repository, name)
            assert config.name == name
            assert config.max_batch_size > 0


def test_both_layouts_expose_one_contract(repository, bundle):
    config = _config(repository, contract.ENSEMBLE)
    # The literal contract a client app codes against: either AUDIO + SAMPLE_RATE or AUDIO_FILE.
    assert [(i.name, pb.DataType.Name(i.data_type), list(i.dims), i.optional) for i in config.input] == [
        ("AUDIO", "TYPE_FP32", [-1], True), ("SAMPLE_RATE", "TYPE_INT32", [1], True),
        ("AUDIO_FILE", "TYPE_STRING", [1], True)]
    assert [(o.name, pb.DataType.Name(o.data_type), list(o.dims)) for o in config.output] == [
        ("FACE_FEATURE", "TYPE_FP32", [bundle.feature_dim]),
        ("FACE_IMAGE", "TYPE_UINT8", [bundle.image_size, bundle.image_size, 3])]


def test_ensemble_chains_the_stages(ensemble_repository):
    config = _config(ensemble_repository, contract.ENSEMBLE)
    assert [s.model_name for s in config.ensemble_scheduling.step] == [
        contract.PREPROCESS, contract.VOICE_ENCODER, contract.FACE_DECODER]


def test_fused_model_is_one_python_model_holding_a_bundle(cpu_repository, bundle):
    config = _config(cpu_repository, contract.ENSEMBLE)
    assert config.backend == "python" and config.HasField("dynamic_batching")
    assert load_bundle(cpu_repository / contract.ENSEMBLE / "1").manifest() == bundle.manifest()


@pytest.mark.parametrize("model", [contract.PREPROCESS, contract.ENSEMBLE])
def test_raw_audio_is_ragged_and_batched(cpu_repository, ensemble_repository, model):
    repository = ensemble_repository if model == contract.PREPROCESS else cpu_repository
    config = _config(repository, model)
    audio = next(i for i in config.input if i.name == contract.AUDIO.name)
    assert audio.allow_ragged_batch
    assert config.HasField("dynamic_batching")


def test_unknown_layout_is_refused(bundle, tmp_path):
    with pytest.raises(ValueError, match="unknown repository layout 'sharded'"):
        write_cpu_repository(bundle, tmp_path / "repo", layout="sharded")
    assert not (tmp_path / "repo").exists()


def test_build_record_names_the_onnx_files(repository, bundle):
    record = read_build_record(repository)
    assert record["target"] == "cpu" and record["layout"] in ("fused", "ensemble")
    assert set(record["onnx_sha256"]) == {"voice_encoder", "face_decoder"}
    assert record["feature_spec"] == bundle.feature_spec.to_dict()

"""The gpu target's default layout for the paper's feature: DALI audio stage -> one waveform_to_face
engine (features inside it), no Python model, checked on CPU. Running its files end to end is
`s2f check` (tests/training/test_check.py)."""

from __future__ import annotations

import json
import subprocess

import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from speech2face.engine import contract
from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.export import tensorrt_build, waveform_graph
from speech2face.export.gpu_configs import GpuPolicy
from speech2face.export.gpu_repository import (SPLIT_LAYOUT, WAVEFORM_LAYOUT, choose_layout, parity_clips,
                                               write_gpu_repository)

pytest.importorskip("nvidia.dali")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def waveform_repository(bundle, tmp_path_factory):
    return write_gpu_repository(bundle, tmp_path_factory.mktemp("repo") / "gpu", build_plans=False)


def _config(repository, name) -> pb.ModelConfig:
    return text_format.Parse((repository / name / contract.CONFIG_FILE).read_text(), pb.ModelConfig())


def test_no_python_model_and_no_host_round_trip(waveform_repository):
    models = {p.name for p in waveform_repository.iterdir() if p.is_dir()}
    assert models == {contract.ENSEMBLE, contract.PREPROCESS, contract.WAVEFORM_ENGINE}
    configs = {name: _config(waveform_repository, name) for name in models}
    assert not any(c.backend == "python" for c in configs.values())
    assert not list(waveform_repository.rglob(contract.PYTHON_MODEL_FILE))
    # Both compute models sit on the GPU: DALI hands the clip to TensorRT in device memory.
    for name in (contract.PREPROCESS, contract.WAVEFORM_ENGINE):
        assert [g.kind for g in configs[name].instance_group] == [pb.ModelInstanceGroup.KIND_GPU]
    assert configs[contract.PREPROCESS].backend == "dali"
    assert (waveform_repository / contract.PREPROCESS / "1" / contract.DALI_FILE).stat().st_size > 1000
    assert configs[contract.WAVEFORM_ENGINE].platform == "tensorrt_plan"


def test_ensemble_chains_audio_to_face(waveform_repository, bundle):
    ensemble = _config(waveform_repository, contract.ENSEMBLE)
    assert [(i.name, pb.DataType.Name(i.data_type)) for i in ensemble.input] == [
        (contract.AUDIO.name, "TYPE_FP32"), (contract.SAMPLE_RATE.name, "TYPE_INT32")]
    assert [(o.name, list(o.dims)) for o in ensemble.output] == [
        (contract.FACE_FEATURE_NAME, [bundle.feature_dim]),
        (contract.FACE_IMAGE_NAME, [bundle.image_size, bundle.image_size, 3])]
    steps = ensemble.ensemble_scheduling.step
    assert [s.model_name for s in steps] == [contract.PREPROCESS, contract.WAVEFORM_ENGINE]
    available = {i.name for i in ensemble.input}
    for step in steps:
        model = _config(waveform_repository, step.model_name)
        assert set(step.input_map) == {i.name for i in model.input}
        assert set(step.input_map.values()) <= available
        available |= set(step.output_map.values())
    clip = _config(waveform_repository, contract.PREPROCESS).output[0]
    assert (clip.name, list(clip.dims)) == (contract.CLIP_NAME, [bundle.feature_spec.clip_samples])


def test_engine_onnx_files_match_the_config_and_keep_the_front_end_fp32(waveform_repository):
    model_dir = waveform_repository / contract.WAVEFORM_ENGINE
    inputs, outputs, _ = tensorrt_build.contract_from_config(model_dir / contract.CONFIG_FILE)
    for filename in (contract.ONNX_FILE, contract.ONNX_FP16_FILE):
        tensorrt_build.check_onnx_contract(model_dir / "1" / filename, inputs, outputs)
    fp16_graph = onnx.load(str(model_dir / "1" / contract.ONNX_FP16_FILE))
    kept = set(waveform_graph.front_end_nodes(fp16_graph))
    conv = next(n for n in fp16_graph.graph.node if n.name in kept and n.op_type == "Conv")
    basis = next(i for i in fp16_graph.graph.initializer if i.name == conv.input[1])
    assert basis.data_type == onnx.TensorProto.FLOAT
    assert not (model_dir / "1" / contract.PLAN_FILE).exists()  # never faked


def test_build_step_builds_the_one_engine(waveform_repository):
    script = waveform_repository / contract.BUILD_PLANS_FILE
    subprocess.run(["sh", "-n", str(script)], check=True)
    text = script.read_text()
    assert text.count("-m speech2face.export.tensorrt_build") == 1
    assert f"$REPO/{contract.WAVEFORM_ENGINE}/1/{contract.PLAN_FILE}" in text
    assert f"--fp32-layer-prefix {waveform_graph.FRONT_END_PREFIX}" in text
    record = json.loads((waveform_repository / contract.ENSEMBLE / contract.BUILD_RECORD_FILE).read_text())
    assert record["layout"] == WAVEFORM_LAYOUT and record["networks"] == [contract.WAVEFORM_ENGINE]
    assert record["preprocess"]["backend"] == "dali" and record["preprocess"]["output"] == contract.CLIP_NAME


def test_fp16_twin_parity_is_recorded_and_reproduces(waveform_repository, bundle):
    """Tolerance (fp16.Fp16Tolerance): feature cosine >= 0.999, image <= 8 levels, mean <= 1."""
    version = waveform_repository / contract.WAVEFORM_ENGINE / "1"
    parity = waveform_graph.check_fp16_parity(version / contract.ONNX_FILE, version / contract.ONNX_FP16_FILE,
                                              parity_clips(bundle.feature_spec, count=2))
    assert parity.ok, parity
    record = json.loads((waveform_repository / contract.ENSEMBLE / contract.BUILD_RECORD_FILE).read_text())
    assert record["fp16_parity_onnxruntime_cpu"]["ok"]


@pytest.mark.parametrize("spec,policy,reason", [
    (FeatureSpec(kind="logmel"), GpuPolicy(), "logmel"),
    (FeatureSpec(trim_silence=True), GpuPolicy(), "trim_silence"),
    (FeatureSpec(), GpuPolicy(preprocess="python"), "python"),
    (FeatureSpec(), GpuPolicy(features_in_graph=False), "features_in_graph"),
])
def test_other_kinds_fall_back_to_the_split_layout(spec, policy, reason):
    layout, why = choose_layout(spec, policy)
    assert layout == SPLIT_LAYOUT and reason in why
    assert choose_layout(FeatureSpec(kind="magnitude_powerlaw"), GpuPolicy())[0] == WAVEFORM_LAYOUT

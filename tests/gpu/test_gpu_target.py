"""The gpu target's split layout on CPU (the fallback for kinds the in-graph front end cannot compute:
preprocess, voice_encoder, face_decoder): configs, contract, serving graphs, fp16 parity, the plan
build step. The default waveform layout is tested in tests/gpu/test_gpu_waveform_target.py."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from speech2face.engine import contract
from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.engine.runtime.onnx_runner import open_session
from speech2face.export import fp16, gpu_configs, tensorrt_build
from speech2face.export.gpu_configs import GpuPolicy
from speech2face.export.gpu_repository import (BUILD_SCRIPT, ONNX_FP16, ONNX_FP32, dali_preprocess_writer,
                                               parity_spectrograms, write_gpu_repository)
from speech2face.engine.repository.model_configs import ServingShapes
from speech2face.engine.repository.cpu_repository import read_build_record
from speech2face.export.tensorrt_build import ContractError, ShapeProfile, check_onnx_contract

NETWORKS = (contract.VOICE_ENCODER, contract.FACE_DECODER)


@pytest.fixture(scope="module")
def gpu_repository(bundle, tmp_path_factory):
    return write_gpu_repository(bundle, tmp_path_factory.mktemp("repo") / "gpu",
                                GpuPolicy(features_in_graph=False), build_plans=False)


@pytest.fixture(scope="module")
def shapes(bundle):
    return ServingShapes(bundle.feature_spec, bundle.feature_dim, bundle.image_size)


def _config(repository, name) -> pb.ModelConfig:
    return text_format.Parse((repository / name / contract.CONFIG_FILE).read_text(), pb.ModelConfig())


def _io(items) -> list[tuple]:
    return [(t.name, pb.DataType.Name(t.data_type), list(t.dims)) for t in items]


def test_every_gpu_config_parses(gpu_repository):
    names = {p.name for p in gpu_repository.iterdir() if p.is_dir()}
    assert names == {contract.ENSEMBLE, contract.PREPROCESS, *NETWORKS}
    for name in names:
        config = _config(gpu_repository, name)
        assert config.name == name
        assert config.max_batch_size == GpuPolicy().max_batch_size


def test_network_models_are_tuned_plans(gpu_repository):
    policy = GpuPolicy()
    for name in NETWORKS:
        config = _config(gpu_repository, name)
        assert config.platform == "tensorrt_plan"
        assert config.default_model_filename == contract.PLAN_FILE
        assert [g.kind for g in config.instance_group] == [pb.ModelInstanceGroup.KIND_GPU]
        assert config.dynamic_batching.max_queue_delay_microseconds == policy.max_queue_delay_us
        assert [w.batch_size for w in config.model_warmup] == policy.warmup_batch_sizes()
        for warmup in config.model_warmup:
            assert set(warmup.inputs) == {i.name for i in config.input}
        cuda = config.optimization.cuda
        assert cuda.graphs
        # Every batch size 1..max falls into exactly one captured graph's range.
        covered = []
        for spec in cuda.graph_spec:
            low = spec.graph_lower_bound.batch_size if spec.HasField("graph_lower_bound") else spec.batch_size
            covered += range(low, spec.batch_size + 1)
        assert covered == list(range(1, policy.max_batch_size + 1))


def test_preprocess_falls_back_to_python_for_complex_powerlaw(gpu_repository, bundle):
    assert bundle.feature_spec.kind == "complex_powerlaw"
    config = _config(gpu_repository, contract.PREPROCESS)
    assert config.backend == "python"
    assert [g.kind for g in config.instance_group] == [pb.ModelInstanceGroup.KIND_CPU]
    assert (gpu_repository / contract.PREPROCESS / "1" / contract.PYTHON_MODEL_FILE).exists()
    assert next(i for i in config.input if i.name == contract.AUDIO.name).allow_ragged_batch
    # It batches whatever queued (the GPU stages behind it gain from batches); the cpu target's
    # batches of one are for CPU compute, where batching gains nothing.
    assert list(config.dynamic_batching.preferred_batch_size) == []
    record = read_build_record(gpu_repository)
    assert record["preprocess"]["backend"] == "python"
    writer, reason = dali_preprocess_writer(FeatureSpec())
    assert writer is None and "complex" in reason
    assert record["layout"] == "split" and "features_in_graph" in record["layout_reason"]


def test_split_ensemble_steps_use_their_models_tensors(gpu_repository):
    """Each step maps exactly the inputs its model declares and only outputs it produces, and the
    tensors flow: every step input is an ensemble input or an earlier step's output."""
    ensemble = _config(gpu_repository, contract.ENSEMBLE)
    available = {i.name for i in ensemble.input}
    for step in ensemble.ensemble_scheduling.step:
        model = _config(gpu_repository, step.model_name)
        assert set(step.input_map) == {i.name for i in model.input}
        assert set(step.output_map) <= {o.name for o in model.output}
        assert set(step.input_map.values()) <= available
        available |= set(step.output_map.values())
    assert {o.name for o in ensemble.output} <= available


def test_build_step_and_onnx_files_are_present(gpu_repository):
    script = gpu_repository / BUILD_SCRIPT
    assert script.exists() and os.access(script, os.X_OK)
    subprocess.run(["sh", "-n", str(script)], check=True)  # syntax
    text = script.read_text()
    assert text.count("-m speech2face.export.tensorrt_build") == len(NETWORKS)
    for name in NETWORKS:
        assert f"$REPO/{name}/1/model.plan" in text
        for filename in (ONNX_FP32, ONNX_FP16):
            model = onnx.load(str(gpu_repository / name / "1" / filename))
            assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
        assert not (gpu_repository / name / "1" / contract.PLAN_FILE).exists()  # never faked
    record = read_build_record(gpu_repository)
    assert record["target"] == "gpu"
    assert "not built here" in record["tensorrt_plans"]


def test_serving_onnx_files_match_their_configs(gpu_repository):
    for name in NETWORKS:
        inputs, outputs, _ = tensorrt_build.contract_from_config(gpu_repository / name / contract.CONFIG_FILE)
        for filename in (ONNX_FP32, ONNX_FP16):
            check_onnx_contract(gpu_repository / name / "1" / filename, inputs, outputs)


def test_serving_graphs_compute_what_the_bundle_computes(gpu_repository, bundle):
    spectrograms = parity_spectrograms(bundle.feature_spec, count=2)
    ours = open_session(gpu_repository / contract.VOICE_ENCODER / "1" / ONNX_FP32, 1)
    theirs = open_session(bundle.voice_encoder, 1)
    raw, normalized = ours.run([contract.FEATURE_RAW_NAME, contract.FACE_FEATURE_NAME],
                               {contract.SPECTROGRAM_NAME: spectrograms})
    expected = theirs.run(list(contract.ONNX_ENCODER_OUTPUTS), {contract.ONNX_ENCODER_INPUT: spectrograms})
    np.testing.assert_array_equal(raw, expected[0])
    np.testing.assert_array_equal(normalized, expected[1])
    decoder = open_session(gpu_repository / contract.FACE_DECODER / "1" / ONNX_FP32, 1)
    (image,) = decoder.run(None, {contract.FEATURE_RAW_NAME: raw})
    assert image.dtype == np.uint8 and image.shape == (2, bundle.image_size, bundle.image_size, 3)


def test_fp16_onnx_parity_on_onnxruntime_cpu(gpu_repository, bundle):
    """Tolerance (fp16.Fp16Tolerance): feature cosine >= 0.999 per row, image <= 8 levels, mean <= 1."""
    enc = gpu_repository / contract.VOICE_ENCODER / "1"
    dec = gpu_repository / contract.FACE_DECODER / "1"
    tolerance = fp16.Fp16Tolerance()
    assert tolerance.feature_min_cosine == 0.999
    parity = fp16.check_fp16_parity(enc / ONNX_FP32, enc / ONNX_FP16, dec / ONNX_FP32, dec / ONNX_FP16,
                                    parity_spectrograms(bundle.feature_spec), tolerance)
    assert parity.ok, parity
    assert read_build_record(gpu_repository)["fp16_parity_onnxruntime_cpu"]["ok"]
    # The fp16 graph really is fp16 inside, with the fp32 contract at its edges.
    model = onnx.load(str(enc / ONNX_FP16))
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)


def test_fp16_parity_refuses_a_broken_graph(gpu_repository, bundle, tmp_path):
    enc = gpu_repository / contract.VOICE_ENCODER / "1"
    dec = gpu_repository / contract.FACE_DECODER / "1"
    broken = onnx.load(str(enc / ONNX_FP16))
    for init in broken.graph.initializer:  # scramble the fp16 weights
        if init.data_type == onnx.TensorProto.FLOAT16 and len(init.raw_data) > 64:
            data = np.frombuffer(init.raw_data, dtype=np.float16)
            init.raw_data = np.random.default_rng(0).permutation(data).tobytes()
    onnx.save(broken, str(tmp_path / "broken.onnx"))
    parity = fp16.check_fp16_parity(enc / ONNX_FP32, tmp_path / "broken.onnx", dec / ONNX_FP32, dec / ONNX_FP16,
                                    parity_spectrograms(bundle.feature_spec, count=2))
    assert not parity.ok


def test_shape_profile_validation():
    profile = ShapeProfile(1, 8, 32)
    assert profile.shapes((598, 257, 2)) == ((1, 598, 257, 2), (8, 598, 257, 2), (32, 598, 257, 2))
    for bad in ((0, 1, 1), (2, 1, 4), (1, 8, 4), (1, 2.0, 4), (True, 1, 1), (-1, 1, 1)):
        with pytest.raises(ValueError):
            ShapeProfile(*bad)
    with pytest.raises(ValueError, match="static"):
        profile.shapes((-1,))


def test_onnx_contract_check_accepts_ours_and_rejects_others(gpu_repository, shapes):
    from speech2face.engine.repository.model_configs import voice_encoder_io

    inputs, outputs = voice_encoder_io(shapes)
    path = gpu_repository / contract.VOICE_ENCODER / "1" / ONNX_FP32
    check_onnx_contract(path, inputs, outputs)
    model = onnx.load(str(path))

    def mutated(edit) -> onnx.ModelProto:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        edit(copy)
        return copy

    def rename_input(m):
        m.graph.input[0].name = "spectrogram"
    with pytest.raises(ContractError, match="input"):
        check_onnx_contract(mutated(rename_input), inputs, outputs)

    def wrong_dtype(m):
        m.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    with pytest.raises(ContractError, match="FLOAT16"):
        check_onnx_contract(mutated(wrong_dtype), inputs, outputs)

    def fixed_batch(m):
        m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 4
    with pytest.raises(ContractError, match="batch"):
        check_onnx_contract(mutated(fixed_batch), inputs, outputs)

    def wrong_dims(m):
        m.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 300
    with pytest.raises(ContractError, match="per-request shape"):
        check_onnx_contract(mutated(wrong_dims), inputs, outputs)
    with pytest.raises(ContractError):  # the bundle's own graph uses the ONNX names, not the contract's
        check_onnx_contract(str(gpu_repository / contract.FACE_DECODER / "1" / ONNX_FP32), inputs, outputs)


def test_onnxruntime_fallback_config(shapes):
    policy = GpuPolicy(backend="onnxruntime")
    config = gpu_configs.voice_encoder_config(shapes, policy)
    text_format.Parse(text_format.MessageToString(config), pb.ModelConfig())
    assert config.platform == "onnxruntime_onnx" and config.default_model_filename == contract.ONNX_FILE
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
    assert not config.optimization.cuda.graphs
    assert [g.kind for g in config.instance_group] == [pb.ModelInstanceGroup.KIND_GPU]


def test_gpu_policy_validation():
    for bad in (dict(backend="tvm"), dict(precision="int4"), dict(opt_batch_size=64),
                dict(preprocess="sox"), dict(encoder_instances=0)):
        with pytest.raises(ValueError):
            GpuPolicy(**bad)
    assert GpuPolicy(max_batch_size=24).graph_batch_sizes() == [1, 2, 4, 8, 16, 24]


@pytest.mark.skipif(tensorrt_build.tensorrt_available(), reason="checks the message shown without TensorRT")
def test_tensorrt_build_cli_without_tensorrt(gpu_repository, capsys):
    model = gpu_repository / contract.VOICE_ENCODER
    code = tensorrt_build.main(["--config", str(model / contract.CONFIG_FILE), "--onnx", str(model / "1" / ONNX_FP32),
                                "--plan", str(model / "1" / contract.PLAN_FILE)])
    assert code == 2
    assert "TensorRT" in capsys.readouterr().err
    assert not (model / "1" / contract.PLAN_FILE).exists()


def test_s2f_export_target_gpu(tmp_path, capsys):
    from speech2face.engine.cli.main import main

    assert main(["export", "--target", "gpu", "--out", str(tmp_path / "repo")]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path / "repo")
    assert "gpu target" in err
    assert (tmp_path / "repo" / BUILD_SCRIPT).exists()

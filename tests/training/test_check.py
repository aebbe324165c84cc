"""`s2f check`: passes on what `s2f export` writes (cpu and both gpu layouts), fails on corrupted copies.

The tolerances are export/check.py's; here each corruption must turn into a failed row that
names the problem, and exit status 1.
"""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest

from speech2face.engine import contract
from speech2face.engine.cli.main import main as s2f
from speech2face.export.check import check_repository
from speech2face.export.gpu_configs import GpuPolicy
from speech2face.export.gpu_repository import write_gpu_repository

pytest.importorskip("nvidia.dali")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def waveform_repository(bundle, tmp_path_factory):
    return write_gpu_repository(bundle, tmp_path_factory.mktemp("check") / "gpu", build_plans=False)


def _copy(repository, tmp_path):
    return shutil.copytree(repository, tmp_path / "copy")


def _failures(repository, integrity: bool = False) -> list[str]:
    """The failed rows of the numbers (or, with `integrity`, of the build record's digests)."""
    return [f"{r.stage} {r.file} {r.error}" for r in check_repository(repository)
            if not r.ok and (r.stage == "integrity") == integrity]


def test_passes_on_the_cpu_target(tmp_path, capsys):
    assert s2f(["export", "--target", "cpu", "--out", str(tmp_path / "cpu")]) == 0
    assert s2f(["check", str(tmp_path / "cpu")]) == 0
    out = capsys.readouterr().out
    assert "speech2face/1/model.py" in out and "PASS" in out


def test_passes_on_the_gpu_target_and_runs_every_file(waveform_repository, capsys):
    assert s2f(["check", str(waveform_repository)]) == 0
    out = capsys.readouterr().out
    for path in (f"{contract.PREPROCESS}/1/{contract.DALI_FILE}",
                 f"{contract.WAVEFORM_ENGINE}/1/{contract.ONNX_FILE}",
                 f"{contract.WAVEFORM_ENGINE}/1/{contract.ONNX_FP16_FILE}"):
        assert path in out
    assert "trt operators" in out and "fp16 range" in out and "(chain)" in out


def test_passes_on_the_gpu_split_layout(bundle, tmp_path):
    repository = write_gpu_repository(bundle, tmp_path / "split", GpuPolicy(features_in_graph=False),
                                      build_plans=False)
    assert _failures(repository) == []


@pytest.fixture(scope="module")
def magnitude_bundle(tmp_path_factory):
    """A small untrained model on magnitude_powerlaw features (one input channel), exported with parity."""
    import torch

    from speech2face.engine.contract.feature_spec import FeatureSpec
    from speech2face.export.build import export_bundle
    from speech2face.training.networks import face_decoder
    from speech2face.training.networks import voice_encoder
    from speech2face.training.checkpoint import Checkpoint, save_checkpoint

    torch.manual_seed(0)
    encoder = voice_encoder.VoiceEncoder(voice_encoder.VoiceEncoderConfig(
        width=0.03125, fc_dim=64, feature_dim=128, in_channels=1)).eval()
    decoder = face_decoder.FaceDecoder(face_decoder.PRESETS["builtin"]).eval()
    folder = tmp_path_factory.mktemp("magnitude")
    checkpoint = Checkpoint(encoder, decoder, FeatureSpec(kind="magnitude_powerlaw"), {"source": "test, untrained"})
    path = save_checkpoint(folder / "checkpoint.pt", checkpoint)
    return export_bundle(path, folder / "bundle")


@pytest.mark.parametrize("in_graph", [True, False], ids=["waveform", "split-dali"])
def test_passes_on_a_magnitude_model_in_both_layouts(magnitude_bundle, tmp_path, in_graph):
    """magnitude_powerlaw: the front end computes it in the engine, or DALI computes the features
    (the split layout's DALI preprocess, whose ensemble then takes no AUDIO_FILE)."""
    repository = write_gpu_repository(magnitude_bundle, tmp_path / "gpu", GpuPolicy(features_in_graph=in_graph),
                                      build_plans=False)
    rows = check_repository(repository, magnitude_bundle)
    assert [f"{r.stage} {r.error}" for r in rows if not r.ok] == []
    stages = {r.stage for r in rows}
    assert (contract.WAVEFORM_ENGINE in stages) == in_graph and (contract.VOICE_ENCODER in stages) != in_graph
    assert any(r.file.endswith(contract.DALI_FILE) for r in rows)


def test_fails_on_scrambled_weights(waveform_repository, tmp_path):
    copy = _copy(waveform_repository, tmp_path)
    path = copy / contract.WAVEFORM_ENGINE / "1" / contract.ONNX_FILE
    model = onnx.load(str(path))
    for init in model.graph.initializer:  # permute the biggest FP32 weights (not the STFT basis)
        if init.data_type == onnx.TensorProto.FLOAT and len(init.raw_data) > 4096 and list(init.dims) != [514, 1, 400]:
            values = np.frombuffer(init.raw_data, np.float32)
            init.raw_data = np.random.default_rng(0).permutation(values).tobytes()
    onnx.save(model, str(path))
    assert s2f(["check", str(copy)]) == 1
    assert any(contract.ONNX_FILE in f and contract.FACE_FEATURE_NAME in f for f in _failures(copy))


def test_fails_on_a_missing_file(waveform_repository, tmp_path):
    copy = _copy(waveform_repository, tmp_path)
    (copy / contract.WAVEFORM_ENGINE / "1" / contract.ONNX_FP16_FILE).unlink()
    (failure,) = _failures(copy)
    assert contract.ONNX_FP16_FILE in failure and "missing" in failure
    assert any(contract.ONNX_FP16_FILE in f and "missing" in f for f in _failures(copy, integrity=True))


def test_fails_on_an_unreadable_pipeline(waveform_repository, tmp_path):
    copy = _copy(waveform_repository, tmp_path)
    path = copy / contract.PREPROCESS / "1" / contract.DALI_FILE
    path.write_bytes(path.read_bytes()[:500])
    (failure,) = _failures(copy)
    assert contract.DALI_FILE in failure and "DALI could not run it" in failure
    assert any(contract.DALI_FILE in f and "changed" in f for f in _failures(copy, integrity=True))


def test_fails_on_a_config_off_the_contract(waveform_repository, tmp_path):
    copy = _copy(waveform_repository, tmp_path)
    config = copy / contract.ENSEMBLE / contract.CONFIG_FILE
    rate = contract.SAMPLE_RATE.name
    config.write_text(config.read_text().replace(f'name: "{rate}"\n  data_type: TYPE_INT32',
                                                 f'name: "{rate}"\n  data_type: TYPE_FP32'))
    failures = _failures(copy)
    assert any(rate in f and "not the contract's" in f for f in failures), failures
    engine = copy / contract.WAVEFORM_ENGINE / contract.CONFIG_FILE
    engine.write_text(engine.read_text().replace(contract.FACE_IMAGE_NAME, "IMAGE"))
    assert any("IMAGE" in f for f in _failures(copy))


def test_fails_on_a_corrupted_cpu_repository(cpu_repository, tmp_path):
    copy = _copy(cpu_repository, tmp_path)
    (copy / contract.ENSEMBLE / "1" / "face_decoder.onnx").write_bytes(b"not an onnx file")
    assert s2f(["check", str(copy)]) == 1


def test_zeroed_weights_within_the_fp16_tolerance_fail_the_integrity_check(waveform_repository, tmp_path, capsys):
    """4 KB zeroed in the middle of the fp16 graph (2,048 weights) may stay within the numbers'
    tolerance; the build record's sha256 still names the file."""
    copy = _copy(waveform_repository, tmp_path)
    path = copy / contract.WAVEFORM_ENGINE / "1" / contract.ONNX_FP16_FILE
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = bytes(4096)
    path.write_bytes(bytes(data))
    assert s2f(["check", str(copy)]) == 1
    out = capsys.readouterr().out
    assert f"{contract.WAVEFORM_ENGINE}/1/{contract.ONNX_FP16_FILE}" in out and "changed since it was written" in out


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_one_changed_byte_in_any_shipped_file_is_named(target, cpu_repository, waveform_repository, tmp_path):
    import json

    from speech2face.export.check import check_integrity

    source = cpu_repository if target == "cpu" else waveform_repository
    copy = _copy(source, tmp_path)
    files = json.loads((copy / contract.ENSEMBLE / contract.BUILD_RECORD_FILE).read_text())["files"]
    assert f"{contract.ENSEMBLE}/{contract.CONFIG_FILE}" in files and len(files) >= 4
    for name in files:
        path = copy / name
        original = path.read_bytes()
        changed = bytearray(original)
        changed[len(changed) // 2] ^= 0x01
        path.write_bytes(bytes(changed))
        failed = [r for r in check_integrity(copy) if not r.ok]
        assert [r.file for r in failed] == [name, "all"], (name, failed)
        path.write_bytes(original)
    assert all(r.ok for r in check_integrity(copy))


def test_refuses_a_missing_repository(tmp_path, capsys):
    assert s2f(["check", str(tmp_path / "nowhere")]) == 2
    assert "not a directory" in capsys.readouterr().err

"""TensorRT plans on a real GPU: build, parity vs ONNX Runtime (CPU, fp32), the gpu target served.

Skipped with a reason without TensorRT's Python bindings or a CUDA GPU; the served test also needs
an NGC Triton installation (the tensorrt backend under /opt/tritonserver/backends, or
S2F_TRITON_HOME pointing at one). Tolerances per precision are in TOLERANCES.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from speech2face.engine import contract
from speech2face.engine.runtime.onnx_runner import open_session
from speech2face.export import tensorrt_build
from speech2face.export.gpu_configs import GpuPolicy
from speech2face.export.gpu_repository import (FP32_LAYER_PREFIXES, ONNX_FP32, PLAN, WAVEFORM_LAYOUT, parity_clips,
                                               parity_spectrograms, write_gpu_repository)

_GPU = tensorrt_build.cuda_device()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not tensorrt_build.tensorrt_available(),
                       reason="TensorRT's Python bindings are not importable "
                              "(pip install tensorrt, or the NGC container)"),
    pytest.mark.skipif(_GPU is None, reason="no CUDA GPU visible (libcuda missing or no device)"),
]

# TensorRT plan vs fp32 ONNX on ORT CPU, per precision: min per-row cosine of the raw and the
# normalised feature; max and mean |difference| of the uint8 image (decoder fed the same feature).
TOLERANCES = {
    "fp32": {"cosine": 0.99999, "image_max": 2, "image_mean": 0.05},
    "fp16": {"cosine": 0.999, "image_max": 8, "image_mean": 1.0},
}


def _cosine_rows(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module", params=[("fp32", True), ("fp16", True), ("fp32", False), ("fp16", False)],
                ids=["fp32-waveform", "fp16-waveform", "fp32-split", "fp16-split"])
def built_repository(request, bundle, tmp_path_factory):
    precision, in_graph = request.param
    policy = GpuPolicy(precision=precision, max_batch_size=8, opt_batch_size=4, features_in_graph=in_graph)
    path = write_gpu_repository(bundle, tmp_path_factory.mktemp(f"gpu-{precision}") / "repo", policy,
                                build_plans=True)
    return precision, policy, path


def _record(repo: Path) -> dict:
    return json.loads((repo / contract.ENSEMBLE / contract.BUILD_RECORD_FILE).read_text())


def test_plans_and_build_records(built_repository):
    precision, policy, repo = built_repository
    for name in _record(repo)["networks"]:
        plan = repo / name / "1" / PLAN
        assert plan.exists()
        record = json.loads(tensorrt_build.record_path(plan).read_text())
        assert record["plan_sha256"] == tensorrt_build.sha256_file(plan)
        assert record["compute_capability"] == _GPU.sm and record["gpu"] == _GPU.name
        assert record["flags"]["precision"] == precision
        assert record["profile"] == {"min_batch": 1, "opt_batch": 4, "max_batch": 8}
        if name == contract.WAVEFORM_ENGINE and record["flags"]["fp16_builder_flag"]:
            assert record["flags"]["fp32_layer_prefixes"] == list(FP32_LAYER_PREFIXES[name])
    # Rebuilding the same thing is skipped (same ONNX, TensorRT, GPU, flags).
    name = _record(repo)["networks"][-1]
    inputs, outputs, _ = tensorrt_build.contract_from_config(repo / name / contract.CONFIG_FILE)
    version = repo / name / "1"
    again = tensorrt_build.build_engine(
        version / ONNX_FP32, version / PLAN, inputs, outputs, tensorrt_build.ShapeProfile(1, 4, 8),
        tensorrt_build.BuildOptions(precision=precision,
                                    timing_cache=repo / contract.ENSEMBLE / contract.TIMING_CACHE_FILE,
                                    fp32_layer_prefixes=FP32_LAYER_PREFIXES.get(name, ())),
        fp16_onnx_path=version / contract.ONNX_FP16_FILE, skip_if_current=True)
    assert again.get("skipped")


def test_plan_parity_with_onnxruntime(built_repository, bundle):
    precision, _, repo = built_repository
    tolerance = TOLERANCES[precision]
    if _record(repo)["layout"] == WAVEFORM_LAYOUT:
        return _waveform_plan_parity(repo, bundle, tolerance)
    spectrograms = parity_spectrograms(bundle.feature_spec, count=3)
    enc_dir, dec_dir = repo / contract.VOICE_ENCODER / "1", repo / contract.FACE_DECODER / "1"

    ort_raw, ort_norm = open_session(enc_dir / ONNX_FP32, 2).run(
        [contract.FEATURE_RAW_NAME, contract.FACE_FEATURE_NAME], {contract.SPECTROGRAM_NAME: spectrograms})
    trt = tensorrt_build.PlanRunner(enc_dir / PLAN)({contract.SPECTROGRAM_NAME: spectrograms})
    assert _cosine_rows(ort_raw, trt[contract.FEATURE_RAW_NAME]).min() >= tolerance["cosine"]
    assert _cosine_rows(ort_norm, trt[contract.FACE_FEATURE_NAME]).min() >= tolerance["cosine"]

    (ort_image,) = open_session(dec_dir / ONNX_FP32, 2).run(None, {contract.FEATURE_RAW_NAME: ort_raw})
    trt_outputs = tensorrt_build.PlanRunner(dec_dir / PLAN)({contract.FEATURE_RAW_NAME: ort_raw})
    trt_image = trt_outputs[contract.FACE_IMAGE_NAME]
    diff = np.abs(ort_image.astype(np.int16) - trt_image.astype(np.int16))
    assert trt_image.dtype == np.uint8 and trt_image.shape == ort_image.shape
    assert diff.max() <= tolerance["image_max"] and diff.mean() <= tolerance["image_mean"]


def _waveform_plan_parity(repo: Path, bundle, tolerance: dict) -> None:
    clips = parity_clips(bundle.feature_spec, count=3)
    version = repo / contract.WAVEFORM_ENGINE / "1"
    ort_feature, ort_image = open_session(version / ONNX_FP32, 2).run(None, {contract.CLIP_NAME: clips})
    trt = tensorrt_build.PlanRunner(version / PLAN)({contract.CLIP_NAME: clips})
    assert _cosine_rows(ort_feature, trt[contract.FACE_FEATURE_NAME]).min() >= tolerance["cosine"]
    diff = np.abs(ort_image.astype(np.int16) - trt[contract.FACE_IMAGE_NAME].astype(np.int16))
    assert diff.max() <= tolerance["image_max"] and diff.mean() <= tolerance["image_mean"]


def _triton_home() -> Path | None:
    home = Path(os.environ.get("S2F_TRITON_HOME", "/opt/tritonserver"))
    return home if (home / "backends" / "tensorrt").is_dir() and (home / "bin" / "tritonserver").exists() else None


@pytest.mark.skipif(_triton_home() is None,
                    reason="no NGC Triton with the tensorrt backend (/opt/tritonserver or S2F_TRITON_HOME)")
def test_gpu_target_served_end_to_end(built_repository, voice_like, tmp_path):
    """The gpu repository on the NGC tritonserver answers like the cpu target's local runtime."""
    import tritonclient.grpc as grpcclient

    from speech2face.engine.client import Speech2FaceClient
    from speech2face.engine.server.launcher import free_port

    precision, _, repo = built_repository
    home = _triton_home()
    port = free_port()
    log = open(tmp_path / "tritonserver.log", "w")
    process = subprocess.Popen(
        [str(home / "bin" / "tritonserver"), f"--model-repository={repo}", f"--grpc-port={port}",
         f"--http-port={free_port()}", f"--metrics-port={free_port()}", f"--backend-directory={home / 'backends'}"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
        deadline = time.monotonic() + 300
        while True:
            try:
                if client.is_server_ready():
                    break
            except Exception:  # noqa: BLE001 - not listening yet, whatever the client raises
                pass
            assert process.poll() is None, (tmp_path / "tritonserver.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "tritonserver did not become ready"
            time.sleep(1)
        audio, rate = voice_like
        with Speech2FaceClient(f"127.0.0.1:{port}", "grpc") as s2f:
            result = s2f.infer(audio, rate)
        assert result.image.shape[-1] == 3 and result.image.dtype == np.uint8
        assert abs(np.linalg.norm(result.feature) - 1) < 1e-3
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()
        shutil.rmtree(tmp_path, ignore_errors=True)

"""The runners behind `s2f check`: each executes one model's shipped files on the CPU.

A runner takes the model's config, its version folder and its inputs (by the model's own tensor
names; per-request lists for raw audio, stacked arrays otherwise) and returns its outputs by name,
plus the files it ran. See export/check.py for what is compared and the tolerances.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from tritonclient.grpc import model_config_pb2 as pb

from speech2face.engine import contract
from speech2face.export.check import CheckFailed
from speech2face.export.waveform_graph import front_end_nodes

TENSORRT_PLATFORMS = ("tensorrt_plan", "onnxruntime_onnx")


def _require(path: Path) -> Path:
    if not path.is_file():
        raise CheckFailed(f"{path} is missing")
    return path


def run_dali(config: pb.ModelConfig, version: Path, feeds: dict) -> tuple[dict, list[Path]]:
    """The shipped model.dali on DALI's CPU backend (GPU operators moved to the CPU, nothing else)."""
    from nvidia.dali import Pipeline

    path = _require(version / contract.DALI_FILE)
    serialized = path.read_bytes().replace(b"\x03gpu", b"\x03cpu")  # each device field: "gpu" -> "cpu"
    batch = len(next(iter(feeds.values())))
    try:
        pipe = Pipeline.deserialize(serialized_pipeline=serialized, batch_size=batch, num_threads=1, device_id=None)
        pipe.build()
        for item in config.input:
            dtype = np.int32 if item.data_type == pb.TYPE_INT32 else np.float32
            pipe.feed_input(item.name, [np.ascontiguousarray(x, dtype=dtype) for x in feeds[item.name]])
        results = pipe.run()
    except Exception as error:  # noqa: BLE001 - DALI raises RuntimeError, KeyError or ValueError
        raise CheckFailed(f"{path}: DALI could not run it: {str(error).splitlines()[0][:200]}") from None
    outputs = {o.name: np.stack([np.asarray(r[i]) for i in range(batch)]) for o, r in zip(config.output, results)}
    return outputs, [path]


def _onnx_run(path: Path, config: pb.ModelConfig, feeds: dict) -> dict:
    from speech2face.engine.runtime.onnx_runner import open_session
    from speech2face.export.tensorrt_build import ContractError, check_onnx_contract, contract_from_config

    try:
        model = onnx.load(str(path))
    except Exception as error:  # noqa: BLE001 - protobuf's DecodeError and friends: an unreadable file
        raise CheckFailed(f"{path}: not a readable ONNX file ({type(error).__name__})") from None
    try:
        inputs, outputs, _ = contract_from_config(path.parents[1] / contract.CONFIG_FILE)
        check_onnx_contract(model, inputs, outputs)
    except ContractError as error:
        raise CheckFailed(f"{path}: {error}") from None
    session = open_session(path, 1)
    names = [o.name for o in config.output]
    return dict(zip(names, session.run(names, {i.name: np.asarray(feeds[i.name]) for i in config.input})))


def onnx_files(config: pb.ModelConfig, version: Path) -> list[Path]:
    """The ONNX files a network model ships: for a plan, the two its build reads (FP32 first)."""
    if config.platform == "tensorrt_plan":
        return [_require(version / contract.ONNX_FILE), _require(version / contract.ONNX_FP16_FILE)]
    return [_require(version / (config.default_model_filename or contract.ONNX_FILE))]


def run_network(config: pb.ModelConfig, version: Path, feeds: dict) -> list[tuple[Path, dict]]:
    """(file, outputs) for each shipped ONNX file, FP32 first."""
    return [(path, _onnx_run(path, config, feeds)) for path in onnx_files(config, version)]


def run_python(config: pb.ModelConfig, version: Path, feeds: dict) -> tuple[dict, list[Path]]:
    """The library calls a Python model's model.py makes, on what the model ships."""
    from speech2face.engine.contract.feature_spec import FeatureSpec
    from speech2face.engine.features.kernels import compute_features
    from speech2face.engine.features.resampling import validate_audio
    from speech2face.engine.runtime.onnx_runner import open_session

    script = _require(version / contract.PYTHON_MODEL_FILE)
    name = config.name
    if name == contract.PREPROCESS:
        spec = FeatureSpec.from_json(config.parameters[contract.FEATURE_SPEC_PARAMETER].string_value)
        clips = [validate_audio(a, int(np.ravel(r)[0]), spec)
                 for a, r in zip(feeds[contract.AUDIO.name], feeds[contract.SAMPLE_RATE.name])]
        return {contract.SPECTROGRAM_NAME: compute_features(clips, spec, 1)}, [script]
    if name == contract.ENSEMBLE:
        return _run_fused(version, feeds), [script, version]
    onnx_path = _require(version / contract.ONNX_FILE)
    session = open_session(onnx_path, 1)
    (source,) = feeds.values()
    produced = session.run(None, {session.get_inputs()[0].name: np.asarray(source)})
    names = {contract.VOICE_ENCODER: (contract.FEATURE_RAW_NAME, contract.FACE_FEATURE_NAME),
             contract.FACE_DECODER: (contract.FACE_IMAGE_NAME,)}.get(name)
    if names is None:
        raise CheckFailed(f"{version.parent}: no in-process runner for a Python model named {name!r}")
    return dict(zip(names, produced)), [script, onnx_path]


def _run_fused(version: Path, feeds: dict) -> dict:
    from speech2face.engine.contract.bundle import load_bundle
    from speech2face.engine.features.resampling import validate_audio
    from speech2face.engine.runtime.local_runtime import LocalRuntime

    bundle = load_bundle(version)
    clips = [validate_audio(a, int(np.ravel(r)[0]), bundle.feature_spec)
             for a, r in zip(feeds[contract.AUDIO.name], feeds[contract.SAMPLE_RATE.name])]
    features, images = LocalRuntime(bundle, 1).run(clips)
    return {contract.FACE_FEATURE_NAME: features, contract.FACE_IMAGE_NAME: images}


def audit_rows(model_dir: Path, files: list[Path], feeds: dict) -> list[tuple[str, str, bool]]:
    """TensorRT readiness of a plan's ONNX files: (what, result, ok) for the operator audit of
    each file and the FP16 range audit of the FP32 one."""
    from speech2face.export import trt_audit

    rows = []
    for path in files:
        findings = trt_audit.audit_operators(onnx.load(str(path)))
        bad = [f.problem for f in findings if not f.ok]
        text = (f"{len(findings)} operators, all in TensorRT {trt_audit.TARGET_TENSORRT}" if not bad
                else "; ".join(bad))
        rows.append(("trt operators", path, text, not bad))
    model = onnx.load(str(files[0]))
    keep = set(front_end_nodes(model))
    found = trt_audit.audit_fp16_range(model, {k: np.asarray(v) for k, v in feeds.items()}, keep)
    text = f"max |x| {found.largest:.3g} ({found.tensor}) vs {trt_audit.FP16_MAX:.0f}"
    rows.append(("fp16 range", files[0], text if found.ok else f"{text}; over: {found.over[:3]}", found.ok))
    return rows

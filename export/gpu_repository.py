"""Writes the `gpu` target: a Triton model repository for NGC containers (docs/GPU.md).

The waveform layout, for the kinds the in-graph front end computes (the paper's feature):

    speech2face/            ensemble: AUDIO + SAMPLE_RATE -> preprocess -> waveform_to_face
                            build_record.json, trt_timing.cache (after a plan build)
    preprocess/             DALI backend (1/model.dali): resample + clip policy -> CLIP (16 kHz, 6 s)
    waveform_to_face/       tensorrt_plan: STFT front end + encoder + decoder (1/model.plan, built on
                            the serving host, from 1/model.onnx / 1/model_fp16.onnx)
    build_plans.sh          the plan build step: run it on the serving host before tritonserver

The split layout (the fallback: logmel, trim_silence, no DALI, or asked for): preprocess (DALI
features or the Python backend with the C++ kernels), then voice_encoder and face_decoder plans,
under the cpu target's ensemble. `choose_layout` decides and the build record says why.

The ONNX files here are *serving graphs* (export/serving_graph.py): the bundle's graphs with
their tensors renamed to the contract's Triton names. Plans are GPU- and TensorRT-specific: where
this process can build them (TensorRT importable and a CUDA device present) the writer builds
them; elsewhere it writes build_plans.sh.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from google.protobuf import text_format

from speech2face.engine import contract
from speech2face.engine.contract.bundle import ModelBundle
from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.export import fp16, gpu_configs, tensorrt_build, waveform_graph
from speech2face.engine.repository import model_configs
from speech2face.export.gpu_configs import GpuPolicy
from speech2face.engine.repository.model_configs import ServingShapes
from speech2face.export.serving_graph import serving_graph
from speech2face.engine.repository.staging import staged_folder
from speech2face.engine.runtime.builtin import MODEL_SOURCES
from speech2face.engine.contract.fileio import atomic_write_text, sha256_file, tree_sha256

BUILD_SCRIPT = contract.BUILD_PLANS_FILE
TIMING_CACHE = contract.TIMING_CACHE_FILE
ONNX_FP32 = contract.ONNX_FILE
ONNX_FP16 = contract.ONNX_FP16_FILE
PLAN = contract.PLAN_FILE


class Fp16ParityError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# Serving graphs

def _serving_graphs(bundle: ModelBundle, shapes: ServingShapes) -> dict[str, onnx.ModelProto]:
    enc_in, enc_out = model_configs.voice_encoder_io(shapes)
    dec_in, dec_out = model_configs.face_decoder_io(shapes)
    return {
        contract.VOICE_ENCODER: serving_graph(
            bundle.voice_encoder, list(zip([contract.ONNX_ENCODER_INPUT], enc_in)),
            list(zip(contract.ONNX_ENCODER_OUTPUTS, enc_out))),
        contract.FACE_DECODER: serving_graph(
            bundle.face_decoder, list(zip([contract.ONNX_DECODER_INPUT], dec_in)),
            list(zip(contract.ONNX_DECODER_OUTPUTS[:1], dec_out))),
    }


def parity_spectrograms(spec: FeatureSpec, count: int = 3, seed: int = 0) -> np.ndarray:
    """Real features (NumPy reference FeatureSpec) of parity_clips."""
    from speech2face.engine.features.reference import reference_features

    return np.stack([reference_features(c, spec) for c in parity_clips(spec, count, seed)]).astype(np.float32)


def parity_clips(spec: FeatureSpec, count: int = 3, seed: int = 0) -> np.ndarray:
    """Voice-like 16 kHz test signals (harmonic tones with vibrato over a little noise, 2.5 s),
    repeated and cropped to the FeatureSpec's clip: (count, clip_samples) float32."""
    from speech2face.engine.features.reference import apply_clip_policy

    rng = np.random.default_rng(seed)
    rate = spec.sample_rate
    t = np.arange(int(2.5 * rate)) / rate
    clips = []
    for i in range(count):
        f0 = 110 + 60 * i + 15 * np.sin(2 * np.pi * 3 * t)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        voice = sum(np.sin(k * phase) / k for k in range(1, 9))
        clips.append(apply_clip_policy(0.2 * voice + 0.02 * rng.standard_normal(t.size), spec.clip_samples))
    return np.stack(clips).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Preprocessing: the DALI hook

PreprocessWriter = Callable[[Path, GpuPolicy], None]


def dali_preprocess_writer(spec: FeatureSpec) -> tuple[PreprocessWriter | None, str]:
    """THE DALI HOOK. Returns (writer of `preprocess/1/model.dali`, reason) when the DALI pipeline
    of engine/features/dali_features.py can serve this FeatureSpec under the ensemble contract, else
    (None, why not). The pipeline takes its tensor names from engine/contract/tensors.py; the tests feed
    the serialized file by those names (tests/unit/test_features_dali.py)."""
    try:
        from speech2face.engine.features import dali_features
    except ImportError as error:
        return None, f"engine/features/dali_features.py is not importable ({error})"
    try:
        dali_features.check_spec(spec)
    except ValueError as error:
        return None, str(error)
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return None, "nvidia-dali is not installed"

    def write(path: Path, policy: GpuPolicy) -> None:
        dali_features.write_model_dali(spec, path, max_batch_size=policy.max_batch_size,
                                       device="gpu", resample=True)

    return write, "DALI backend"


def _choose_preprocess(spec: FeatureSpec, policy: GpuPolicy) -> tuple[PreprocessWriter | None, str]:
    if policy.preprocess == "python":
        return None, "python preprocess requested"
    writer, reason = dali_preprocess_writer(spec)
    if writer is None and policy.preprocess == "dali":
        raise ValueError(f"preprocess='dali' is not possible: {reason}")
    return writer, reason


# ---------------------------------------------------------------------------------------------
# The layout: one waveform engine where the FeatureSpec allows, else preprocess + two networks

WAVEFORM_LAYOUT, SPLIT_LAYOUT = "waveform", "split"
NETWORKS = {WAVEFORM_LAYOUT: (contract.WAVEFORM_ENGINE,), SPLIT_LAYOUT: (contract.VOICE_ENCODER, contract.FACE_DECODER)}
FP32_LAYER_PREFIXES = {contract.WAVEFORM_ENGINE: (waveform_graph.FRONT_END_PREFIX,)}  # the STFT stays FP32


def choose_layout(spec: FeatureSpec, policy: GpuPolicy) -> tuple[str, str]:
    """(layout, reason). The waveform layout (DALI audio stage -> one TensorRT engine from the clip
    to the face) serves the kinds the in-graph front end computes; the split layout (features in
    a DALI or Python preprocess, then voice_encoder and face_decoder) is the fallback."""
    from speech2face.export.frontend import SUPPORTED_KINDS

    if not policy.features_in_graph:
        return SPLIT_LAYOUT, "features_in_graph is off"
    if policy.preprocess == "python":
        return SPLIT_LAYOUT, "python preprocess requested"
    if spec.kind not in SUPPORTED_KINDS:
        return SPLIT_LAYOUT, f"the in-graph front end computes {SUPPORTED_KINDS}, not {spec.kind!r}"
    if spec.trim_silence:
        return SPLIT_LAYOUT, "trim_silence runs in the C++ preprocess only"
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return SPLIT_LAYOUT, "nvidia-dali is not installed (the audio stage is a DALI pipeline)"
    return WAVEFORM_LAYOUT, "DALI audio stage + features inside the engine"


# ---------------------------------------------------------------------------------------------
# The build step

def _build_command(repo: str, model: str, policy: GpuPolicy) -> list[str]:
    version = f"{repo}/{model}/1"
    command = ["\"$PYTHON\"", "-m", "speech2face.export.tensorrt_build",
               "--config", f"\"{repo}/{model}/{contract.CONFIG_FILE}\"",
               "--onnx", f"\"{version}/{ONNX_FP32}\"", "--onnx-fp16", f"\"{version}/{ONNX_FP16}\"",
               "--plan", f"\"{version}/{PLAN}\"",
               "--min-batch", "1", "--opt-batch", str(policy.opt_batch_size),
               "--max-batch", str(policy.max_batch_size), "--precision", policy.precision,
               "--timing-cache", f"\"{repo}/{contract.ENSEMBLE}/{TIMING_CACHE}\"", "--skip-if-current"]
    for prefix in FP32_LAYER_PREFIXES.get(model, ()):
        command += ["--fp32-layer-prefix", prefix]
    return command


def build_script(policy: GpuPolicy, layout: str = WAVEFORM_LAYOUT) -> str:
    lines = [
        "#!/bin/sh",
        "# Generated by `s2f export --target gpu`. Builds the TensorRT plans of this repository on this",
        "# host: a plan is specific to the GPU and the TensorRT version, so run it where tritonserver",
        "# runs (same TensorRT as the Triton container), before tritonserver starts. Plans that are",
        "# current (same ONNX, TensorRT, GPU and flags; see model.plan.json) are kept.",
        "# Needs: python3 with tensorrt, onnx, tritonclient and the speech2face package; a CUDA GPU.",
        "set -eu",
        'REPO="$(cd "$(dirname "$0")" && pwd)"',
        'PYTHON="${PYTHON:-python3}"',
    ]
    for model in NETWORKS[layout]:
        lines.append(" ".join(_build_command("$REPO", model, policy)))
    return "\n".join(lines) + "\n"


def _build_plans(root: Path, policy: GpuPolicy, layout: str) -> dict:
    records = {}
    for model in NETWORKS[layout]:
        inputs, outputs, _ = tensorrt_build.contract_from_config(root / model / contract.CONFIG_FILE)
        version = root / model / "1"
        records[model] = tensorrt_build.build_engine(
            version / ONNX_FP32, version / PLAN, inputs, outputs,
            tensorrt_build.ShapeProfile(1, policy.opt_batch_size, policy.max_batch_size),
            tensorrt_build.BuildOptions(precision=policy.precision,
                                        timing_cache=root / contract.ENSEMBLE / TIMING_CACHE,
                                        fp32_layer_prefixes=FP32_LAYER_PREFIXES.get(model, ())),
            fp16_onnx_path=version / ONNX_FP16)
    return records


# ---------------------------------------------------------------------------------------------
# The writer

def _write_config(root: Path, config) -> Path:
    version_dir = root / config.name / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    (root / config.name / contract.CONFIG_FILE).write_text(text_format.MessageToString(config))
    return version_dir


def _save_twins(version_dir: Path, graph: onnx.ModelProto, keep_fp32: list[str] = ()) -> dict:
    onnx.save(graph, str(version_dir / ONNX_FP32))
    fp16.write_fp16(version_dir / ONNX_FP32, version_dir / ONNX_FP16, keep_fp32)
    return {"fp32": sha256_file(version_dir / ONNX_FP32), "fp16": sha256_file(version_dir / ONNX_FP16)}


def _write_split_networks(staging: Path, bundle: ModelBundle, shapes: ServingShapes, policy: GpuPolicy,
                          tolerance: fp16.Fp16Tolerance) -> tuple[dict, fp16.Fp16Parity]:
    graphs = _serving_graphs(bundle, shapes)
    configs = {contract.VOICE_ENCODER: gpu_configs.voice_encoder_config(shapes, policy),
               contract.FACE_DECODER: gpu_configs.face_decoder_config(shapes, policy)}
    sha256 = {name: _save_twins(_write_config(staging, configs[name]), graph) for name, graph in graphs.items()}
    enc, dec = staging / contract.VOICE_ENCODER / "1", staging / contract.FACE_DECODER / "1"
    parity = fp16.check_fp16_parity(enc / ONNX_FP32, enc / ONNX_FP16, dec / ONNX_FP32, dec / ONNX_FP16,
                                    parity_spectrograms(bundle.feature_spec), tolerance)
    return sha256, parity


def waveform_serving_graph(bundle: ModelBundle, shapes: ServingShapes) -> onnx.ModelProto:
    """The waveform graph with the Triton names: CLIP -> FACE_FEATURE, FACE_IMAGE."""
    inputs, outputs = gpu_configs.waveform_io(shapes)
    return serving_graph(waveform_graph.waveform_graph(bundle), [(contract.ONNX_CLIP_INPUT, inputs[0])],
                         list(zip(waveform_graph.OUTPUTS, outputs)))


def _write_waveform_network(staging: Path, bundle: ModelBundle, shapes: ServingShapes, policy: GpuPolicy,
                            tolerance: fp16.Fp16Tolerance) -> tuple[dict, fp16.Fp16Parity]:
    graph = waveform_serving_graph(bundle, shapes)
    version_dir = _write_config(staging, gpu_configs.waveform_engine_config(shapes, policy))
    sha256 = {contract.WAVEFORM_ENGINE: _save_twins(version_dir, graph, waveform_graph.front_end_nodes(graph))}
    parity = waveform_graph.check_fp16_parity(version_dir / ONNX_FP32, version_dir / ONNX_FP16,
                                              parity_clips(bundle.feature_spec), tolerance)
    return sha256, parity


def _write_preprocess(staging: Path, spec: FeatureSpec, shapes: ServingShapes, policy: GpuPolicy,
                      layout: str) -> dict:
    """The preprocess model; returns {"backend", "reason"} for the build record."""
    if layout == WAVEFORM_LAYOUT:
        from speech2face.engine.features.dali_audio import write_clip_dali

        version_dir = _write_config(staging, gpu_configs.dali_audio_config(shapes, policy))
        write_clip_dali(spec, version_dir / contract.DALI_FILE, "audio", policy.max_batch_size, device="gpu")
        return {"backend": "dali", "output": contract.CLIP_NAME, "reason": "the audio stage; features in the engine"}
    dali_writer, reason = _choose_preprocess(spec, policy)
    if dali_writer is not None:
        version_dir = _write_config(staging, gpu_configs.dali_preprocess_config(shapes, policy))
        dali_writer(version_dir / contract.DALI_FILE, policy)
        return {"backend": "dali", "output": contract.SPECTROGRAM_NAME, "reason": reason}
    version_dir = _write_config(staging, gpu_configs.python_preprocess_config(shapes, policy))
    shutil.copyfile(MODEL_SOURCES / contract.PREPROCESS / "1" / contract.PYTHON_MODEL_FILE,
                    version_dir / contract.PYTHON_MODEL_FILE)
    return {"backend": "python", "output": contract.SPECTROGRAM_NAME, "reason": reason}


def _write_models(staging: Path, bundle: ModelBundle, policy: GpuPolicy, tolerance: fp16.Fp16Tolerance,
                  layout: str) -> dict:
    """Every model of the layout into `staging`; returns the build record's model part."""
    shapes = ServingShapes(bundle.feature_spec, bundle.feature_dim, bundle.image_size)
    write_networks = _write_waveform_network if layout == WAVEFORM_LAYOUT else _write_split_networks
    onnx_sha256, parity = write_networks(staging, bundle, shapes, policy, tolerance)
    if not parity.ok:
        raise Fp16ParityError(f"the fp16 ONNX misses its tolerance: {parity}")
    preprocess = _write_preprocess(staging, bundle.feature_spec, shapes, policy, layout)
    if layout == WAVEFORM_LAYOUT:
        ensemble = gpu_configs.waveform_ensemble_config(shapes, policy)
    else:
        ensemble = gpu_configs.ensemble_config(shapes, policy, audio_file=preprocess["backend"] == "python")
    _write_config(staging, ensemble)  # with an empty 1/
    return {"onnx_sha256": onnx_sha256, "fp16_parity_onnxruntime_cpu": {**dataclasses.asdict(parity), "ok": parity.ok},
            "preprocess": preprocess}


def write_gpu_repository(bundle: ModelBundle, out_dir: str | Path, policy: GpuPolicy = GpuPolicy(),
                         build_plans: bool | None = None,
                         fp16_tolerance: fp16.Fp16Tolerance = fp16.Fp16Tolerance(), force: bool = False) -> Path:
    """Writes the gpu repository and swaps the finished tree into place (never half-written).

    build_plans: None builds the TensorRT plans where this process can (tensorrt importable and a
    CUDA device present); False never builds (the target host runs build_plans.sh); True insists.
    Refuses (Fp16ParityError) when the fp16 ONNX misses `fp16_tolerance` against the fp32 one, and
    (engine/repository/staging.py) a non-empty `out_dir` this project did not write, unless `force`, which
    moves it aside instead of deleting it.
    """
    if build_plans is None:
        build_plans = policy.backend == "tensorrt" and tensorrt_build.can_build_plans()
    if build_plans and policy.backend != "tensorrt":
        raise ValueError("plans are built for the tensorrt backend only")
    layout, layout_reason = choose_layout(bundle.feature_spec, policy)
    out_dir = Path(out_dir).resolve()
    with staged_folder(out_dir, force=force) as staging:
        models = _write_models(staging, bundle, policy, fp16_tolerance, layout)
        if policy.backend == "tensorrt":
            (staging / BUILD_SCRIPT).write_text(build_script(policy, layout))
            (staging / BUILD_SCRIPT).chmod(0o755)
        plans = _build_plans(staging, policy, layout) if build_plans else None
        record = {
            "target": "gpu", "layout": layout, "layout_reason": layout_reason,
            "networks": list(NETWORKS[layout]),
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "policy": dataclasses.asdict(policy), **bundle.manifest(), **models,
            "tensorrt_plans": plans if plans is not None else (
                f"not built here: run {BUILD_SCRIPT} on the serving host" if policy.backend == "tensorrt"
                else "not used (onnxruntime backend)"),
            "build_step": shlex.join(["sh", BUILD_SCRIPT]) if policy.backend == "tensorrt" else None,
            # every file shipped, as written: `s2f check` compares them before it runs anything
            "files": tree_sha256(staging),
        }
        atomic_write_text(staging / contract.ENSEMBLE / contract.BUILD_RECORD_FILE, json.dumps(record, indent=2) + "\n")
    return out_dir


def read_gpu_summary(repository: str | Path) -> str:
    """One human line about a written gpu repository: preprocess path, fp16 parity, plans."""
    repository = Path(repository)
    record = json.loads((repository / contract.ENSEMBLE / contract.BUILD_RECORD_FILE).read_text())
    parity = record["fp16_parity_onnxruntime_cpu"]
    plans = record["tensorrt_plans"]
    if isinstance(plans, dict):
        first = next(iter(plans.values()))
        plan_text = (f"TensorRT plans built here (TensorRT {first['tensorrt_version']}, {first['gpu']}, "
                     f"sm {first['compute_capability']})")
    elif record["policy"]["backend"] == "tensorrt":
        plan_text = (f"TensorRT plans not built here (needs tensorrt and a CUDA GPU): run "
                     f"`sh {repository / BUILD_SCRIPT}` on the serving host before tritonserver")
    else:
        plan_text = "onnxruntime_onnx with the TensorRT accelerator (no plans)"
    return (f"gpu target, {record.get('layout', SPLIT_LAYOUT)} layout: preprocess on {record['preprocess']['backend']} "
            f"({record['preprocess']['reason']}); fp16 ONNX vs fp32 on ORT CPU: feature cosine "
            f">= {parity['feature_min_cosine']:.8f}, image max {parity['image_max_levels']} levels; {plan_text}")

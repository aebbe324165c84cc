"""`s2f check REPOSITORY`: run every file a Triton repository ships, on this CPU, against the in-process runtime.

Nothing in a repository is trusted unexecuted. The check reads each model's config and, in the
ensemble's order, runs what the model ships:

- ONNX files through ONNX Runtime (for a tensorrt_plan model: the FP32 ONNX and its FP16 twin,
  the exact files build_plans.sh reads; the FP32 result feeds the next stage);
- serialized DALI pipelines (`model.dali`) on DALI's CPU backend; a pipeline serialized for the
  GPU is loaded with every operator's device set to "cpu" (the only change to the file);
- Python models in process: the library code their model.py runs (C++ features, ONNX Runtime,
  LocalRuntime over the fused model's own bundle), on the files and parameters they ship.

Each stage's outputs are compared with the in-process runtime (engine/runtime/local_runtime.py on the
bundle, default: the built-in model) on the bundled voice: 6 s at 16 kHz, its first 2.5 s
(repeated by the clip policy) and a 44.1 kHz copy. Tolerances, per tensor:
CLIP max |d| <= 1e-5 (16 kHz clips; the resamplers differ), SPECTROGRAM cosine >= 0.99999
(resampled clip: >= 0.999 below 7/8 of the band, where the resamplers' transition bands differ),
FEATURE_RAW/FACE_FEATURE cosine >= 0.99999 (FP16 twin: 0.999; resampled clip: 0.999),
FACE_IMAGE within 2 levels (FP16 twin: 8; resampled clip: 12, DALI's resampler is not ours:
benchmarks/studies/dali_resample_diff.py).

Configs are checked against engine/contract/tensors.py (the ensemble's client tensors, every step's
tensors against its models), ONNX files against their configs, and every ONNX file a
tensorrt_plan model ships gets the operator audit and the FP16 range audit (export/trt_audit.py).
Exit status 1 on any mismatch, missing or unreadable file or config off the contract.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from speech2face.engine import contract
from speech2face.engine.contract.bundle import ModelBundle

CLIP_ATOL = 1e-5
SPECTROGRAM_MIN_COSINE = 0.99999
FEATURE_MIN_COSINE = {"fp32": 0.99999, "fp16": 0.999, "resampled": 0.999}
IMAGE_MAX_LEVELS = {"fp32": 2, "fp16": 8, "resampled": 12}
_DTYPES = {"TYPE_FP32": "float32", "TYPE_INT32": "int32", "TYPE_UINT8": "uint8", "TYPE_STRING": "object"}


@dataclasses.dataclass(frozen=True)
class Row:
    stage: str
    file: str
    error: str
    ok: bool


class CheckFailed(Exception):
    """A problem that stops the chain (unreadable config, missing file); it becomes a failed row."""


@dataclasses.dataclass(frozen=True)
class Clips:
    names: list[str]
    audio: list[tuple[np.ndarray, int]]

    @property
    def native(self) -> np.ndarray:
        """Mask of the clips already at 16 kHz (no resampler involved)."""
        return np.array([rate == 16000 for _, rate in self.audio])


def bundled_clips() -> Clips:
    from speech2face.engine.contract.audio_files import read_audio
    from speech2face.engine.runtime.builtin import SAMPLE_VOICE
    from speech2face.engine.features.resampling import resample

    voice, rate = read_audio(SAMPLE_VOICE)
    return Clips(["voice 16 kHz", "voice 2.5 s", "voice 44.1 kHz"],
                 [(voice, rate), (voice[: int(2.5 * rate)], rate), (resample(voice, rate, 44100, "kernel"), 44100)])


def reference(bundle: ModelBundle, clips: Clips) -> dict[str, np.ndarray]:
    """Every contract tensor the in-process runtime computes for `clips`."""
    from speech2face.engine.features.kernels import compute_features
    from speech2face.engine.features.resampling import validate_audio
    from speech2face.engine.features.reference import apply_clip_policy
    from speech2face.engine.runtime.local_runtime import LocalRuntime

    spec = bundle.feature_spec
    runtime = LocalRuntime(bundle, 1)
    validated = [validate_audio(a, r, spec) for a, r in clips.audio]
    spectrogram = compute_features(validated, spec, 1)
    raw, normalized = runtime.encoder.run(None, {contract.ONNX_ENCODER_INPUT: spectrogram})
    image, _ = runtime.decoder.run(None, {contract.ONNX_DECODER_INPUT: raw})
    clip = np.stack([apply_clip_policy(v, spec.clip_samples) for v in validated]).astype(np.float32)
    return {contract.CLIP_NAME: clip, contract.SPECTROGRAM_NAME: spectrogram, contract.FEATURE_RAW_NAME: raw,
            contract.FACE_FEATURE_NAME: normalized, contract.FACE_IMAGE_NAME: image}


# ---------------------------------------------------------------------------------------------
# Comparisons

def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)


def compare(name: str, got: np.ndarray, want: np.ndarray, native: np.ndarray, precision: str) -> tuple[str, bool]:
    """(largest error as text, within tolerance) for one contract tensor."""
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"{name} is {got.dtype}{list(got.shape)}, expected {want.dtype}{list(want.shape)}", False
    if name == contract.CLIP_NAME:
        error = float(np.abs(got[native] - want[native]).max())
        return f"{name} max |d| {error:.2g} (16 kHz clips)", error <= CLIP_ATOL
    if name == contract.FACE_IMAGE_NAME:
        levels = np.abs(got.astype(np.int16) - want.astype(np.int16)).reshape(len(got), -1).max(1)
        ok = levels[native].max() <= IMAGE_MAX_LEVELS[precision] and levels.max() <= IMAGE_MAX_LEVELS["resampled"]
        return f"{name} max {int(levels[native].max())} levels{_resampled(levels, native, 'max', '{:.0f}')}", bool(ok)
    cosines = _cosines(got, want)
    if name == contract.SPECTROGRAM_NAME and not native.all():
        # Resampled clips: the resamplers' transition bands differ in the top eighth of the band
        # (above 7 kHz at 16 kHz); compare the spectrogram below it.
        below = got.shape[2] * 7 // 8
        cosines[~native] = _cosines(got[~native][:, :, :below], want[~native][:, :, :below])
    floor = SPECTROGRAM_MIN_COSINE if name == contract.SPECTROGRAM_NAME else FEATURE_MIN_COSINE[precision]
    ok = cosines[native].min() >= floor and cosines.min() >= min(floor, FEATURE_MIN_COSINE["resampled"])
    return f"{name} min cos {cosines[native].min():.6f}{_resampled(cosines, native, 'min', '{:.6f}')}", bool(ok)


def _resampled(values: np.ndarray, native: np.ndarray, how: str, fmt: str) -> str:
    if native.all():
        return ""
    value = getattr(values[~native], how)()
    return f" (resampled clip: {fmt.format(value)})"


def compare_outputs(stage: str, file: str, outputs: dict[str, np.ndarray], ref: dict[str, np.ndarray],
                    native: np.ndarray, precision: str = "fp32") -> list[Row]:
    rows = []
    for name, value in outputs.items():
        if name in ref:
            error, ok = compare(name, np.asarray(value), ref[name], native, precision)
            rows.append(Row(stage, file, error, ok))
    return rows


# ---------------------------------------------------------------------------------------------
# Reading the repository

def load_config(repo: Path, name: str) -> pb.ModelConfig:
    path = repo / name / contract.CONFIG_FILE
    try:
        return text_format.Parse(path.read_text(), pb.ModelConfig())
    except (OSError, text_format.ParseError) as error:
        raise CheckFailed(f"{path}: {error}") from None


def stages(repo: Path, top: pb.ModelConfig) -> list[tuple[pb.ModelConfig, dict, dict]]:
    """(model config, input_map, output_map) in the order the server runs them."""
    if top.platform != "ensemble":
        identity = lambda items: {t.name: t.name for t in items}  # noqa: E731
        return [(top, identity(top.input), identity(top.output))]
    return [(load_config(repo, step.model_name), dict(step.input_map), dict(step.output_map))
            for step in top.ensemble_scheduling.step]


def _tensor(item) -> contract.Tensor:
    return contract.Tensor(item.name, _DTYPES.get(pb.DataType.Name(item.data_type), "?"), tuple(item.dims))


def check_contract(repo: Path, top: pb.ModelConfig, bundle: ModelBundle) -> list[str]:
    """Problems of the client contract and of the step wiring ([] when none)."""
    clients = {t.name: t for t in (contract.AUDIO, contract.SAMPLE_RATE, contract.AUDIO_FILE)}
    wanted_out = [contract.face_feature(bundle.feature_dim), contract.face_image(bundle.image_size)]
    problems = [f"input {t.name} {t.dtype}{list(t.dims)} is not the contract's"
                for t in map(_tensor, top.input) if clients.get(t.name) != t]
    if not {contract.AUDIO.name, contract.SAMPLE_RATE.name} <= {i.name for i in top.input}:
        problems.append("the ensemble does not take AUDIO + SAMPLE_RATE")
    if [_tensor(o) for o in top.output] != wanted_out:
        problems.append(f"outputs {[_tensor(o) for o in top.output]} are not {wanted_out}")
    if top.platform == "ensemble":
        problems += _check_steps(repo, top)
    return problems


def _check_steps(repo: Path, top: pb.ModelConfig) -> list[str]:
    problems, available = [], {t.name: _tensor(t) for t in top.input}
    for model, input_map, output_map in stages(repo, top):
        inputs = {i.name: _tensor(i) for i in model.input}
        if set(input_map) != set(inputs):
            problems.append(f"{model.name}: the ensemble maps {sorted(input_map)}, the model takes {sorted(inputs)}")
        for key, source in input_map.items():
            have, need = available.get(source), inputs.get(key)
            if have is None or need is None or (have.dtype, have.dims) != (need.dtype, need.dims):
                problems.append(f"{model.name}: {key} needs {need}, the ensemble has {have}")
        outputs = {o.name: _tensor(o) for o in model.output}
        for key, target in output_map.items():
            if key not in outputs:
                problems.append(f"{model.name}: produces no {key}")
            else:
                available[target] = dataclasses.replace(outputs[key], name=target)
    return problems


# ---------------------------------------------------------------------------------------------
# The chain

def _run_stage(repo: Path, model: pb.ModelConfig, feeds: dict, ref: dict, native: np.ndarray) -> tuple[dict, list[Row]]:
    """Runs one model on `feeds` (its own input names); returns (its outputs, rows). Whatever
    its files raise (a corrupt ONNX, a bundle that does not load) becomes CheckFailed."""
    try:
        return _run_stage_unguarded(repo, model, feeds, ref, native)
    except CheckFailed:
        raise
    except Exception as error:  # noqa: BLE001 - any failure of a shipped file is a failed row
        first_line = (str(error).splitlines() or [""])[0][:300]
        raise CheckFailed(f"{model.name}: {type(error).__name__}: {first_line}") from None


def _run_stage_unguarded(repo: Path, model: pb.ModelConfig, feeds: dict, ref: dict,
                         native: np.ndarray) -> tuple[dict, list[Row]]:
    from speech2face.export import check_stages

    version = repo / model.name / "1"
    if model.backend == "dali":
        outputs, files = check_stages.run_dali(model, version, feeds)
        return outputs, compare_outputs(model.name, _relative(repo, files[0]), outputs, ref, native)
    if model.backend == "python":
        outputs, files = check_stages.run_python(model, version, feeds)
        return outputs, compare_outputs(model.name, _relative(repo, files[0]), outputs, ref, native)
    if model.platform not in check_stages.TENSORRT_PLATFORMS:
        raise CheckFailed(f"{model.name}: no CPU runner for backend {model.backend!r} / platform {model.platform!r}")
    results = check_stages.run_network(model, version, feeds)
    rows = []
    for path, outputs in results:
        precision = "fp16" if path.name == contract.ONNX_FP16_FILE else "fp32"
        rows += compare_outputs(model.name, _relative(repo, path), outputs, ref, native, precision)
    if model.platform == "tensorrt_plan":
        rows += [Row(what, _relative(repo, path), text, ok)
                 for what, path, text, ok in check_stages.audit_rows(version.parent, [p for p, _ in results], feeds)]
    return results[0][1], rows


def _relative(repo: Path, path: Path) -> str:
    return str(path.relative_to(repo)) if path.is_relative_to(repo) else str(path)


def run_chain(repo: Path, top: pb.ModelConfig, clips: Clips, ref: dict) -> list[Row]:
    tensors: dict = {contract.AUDIO.name: [a for a, _ in clips.audio],
                     contract.SAMPLE_RATE.name: [np.array([r], np.int32) for _, r in clips.audio]}
    rows = []
    for model, input_map, output_map in stages(repo, top):
        feeds = {key: tensors[source] for key, source in input_map.items() if source in tensors}
        optional = {i.name for i in model.input if i.optional}
        missing = set(input_map) - set(feeds) - optional
        if missing:
            raise CheckFailed(f"{model.name}: no value for {sorted(missing)} (the client sends AUDIO + SAMPLE_RATE)")
        outputs, stage_rows = _run_stage(repo, model, feeds, ref, clips.native)
        rows += stage_rows
        tensors.update({output_map[k]: v for k, v in outputs.items() if k in output_map})
    final = {name: tensors[name] for name in (contract.FACE_FEATURE_NAME, contract.FACE_IMAGE_NAME) if name in tensors}
    if len(final) < 2:
        raise CheckFailed(f"the chain produced {sorted(tensors)}, not FACE_FEATURE and FACE_IMAGE")
    return rows + compare_outputs(top.name, "(chain)", final, ref, clips.native)


def check_integrity(repo: Path) -> list[Row]:
    """Every file the build record lists against its sha256: a changed byte fails, naming the file.
    The numbers after it are the second line of defence (a change within a tolerance passes them)."""
    from speech2face.engine.contract.fileio import sha256_file

    record_path = repo / contract.ENSEMBLE / contract.BUILD_RECORD_FILE
    if not record_path.is_file():
        raise CheckFailed(f"{record_path.relative_to(repo)} is missing: not a repository written by `s2f export`")
    files = json.loads(record_path.read_text()).get("files")
    if not files:
        return [Row("integrity", contract.BUILD_RECORD_FILE, "lists no file digests (written by an older version: "
                                                              "write the repository again)", False)]
    rows = []
    for name, digest in files.items():
        path = repo / name
        if not path.is_file():
            rows.append(Row("integrity", name, "missing", False))
        elif sha256_file(path) != digest:
            rows.append(Row("integrity", name, "changed since it was written (sha256 differs from the build record)",
                            False))
    rows.append(Row("integrity", "all", f"{len(files) - len(rows)}/{len(files)} files match the build record",
                    not rows))
    return rows


def check_repository(repo: str | Path, bundle: ModelBundle | None = None) -> list[Row]:
    """Every row of the check; the repository passes when every row is ok."""
    from speech2face.engine.runtime import builtin

    repo = Path(repo)
    bundle = bundle or builtin.default_bundle()
    try:
        rows = check_integrity(repo)
    except CheckFailed as error:
        return [Row("error", "", str(error), False)]
    try:
        top = load_config(repo, contract.ENSEMBLE)
        problems = check_contract(repo, top, bundle)
        rows += [Row("config", contract.CONFIG_FILE, p, False) for p in problems]
        rows.append(Row("config", "all", f"{len(problems)} problems against the contract", not problems))
        clips = bundled_clips()
        return rows + run_chain(repo, top, clips, reference(bundle, clips))
    except CheckFailed as error:
        return rows + [Row("error", "", str(error), False)]


def format_table(rows: list[Row]) -> str:
    widths = [max([len(h)] + [len(getattr(r, f)) for r in rows]) for h, f in (("stage", "stage"), ("file", "file"))]
    lines = [f"{'stage':<{widths[0]}}  {'file':<{widths[1]}}  verdict  largest error"]
    lines += [f"{r.stage:<{widths[0]}}  {r.file:<{widths[1]}}  {'ok' if r.ok else 'FAIL':<7}  {r.error}" for r in rows]
    return "\n".join(lines)

"""Writes a Triton model repository from a model bundle (the `cpu` target).

Two layouts with one client contract (`speech2face`: AUDIO, SAMPLE_RATE -> FACE_FEATURE,
FACE_IMAGE):
- `fused` (default): `speech2face` is one Python model running features, voice encoder and face
  decoder in one process; one hop per request, the fastest on CPU.
- `ensemble`: `preprocess`, `voice_encoder` and `face_decoder` Python models chained by the
  `speech2face` ensemble; each stage can be scaled, reloaded and called on its own.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

from google.protobuf import text_format

from speech2face.engine import contract
from speech2face.engine.contract.bundle import MANIFEST, ModelBundle
from speech2face.engine.repository import model_configs
from speech2face.engine.repository.model_configs import BatchingPolicy, ServingShapes
from speech2face.engine.repository.staging import staged_folder

# The Python models' sources, copied into every written repository (package data when installed).
from speech2face.engine.runtime.builtin import MODEL_SOURCES
from speech2face.engine.contract.fileio import sha256_file, tree_sha256


def _write_model(root: Path, config, files: dict[str, Path]) -> None:
    version_dir = root / config.name / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    (root / config.name / contract.CONFIG_FILE).write_text(text_format.MessageToString(config))
    for target, source in files.items():
        shutil.copyfile(source, version_dir / target)


LAYOUTS = ("fused", "ensemble")


def _write_ensemble_layout(staging: Path, bundle: ModelBundle, shapes: ServingShapes, policy: BatchingPolicy) -> None:
    _write_model(staging, model_configs.preprocess_config(shapes, policy),
                 {contract.PYTHON_MODEL_FILE: MODEL_SOURCES / contract.PREPROCESS / "1" / contract.PYTHON_MODEL_FILE})
    _write_model(staging, model_configs.voice_encoder_config(shapes, policy),
                 {contract.PYTHON_MODEL_FILE: MODEL_SOURCES / contract.VOICE_ENCODER / "1" / contract.PYTHON_MODEL_FILE,
                  contract.ONNX_FILE: bundle.voice_encoder})
    _write_model(staging, model_configs.face_decoder_config(shapes, policy),
                 {contract.PYTHON_MODEL_FILE: MODEL_SOURCES / contract.FACE_DECODER / "1" / contract.PYTHON_MODEL_FILE,
                  contract.ONNX_FILE: bundle.face_decoder})
    _write_model(staging, model_configs.ensemble_config(shapes, policy), {})


def _write_fused_layout(staging: Path, bundle: ModelBundle, shapes: ServingShapes, policy: BatchingPolicy) -> None:
    # The version folder is itself a model bundle, which the fused model.py loads.
    _write_model(staging, model_configs.fused_config(shapes, policy),
                 {contract.PYTHON_MODEL_FILE: MODEL_SOURCES / contract.ENSEMBLE / "1" / contract.PYTHON_MODEL_FILE,
                  bundle.voice_encoder.name: bundle.voice_encoder, bundle.face_decoder.name: bundle.face_decoder})
    (staging / contract.ENSEMBLE / "1" / MANIFEST).write_text(json.dumps(bundle.manifest(), indent=2) + "\n")


def default_policy(layout: str) -> BatchingPolicy:
    """The fused layout's measured default; the ensemble's stage models keep one instance each
    (their threads do not adapt to each other, so more instances would oversubscribe the cores),
    and with one instance per stage, batches of queued requests as before (not re-measured)."""
    if layout == "fused":
        return BatchingPolicy()
    return dataclasses.replace(BatchingPolicy(), instances=1, preferred_batch_size=0)


def write_cpu_repository(bundle: ModelBundle, out_dir: str | Path,
                         policy: BatchingPolicy | None = None, layout: str = "fused",
                         force: bool = False) -> Path:
    """Writes the layout's models, then swaps the finished tree into place (no half-written repo).

    A non-empty `out_dir` that this writer did not write is refused (engine/repository/staging.py) unless
    `force`, which moves it aside instead of deleting it."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown repository layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    policy = policy or default_policy(layout)
    shapes = ServingShapes(bundle.feature_spec, bundle.feature_dim, bundle.image_size)
    voice_encoder_onnx, face_decoder_onnx = bundle.voice_encoder, bundle.face_decoder
    out_dir = Path(out_dir).resolve()
    with staged_folder(out_dir, force=force) as staging:
        (_write_fused_layout if layout == "fused" else _write_ensemble_layout)(staging, bundle, shapes, policy)
        for form in (contract.SAMPLES_MODEL, contract.FILE_MODEL):
            _write_model(staging, model_configs.form_config(form, shapes, policy), {})
        record = {
            "target": "cpu",
            "layout": layout,
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "policy": dataclasses.asdict(policy),
            **bundle.manifest(),
            "onnx_sha256": {contract.VOICE_ENCODER: sha256_file(voice_encoder_onnx),
                            contract.FACE_DECODER: sha256_file(face_decoder_onnx)},
            # every file shipped, as written: `s2f check` compares them before it runs anything
            "files": tree_sha256(staging),
        }
        (staging / contract.ENSEMBLE / contract.BUILD_RECORD_FILE).write_text(json.dumps(record, indent=2))
    return out_dir


def read_build_record(repository: str | Path) -> dict:
    return json.loads((Path(repository) / contract.ENSEMBLE / contract.BUILD_RECORD_FILE).read_text())


def write_default_repository(out_dir: str | Path | None = None) -> Path:
    """A cpu-target repository of the built-in model (rewritten each call: a few MB)."""
    from speech2face.engine.runtime.builtin import ARTIFACTS, default_bundle

    return write_cpu_repository(default_bundle(), out_dir or ARTIFACTS / "repository-cpu")

"""Checkpoint -> ONNX (+ parity) -> Triton repository, in one call."""

from __future__ import annotations

import hashlib
from pathlib import Path

from speech2face.export.model_configs import BatchingPolicy, ServingShapes
from speech2face.export.onnx_export import export_onnx
from speech2face.export.parity import check_parity
from speech2face.export.repository import write_cpu_repository
from speech2face.training.checkpoint import load_checkpoint


class ParityError(RuntimeError):
    pass


def build_cpu_repository(checkpoint_path: str | Path, out_dir: str | Path, work_dir: str | Path,
                         policy: BatchingPolicy = BatchingPolicy()) -> Path:
    checkpoint = load_checkpoint(checkpoint_path)
    models = export_onnx(checkpoint, work_dir)
    parity = check_parity(checkpoint, models)
    if not parity.ok:
        raise ParityError(f"ONNX Runtime disagrees with PyTorch: {parity}")
    shapes = ServingShapes(checkpoint.feature_spec, checkpoint.voice_encoder.config.feature_dim,
                           checkpoint.face_decoder.config.image_size)
    provenance = dict(checkpoint.provenance)
    provenance["checkpoint_sha256"] = hashlib.sha256(Path(checkpoint_path).read_bytes()).hexdigest()
    provenance["parity"] = {"feature_max_abs": parity.feature_max_abs,
                            "image_max_levels": parity.image_max_levels}
    return write_cpu_repository(out_dir, models.voice_encoder, models.face_decoder, shapes, policy, provenance)

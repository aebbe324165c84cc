"""Checkpoint -> ONNX bundle, refused unless ONNX Runtime matches PyTorch."""

from __future__ import annotations

import hashlib
from pathlib import Path

from speech2face.engine.contract.bundle import ModelBundle
from speech2face.export.onnx_export import export_onnx
from speech2face.export.parity import check_parity
from speech2face.training.checkpoint import load_checkpoint


class ParityError(RuntimeError):
    pass


def export_bundle(checkpoint_path: str | Path, bundle_dir: str | Path) -> ModelBundle:
    checkpoint = load_checkpoint(checkpoint_path)
    models = export_onnx(checkpoint, bundle_dir)
    parity = check_parity(checkpoint, models)
    if not parity.ok:
        raise ParityError(f"ONNX Runtime disagrees with PyTorch: {parity}")
    provenance = dict(checkpoint.provenance)
    provenance["checkpoint_sha256"] = hashlib.sha256(Path(checkpoint_path).read_bytes()).hexdigest()
    provenance["parity_torch_vs_onnxruntime"] = {"feature_max_abs": parity.feature_max_abs,
                                                 "image_max_levels": parity.image_max_levels}
    bundle = ModelBundle(Path(bundle_dir), checkpoint.feature_spec,
                         checkpoint.voice_encoder.config.feature_dim,
                         checkpoint.face_decoder.config.image_size, provenance)
    bundle.save_manifest()
    return bundle

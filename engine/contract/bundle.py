"""A model bundle: what export writes and serving reads, with no PyTorch needed to read it.

Layout: `voice_encoder.onnx`, `face_decoder.onnx`, `model.json` (FeatureSpec, sizes, provenance).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from speech2face.engine.contract.feature_spec import FeatureSpec

MANIFEST = "model.json"


@dataclasses.dataclass(frozen=True)
class ModelBundle:
    directory: Path
    feature_spec: FeatureSpec
    feature_dim: int
    image_size: int
    provenance: dict

    @property
    def voice_encoder(self) -> Path:
        return self.directory / "voice_encoder.onnx"

    @property
    def face_decoder(self) -> Path:
        return self.directory / "face_decoder.onnx"

    def manifest(self) -> dict:
        return {"feature_spec": self.feature_spec.to_dict(), "feature_dim": self.feature_dim,
                "image_size": self.image_size, "provenance": self.provenance}

    def save_manifest(self) -> None:
        (self.directory / MANIFEST).write_text(json.dumps(self.manifest(), indent=2) + "\n")


def load_bundle(directory: str | Path) -> ModelBundle:
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{directory} is not a model bundle: {MANIFEST} is missing")
    data = json.loads(path.read_text())
    bundle = ModelBundle(directory, FeatureSpec.from_dict(data["feature_spec"]), int(data["feature_dim"]),
                         int(data["image_size"]), data.get("provenance", {}))
    for onnx_file in (bundle.voice_encoder, bundle.face_decoder):
        if not onnx_file.exists():
            raise FileNotFoundError(f"model bundle {directory} lacks {onnx_file.name}")
    return bundle

"""One checkpoint file that fully describes a model: weights, architecture, FeatureSpec, provenance."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.engine.contract.fileio import atomic_path
from speech2face.training.networks.face_decoder import FaceDecoder, FaceDecoderConfig
from speech2face.training.networks.face_encoder import SmallFaceEncoder, SmallFaceEncoderConfig
from speech2face.training.networks.voice_encoder import VoiceEncoder, VoiceEncoderConfig

FORMAT_VERSION = 1


@dataclasses.dataclass
class Checkpoint:
    voice_encoder: VoiceEncoder
    face_decoder: FaceDecoder
    feature_spec: FeatureSpec
    provenance: dict[str, Any]
    face_encoder: SmallFaceEncoder | None = None   # the frozen teacher, kept for evaluation


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": FORMAT_VERSION,
        "feature_spec": checkpoint.feature_spec.to_dict(),
        "voice_encoder": {"config": checkpoint.voice_encoder.config.to_dict(),
                          "state_dict": checkpoint.voice_encoder.state_dict()},
        "face_decoder": {"config": checkpoint.face_decoder.config.to_dict(),
                         "state_dict": checkpoint.face_decoder.state_dict()},
        "provenance": checkpoint.provenance,
    }
    if checkpoint.face_encoder is not None:
        payload["face_encoder"] = {"config": checkpoint.face_encoder.config.to_dict(),
                                   "state_dict": checkpoint.face_encoder.state_dict()}
    with atomic_path(path) as tmp:   # a crash mid-write never leaves a truncated checkpoint
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported checkpoint format {payload.get('format_version')!r}")
    spec = FeatureSpec.from_dict(payload["feature_spec"])
    encoder = VoiceEncoder(VoiceEncoderConfig(**payload["voice_encoder"]["config"]))
    encoder.load_state_dict(payload["voice_encoder"]["state_dict"])
    decoder = FaceDecoder(FaceDecoderConfig(**payload["face_decoder"]["config"]))
    decoder.load_state_dict(payload["face_decoder"]["state_dict"])
    face_encoder = None
    if "face_encoder" in payload:
        face_encoder = SmallFaceEncoder(SmallFaceEncoderConfig(**payload["face_encoder"]["config"]))
        face_encoder.load_state_dict(payload["face_encoder"]["state_dict"])
        face_encoder.eval()
    return Checkpoint(encoder.eval(), decoder.eval(), spec, payload.get("provenance", {}), face_encoder)

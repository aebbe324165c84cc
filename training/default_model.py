"""The built-in default model: small presets of both networks.

Until `make train-default` lands, the weights come from a fixed seed: the served pipeline is
real end to end, but the faces it draws carry no information about the voice.
"""

from __future__ import annotations

from pathlib import Path

import torch

from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.training.networks import face_decoder
from speech2face.training.networks import voice_encoder
from speech2face.training.checkpoint import Checkpoint, save_checkpoint


def untrained_default(seed: int = 0) -> Checkpoint:
    torch.manual_seed(seed)
    encoder = voice_encoder.VoiceEncoder(voice_encoder.PRESETS["small"]).eval()
    decoder = face_decoder.FaceDecoder(face_decoder.PRESETS["small"]).eval()
    return Checkpoint(encoder, decoder, FeatureSpec(resampler="kernel"),
                      {"source": "fixed seed, untrained", "seed": seed, "trained": False})


def write_untrained_default(path: str | Path, seed: int = 0) -> Path:
    return save_checkpoint(path, untrained_default(seed))

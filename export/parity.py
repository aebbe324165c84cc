"""Parity between PyTorch and ONNX Runtime for the exported graphs; the tolerances are stated here."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from speech2face.engine import contract
from speech2face.engine.contract.tensors import FEATURE_ATOL
from speech2face.engine.runtime.onnx_runner import open_session
from speech2face.export.onnx_export import OnnxModels
from speech2face.training.checkpoint import Checkpoint

# FP32 graphs: ORT fuses BN into conv and reorders sums, so agreement is to float32 rounding
# of values of order 1: FEATURE_ATOL (the contract's) on features; one grey level on the uint8 image.
IMAGE_MAX_LEVELS = 1


@dataclasses.dataclass(frozen=True)
class ParityReport:
    feature_max_abs: float
    image_max_levels: int

    @property
    def ok(self) -> bool:
        return self.feature_max_abs <= FEATURE_ATOL and self.image_max_levels <= IMAGE_MAX_LEVELS


def check_parity(checkpoint: Checkpoint, models: OnnxModels, batch: int = 2, seed: int = 0) -> ParityReport:
    rng = np.random.default_rng(seed)
    spectrogram = rng.standard_normal((batch, *checkpoint.feature_spec.shape)).astype(np.float32)
    with torch.no_grad():
        feature = checkpoint.voice_encoder(torch.from_numpy(spectrogram))
        _, image = checkpoint.face_decoder(feature)
    torch_image = (image.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    ort_feature, _ = open_session(models.voice_encoder).run(None, {contract.ONNX_ENCODER_INPUT: spectrogram})
    ort_image, _ = open_session(models.face_decoder).run(None, {contract.ONNX_DECODER_INPUT: feature.numpy()})
    return ParityReport(
        feature_max_abs=float(np.abs(ort_feature - feature.numpy()).max()),
        image_max_levels=int(np.abs(ort_image.astype(np.int16) - torch_image.astype(np.int16)).max()),
    )

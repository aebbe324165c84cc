"""Exports the checkpoint's two networks to ONNX with a dynamic batch axis, then checks them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import onnx
import torch
from torch import nn
import torch.nn.functional as F

from speech2face.engine import contract
from speech2face.engine.contract.fileio import atomic_path
from speech2face.training.checkpoint import Checkpoint
from speech2face.training.networks.face_decoder import to_uint8_image

OPSET = 18


class _EncoderGraph(nn.Module):
    """What the voice_encoder model serves: the raw feature and its L2-normalised copy."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, spectrogram: torch.Tensor):
        feature = self.encoder(spectrogram)
        return feature, F.normalize(feature, dim=1)


class _DecoderGraph(nn.Module):
    """What the face_decoder model serves: a uint8 HxWx3 image and the landmarks."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        self.decoder = decoder

    def forward(self, feature: torch.Tensor):
        landmarks, image = self.decoder(feature)
        return to_uint8_image(image), landmarks


@dataclasses.dataclass(frozen=True)
class OnnxModels:
    voice_encoder: Path
    face_decoder: Path


def _export(module: nn.Module, example: torch.Tensor, path: Path, input_name: str,
            output_names: tuple[str, ...]) -> Path:
    with atomic_path(path) as tmp:   # a failed check leaves no half-checked model under the final name
        torch.onnx.export(
            module.eval(), (example,), str(tmp), dynamo=False, opset_version=OPSET,
            input_names=[input_name], output_names=list(output_names),
            dynamic_axes={input_name: {0: "batch"}, **{n: {0: "batch"} for n in output_names}},
            do_constant_folding=True,
        )
        onnx.checker.check_model(onnx.load(str(tmp)), full_check=True)
    return path


def export_onnx(checkpoint: Checkpoint, out_dir: str | Path) -> OnnxModels:
    out_dir = Path(out_dir)
    spec = checkpoint.feature_spec
    feature_dim = checkpoint.voice_encoder.config.feature_dim
    encoder = _export(
        _EncoderGraph(checkpoint.voice_encoder), torch.zeros(2, *spec.shape),
        out_dir / "voice_encoder.onnx", contract.ONNX_ENCODER_INPUT, contract.ONNX_ENCODER_OUTPUTS,
    )
    decoder = _export(
        _DecoderGraph(checkpoint.face_decoder), torch.zeros(2, feature_dim),
        out_dir / "face_decoder.onnx", contract.ONNX_DECODER_INPUT, contract.ONNX_DECODER_OUTPUTS,
    )
    return OnnxModels(encoder, decoder)

"""PyTorch -> ONNX: checker, dynamic batch, parity with stated tolerances."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from speech2face.engine import contract
from speech2face.engine.runtime.onnx_runner import open_session
from speech2face.export.onnx_export import export_onnx
from speech2face.export.parity import FEATURE_ATOL, IMAGE_MAX_LEVELS, check_parity
from speech2face.training.default_model import untrained_default


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    checkpoint = untrained_default(seed=3)
    return checkpoint, export_onnx(checkpoint, tmp_path_factory.mktemp("onnx"))


def test_onnx_files_pass_the_checker(exported):
    _, models = exported
    for path in (models.voice_encoder, models.face_decoder):
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def test_onnx_runtime_matches_pytorch(exported):
    checkpoint, models = exported
    report = check_parity(checkpoint, models, batch=3, seed=7)
    assert report.feature_max_abs <= FEATURE_ATOL  # 1e-4 absolute on the raw feature
    assert report.image_max_levels <= IMAGE_MAX_LEVELS  # one grey level of 255


@pytest.mark.parametrize("batch", [1, 4])
def test_batch_axis_is_dynamic(exported, batch):
    checkpoint, models = exported
    spectrogram = np.zeros((batch, *checkpoint.feature_spec.shape), np.float32)
    raw, normalized = open_session(models.voice_encoder).run(None, {contract.ONNX_ENCODER_INPUT: spectrogram})
    assert raw.shape == normalized.shape == (batch, checkpoint.voice_encoder.config.feature_dim)
    image, landmarks = open_session(models.face_decoder).run(None, {contract.ONNX_DECODER_INPUT: raw})
    size = checkpoint.face_decoder.config.image_size
    assert image.shape == (batch, size, size, 3) and image.dtype == np.uint8
    with torch.no_grad():
        expected, _ = checkpoint.face_decoder(torch.from_numpy(raw))
    assert np.abs(landmarks - expected.numpy()).max() <= 1e-4

"""The PyTorch networks: shapes, the Table 1 reading, the warp."""

from __future__ import annotations

import torch

from speech2face.training.networks import face_decoder
from speech2face.training.networks import voice_encoder


def test_small_encoder_maps_spectrogram_to_feature():
    config = voice_encoder.PRESETS["small"]
    model = voice_encoder.VoiceEncoder(config).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 598, 257, 2))
    assert out.shape == (2, config.feature_dim)


def test_paper_preset_follows_our_table1_reading():
    model = voice_encoder.VoiceEncoder(voice_encoder.PRESETS["paper"])
    # 598 frames pooled 4x over time -> 37 -> two stride-2 convs -> 10; 257 bins -> 129 -> 65.
    assert model.conv_out_shape == (512, 10, 65)
    assert model.fc[0].in_features == 512 * 65
    assert model.fc[-1].out_features == 4096
    assert sum(p.numel() for p in model.parameters()) == 164_837_888


def test_decoder_outputs_landmarks_and_image_in_range():
    decoder = face_decoder.FaceDecoder(face_decoder.PRESETS["small"]).eval()
    with torch.no_grad():
        landmarks, image = decoder(torch.randn(3, decoder.config.feature_dim))
    size = decoder.config.image_size
    assert landmarks.shape == (3, decoder.config.n_landmarks, 2)
    assert image.shape == (3, 3, size, size)
    assert image.min() >= 0 and image.max() <= 1


def test_warp_is_identity_without_displacement_and_follows_landmarks():
    decoder = face_decoder.FaceDecoder(face_decoder.PRESETS["small"]).eval()
    size = decoder.config.image_size
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    texture = ((xx // 8 + yy // 8) % 2).float().expand(1, 3, size, size)  # checkerboard
    mean = decoder.mean_landmarks.unsqueeze(0)
    assert torch.allclose(decoder.warp(texture, mean), texture, atol=1e-5)

    # Move every landmark 4 pixels right: the region around the landmarks moves right with them.
    shift = torch.tensor([4.0 / size, 0.0])
    moved = decoder.warp(texture, mean + shift)
    cx, cy = (decoder.mean_landmarks.mean(0) * size).long().tolist()
    patch = texture[0, 0, cy - 8:cy + 8, cx - 12:cx + 4]
    assert torch.allclose(moved[0, 0, cy - 8:cy + 8, cx - 8:cx + 8], patch, atol=0.35)
    assert not torch.allclose(moved, texture, atol=1e-3)

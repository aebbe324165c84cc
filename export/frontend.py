"""The FeatureSpec's STFT features as a PyTorch module that exports to ONNX (and TensorRT).

The STFT framed like the reference (engine/features/reference.py: no centring, periodic Hann
of ``win_length`` zero-padded to ``n_fft``) is a fixed linear map of each frame, so it is one
strided Conv1d: kernel ``win_length``, stride ``hop_length``, no bias, 2 x ``n_bins`` output
channels whose weights are the DFT basis with the window folded in (the zero-padding to
``n_fft`` only changes the basis frequencies, k / n_fft, so it folds in for free). Channel k
is Re X_k = sum_n w[n] x[n] cos(2 pi k n / n_fft); channel n_bins + k is
Im X_k = -sum_n w[n] x[n] sin(2 pi k n / n_fft) (NumPy's rfft sign).

Power law, sign(x)|x|^p, as Sign(x) * Pow(Abs(x), p):

- exact at 0 (IEEE pow(+0, p > 0) = +0 and Sign(0) = 0, so silence gives 0, not eps^p);
  no operator sees a negative base, so no NaN; no eps bias near zero;
- no squared term: the FP16 limit 65504 applies to |X| itself, which is at most
  sum(window) = 200 per unit of full-scale audio (a full-scale DC clip gives Re X_0 = 200),
  where the x * (x^2 + eps)^(-(1-p)/2) form would overflow x^2 at |X| > 255;
- Sign, Abs, Pow, Mul and Conv are all in TensorRT's ONNX parser in FP32 and FP16.

``magnitude_powerlaw`` is |X|^p = ((Re/s)^2 + (Im/s)^2)^(p/2) * s^p with s = 256, so the
sum of squares stays inside FP16 for audio up to ~300x full scale. ``logmel`` is not built
here (the DALI/C++ paths serve it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.engine.features.reference import periodic_hann

SUPPORTED_KINDS = ("complex_powerlaw", "magnitude_powerlaw")
_MAGNITUDE_SCALE = 256.0


def dft_basis(spec: FeatureSpec) -> np.ndarray:
    """(2 * n_bins, 1, win_length) float64: windowed cosine rows, then windowed -sine rows."""
    n = np.arange(spec.win_length)
    k = np.arange(spec.n_bins)
    phase = 2.0 * np.pi * np.outer(k, n) / spec.n_fft
    window = periodic_hann(spec.win_length)
    basis = np.concatenate([np.cos(phase) * window, -np.sin(phase) * window])
    basis[np.abs(basis) < 1e-12] = 0.0  # sin(pi n) at DC and Nyquist: exactly 0, as rfft gives
    return basis[:, None, :]


class StftFrontEnd(nn.Module):
    """(batch, clip_samples) float32 16 kHz clips -> (batch, *spec.shape) features.

    ``channels_first`` returns (batch, C, T, F) instead, the voice encoder's internal layout.
    """

    def __init__(self, spec: FeatureSpec = FeatureSpec(), channels_first: bool = False):
        super().__init__()
        if spec.kind not in SUPPORTED_KINDS:
            raise ValueError(f"the in-graph front end supports {SUPPORTED_KINDS}, not {spec.kind!r}")
        self.spec = spec
        self.channels_first = channels_first
        self.conv = nn.Conv1d(1, 2 * spec.n_bins, spec.win_length, stride=spec.hop_length, bias=False)
        self.conv.weight.data.copy_(torch.from_numpy(dft_basis(spec)).float())
        self.conv.weight.requires_grad_(False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        x = self.conv(audio.unsqueeze(1))                      # (N, 2F, T)
        x = x.reshape(-1, 2, spec.n_bins, spec.n_frames)     # (N, re/im, F, T); -1: no Shape op
        if spec.kind == "complex_powerlaw":
            x = torch.sign(x) * torch.pow(torch.abs(x), spec.power)
        else:
            s = _MAGNITUDE_SCALE
            x = x * (1.0 / s)
            energy = (x * x).sum(dim=1, keepdim=True)
            x = torch.pow(energy, spec.power / 2) * (s ** spec.power)
        return x.transpose(2, 3) if self.channels_first else x.permute(0, 3, 2, 1)


class WaveformToFace(nn.Module):
    """(batch, clip_samples) waveform -> (raw feature, normalised feature, uint8 image, landmarks).

    Front end, voice encoder and face decoder in one graph: what the gpu target's single
    TensorRT engine runs.
    """

    def __init__(self, spec: FeatureSpec, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.front_end = StftFrontEnd(spec)
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, audio: torch.Tensor):
        from speech2face.training.networks.face_decoder import to_uint8_image

        feature = self.encoder(self.front_end(audio))
        landmarks, image = self.decoder(feature)
        normalized = torch.nn.functional.normalize(feature, dim=1)
        return feature, normalized, to_uint8_image(image), landmarks

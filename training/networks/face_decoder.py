"""Face decoder after Cole et al. 2017: face feature -> landmarks + texture -> warped face.

f_dec (the first layer, FC feature -> 1000, ReLU) feeds two branches: a shallow MLP that
predicts landmark positions, and an FC to a (C, s, s) map upsampled by transposed
convolutions to an RGB texture. The texture is drawn on the mean face's geometry; a
differentiable warp moves it by each landmark's displacement from the mean face, spread
over the image with normalised Gaussian weights (a smooth stand-in for Cole's spline warp
that exports to ONNX as one MatMul and one GridSample).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
import torch.nn.functional as F


@dataclasses.dataclass(frozen=True)
class FaceDecoderConfig:
    feature_dim: int = 4096
    hidden_dim: int = 1000       # f_dec: the layer whose activations the L1 loss compares
    image_size: int = 224        # a power of two times `base_size`
    base_size: int = 14          # the FC map is (base_channels, base_size, base_size)
    base_channels: int = 256
    min_channels: int = 32
    n_landmarks: int = 32
    warp_sigma: float = 0.12     # Gaussian reach of a landmark's displacement, in image units

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS = {
    "paper": FaceDecoderConfig(),
    "small": FaceDecoderConfig(feature_dim=256, hidden_dim=512, image_size=128, base_size=8,
                               base_channels=128, min_channels=16),
    "builtin": FaceDecoderConfig(feature_dim=128, hidden_dim=256, image_size=64, base_size=8,
                                 base_channels=64, min_channels=16, warp_sigma=0.1),
}


class FaceDecoder(nn.Module):
    """Input (N, feature_dim) float32; outputs landmarks (N, K, 2) in [0, 1] and image (N, 3, H, W) in [0, 1]."""

    def __init__(self, config: FaceDecoderConfig = FaceDecoderConfig(),
                 mean_landmarks: torch.Tensor | None = None):
        super().__init__()
        self.config = config
        c = config
        upsamplings = (c.image_size // c.base_size).bit_length() - 1
        if c.base_size << upsamplings != c.image_size:
            raise ValueError("image_size must be base_size times a power of two")
        self.f_dec = nn.Sequential(nn.Linear(c.feature_dim, c.hidden_dim), nn.ReLU(inplace=True))
        self.landmark_head = nn.Sequential(
            nn.Linear(c.hidden_dim, 256), nn.ReLU(inplace=True), nn.Linear(256, c.n_landmarks * 2)
        )
        self.texture_fc = nn.Linear(c.hidden_dim, c.base_channels * c.base_size * c.base_size)
        blocks: list[nn.Module] = []
        cin = c.base_channels
        for _ in range(upsamplings):
            cout = max(c.min_channels, cin // 2)
            blocks += [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        blocks.append(nn.Conv2d(cin, 3, 1))
        self.texture_net = nn.Sequential(*blocks)
        if mean_landmarks is None:
            mean_landmarks = torch.rand(c.n_landmarks, 2, generator=torch.Generator().manual_seed(0)) * 0.6 + 0.2
        self.register_buffer("mean_landmarks", mean_landmarks.reshape(c.n_landmarks, 2).float())
        self.register_buffer("warp_weights", self._warp_weights())
        centres = (2 * torch.arange(c.image_size, dtype=torch.float32) + 1) / c.image_size - 1
        ys, xs = torch.meshgrid(centres, centres, indexing="ij")  # pixel centres (align_corners=False)
        self.register_buffer("identity_grid", torch.stack([xs, ys], dim=-1).reshape(1, -1, 2))

    def _warp_weights(self) -> torch.Tensor:
        """(H*W, K) normalised Gaussian weights of each pixel to each mean landmark."""
        n = self.config.image_size
        coords = (torch.arange(n, dtype=torch.float32) + 0.5) / n
        ys, xs = torch.meshgrid(coords, coords, indexing="ij")
        pixels = torch.stack([xs, ys], dim=-1).reshape(-1, 1, 2)
        d2 = ((pixels - self.mean_landmarks.reshape(1, -1, 2)) ** 2).sum(-1)
        w = torch.exp(-d2 / (2 * self.config.warp_sigma ** 2))
        return w / (w.sum(dim=1, keepdim=True) + 1e-3)  # fades to no displacement far from landmarks

    def set_mean_landmarks(self, mean_landmarks: torch.Tensor) -> None:
        self.mean_landmarks.copy_(mean_landmarks.reshape_as(self.mean_landmarks))
        self.warp_weights.copy_(self._warp_weights())

    def forward(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        hidden = self.f_dec(feature)
        landmarks = self.mean_landmarks + self.landmark_head(hidden).reshape(-1, c.n_landmarks, 2)
        texture = self.texture_fc(hidden).reshape(-1, c.base_channels, c.base_size, c.base_size)
        texture = torch.sigmoid(self.texture_net(texture))
        return landmarks, self.warp(texture, landmarks)

    def warp(self, texture: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """Moves the mean-face texture so that its landmarks land on `landmarks` (both in [0, 1])."""
        size = self.config.image_size
        # Backward warp: output pixel p samples the texture at p - displacement(p).
        displacement = torch.matmul(self.warp_weights, landmarks - self.mean_landmarks)  # (N, H*W, 2)
        grid = (self.identity_grid - 2.0 * displacement).reshape(-1, size, size, 2)
        return F.grid_sample(texture, grid, mode="bilinear", padding_mode="border", align_corners=False)


def to_uint8_image(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> (N, H, W, 3) uint8, the served FACE_IMAGE layout."""
    return (image.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1)

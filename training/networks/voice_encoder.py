"""Voice encoder after Table 1 of Oh et al. 2019: spectrogram (T, F, 2) -> face feature.

Our reading of the table (the image itself was not at hand; three reimplementations agree):
conv 4x4 blocks (conv -> ReLU -> BN, as the paper's text orders them) with channels
64, 64, 128, [pool], 128, [pool], 128, [pool], 256, [pool], 512, 512/s2, and a last plain
conv 512/s2; max-pools are 2x1 over time only; then an average over the whole time axis,
ReLU, BN, and FC 4096 (ReLU) -> FC 4096. Convolutions use TF "SAME" padding, so frequency
goes 257 -> 129 -> 65 through the two stride-2 convolutions and FC1 sees 512 x 65 inputs.
The paper-size preset has 164.8 M parameters and costs 207.6 GFLOP per 6 s clip
(see `describe()`); `width` and `fc_dim` scale it down for small models.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn
import torch.nn.functional as F


@dataclasses.dataclass(frozen=True)
class VoiceEncoderConfig:
    width: float = 1.0          # multiplies every conv channel count
    fc_dim: int = 4096          # hidden FC width
    feature_dim: int = 4096     # output: the face encoder's feature size (VGG-Face fc7 = 4096)
    in_channels: int = 2        # 2 for complex_powerlaw (re, im)
    n_frames: int = 598
    n_bins: int = 257

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS = {
    "paper": VoiceEncoderConfig(),
    "small": VoiceEncoderConfig(width=0.125, fc_dim=512, feature_dim=256),
    "tiny": VoiceEncoderConfig(width=0.0625, fc_dim=256, feature_dim=128),
    # The built-in model: trainable in minutes on 2 CPU cores (`make train-default`).
    "builtin": VoiceEncoderConfig(width=0.03125, fc_dim=256, feature_dim=128),
}

# (channels, stride, max-pool over time after the block, plain conv without ReLU/BN)
_TABLE1 = [
    (64, 1, False, False), (64, 1, False, False), (128, 1, True, False),
    (128, 1, True, False), (128, 1, True, False), (256, 1, True, False),
    (512, 1, False, False), (512, 2, False, False), (512, 2, False, True),
]


def _same_pad(size: int, stride: int, kernel: int = 4) -> tuple[int, int]:
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv(nn.Module):
    """4x4 convolution with TF 'SAME' padding (1 before, 2 after at stride 1)."""

    def __init__(self, cin: int, cout: int, stride: int, shape: tuple[int, int]):
        super().__init__()
        top, bottom = _same_pad(shape[0], stride)
        left, right = _same_pad(shape[1], stride)
        self.padding = (left, right, top, bottom)
        self.conv = nn.Conv2d(cin, cout, 4, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.padding))


class VoiceEncoder(nn.Module):
    """Input (N, T, F, C) float32 spectrogram; output (N, feature_dim) face feature."""

    def __init__(self, config: VoiceEncoderConfig = VoiceEncoderConfig()):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        shape = (config.n_frames, config.n_bins)
        cin = config.in_channels
        for channels, stride, pool, plain in _TABLE1:
            cout = max(4, int(round(channels * config.width)))
            layers.append(SameConv(cin, cout, stride, shape))
            shape = (math.ceil(shape[0] / stride), math.ceil(shape[1] / stride))
            if not plain:
                layers += [nn.ReLU(inplace=True), nn.BatchNorm2d(cout)]
            if pool:
                layers.append(nn.MaxPool2d((2, 1), (2, 1)))
                shape = (shape[0] // 2, shape[1])
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.post_pool = nn.Sequential(nn.ReLU(inplace=True), nn.BatchNorm1d(cin))
        self.conv_out_shape = (cin, shape[0], shape[1])
        self.fc = nn.Sequential(
            nn.Linear(cin * shape[1], config.fc_dim),
            nn.ReLU(inplace=True),
            nn.Linear(config.fc_dim, config.feature_dim),
        )

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        x = self.convs(spectrogram.permute(0, 3, 1, 2))  # (N, C, T, F)
        x = self.post_pool(x.mean(dim=2))                  # average over time only: (N, C, F)
        return self.fc(x.flatten(1))


def describe(config: VoiceEncoderConfig) -> dict:
    """Parameter count and multiply-add FLOPs (2 per MAC) for one clip."""
    model = VoiceEncoder(config)
    flops = 0
    hooks = []

    def count(module, inputs, output):
        nonlocal flops
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels
            flops += 2 * k * output.numel() // output.shape[0]
        elif isinstance(module, nn.Linear):
            flops += 2 * module.in_features * module.out_features

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(count))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, config.n_frames, config.n_bins, config.in_channels))
    for h in hooks:
        h.remove()
    params = sum(p.numel() for p in model.parameters())
    return {"parameters": params, "gflop_per_clip": flops / 1e9, "conv_out_shape": model.conv_out_shape}

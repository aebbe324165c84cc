"""Face encoders: the frozen teacher whose features the voice encoder learns to predict.

- `VGGFaceEncoder`: VGG-16 as in VGG-Face (Parkhi et al. 2015); fc7 (4096) is the face feature,
  fc8 (2622 identities) the classifier used by the distillation loss. Weights are the user's own
  (they cannot be downloaded here): training/networks/vgg_face_import.py reads vgg_face_dag.pth and
  MatConvNet's vgg_face.mat; `load_vggface_weights` maps other state dicts by layer order.
- `SmallFaceEncoder`: a compact CNN for the built-in model, trained on the synthetic corpus.
Both return (feature, logits) and are frozen during voice-encoder training.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

VGG16_CONVS = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
# VGG-Face's published mean (RGB, 0-255 scale); inputs are 224x224 RGB in [0, 1].
VGGFACE_MEAN = (129.1863, 104.7624, 93.5940)


class VGGFaceEncoder(nn.Module):
    """VGG-16 as VGG-Face. `width` scales every layer (1.0: the published network, 138 M
    parameters); training/networks/vgg_face_import.py reads it from a weights file's shapes."""

    def __init__(self, n_identities: int = 2622, width: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for item in VGG16_CONVS:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(item * width), 3, padding=1), nn.ReLU(inplace=True)]
                cin = int(item * width)
        self.features = nn.Sequential(*layers)
        self.feature_dim = int(4096 * width)
        self.fc6 = nn.Linear(cin * 7 * 7, self.feature_dim)
        self.fc7 = nn.Linear(self.feature_dim, self.feature_dim)
        self.fc8 = nn.Linear(self.feature_dim, n_identities)
        self.register_buffer("mean", torch.tensor(VGGFACE_MEAN).view(1, 3, 1, 1) / 255.0)

    @property
    def classifier(self) -> nn.Linear:
        """fc8, the identity classifier the distillation loss reads (as SmallFaceEncoder.classifier)."""
        return self.fc8

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.features((images - self.mean) * 255.0).flatten(1)
        fc7 = torch.relu(self.fc7(torch.relu(self.fc6(x))))
        return fc7, self.fc8(fc7)


def load_vggface_weights(model: VGGFaceEncoder, path: str | Path) -> VGGFaceEncoder:
    """Loads a VGG-Face state dict whatever its key names, matching tensors by layer order and shape."""
    source = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(source, dict) and "state_dict" in source:
        source = source["state_dict"]
    source_tensors = [t for t in source.values() if isinstance(t, torch.Tensor) and t.dim() in (1, 2, 4)]
    targets = [(name, p) for name, p in model.named_parameters()]
    if len(source_tensors) != len(targets):
        raise ValueError(f"{path}: {len(source_tensors)} weight tensors, VGG-Face has {len(targets)}")
    state = {}
    for (name, param), tensor in zip(targets, source_tensors):
        if tensor.shape != param.shape:
            raise ValueError(f"{path}: tensor for {name} has shape {tuple(tensor.shape)}, "
                             f"expected {tuple(param.shape)}")
        state[name] = tensor
    model.load_state_dict(state, strict=False)
    return model


@dataclasses.dataclass(frozen=True)
class SmallFaceEncoderConfig:
    image_size: int = 128
    width: int = 32
    feature_dim: int = 256
    n_identities: int = 1000
    n_attributes: int = 0      # >0: a head regressing known face attributes (the synthetic corpus's)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class SmallFaceEncoder(nn.Module):
    """Five stride-2 conv blocks, global pooling, FC to the feature, FC to identity logits."""

    def __init__(self, config: SmallFaceEncoderConfig = SmallFaceEncoderConfig()):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        cin, cout = 3, config.width
        for _ in range(5):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin, cout = cout, min(cout * 2, 256)
        self.features = nn.Sequential(*layers)
        spatial = config.image_size // 32
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(cin * spatial * spatial, config.feature_dim))
        self.classifier = nn.Linear(config.feature_dim, config.n_identities)
        self.attribute_head = nn.Linear(config.feature_dim, config.n_attributes) if config.n_attributes else None

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = torch.relu(self.embed(self.features(images * 2.0 - 1.0)))
        return feature, self.classifier(feature)


def freeze(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()

"""VGG-Face weights from the files people have, into VGGFaceEncoder (training/networks/face_encoder.py).

- `vgg_face_dag.pth`: the PyTorch state dict of the converted MatConvNet model (keys conv1_1.weight
  ... conv5_3.bias, fc6/fc7/fc8 as Linear layers, fc6 reading the (C, H, W)-flattened pool5);
- `vgg_face.mat` / `vgg-face.mat`: MatConvNet's own release (simplenn: `layers` with `name` and
  `weights` {filters H x W x Cin x Cout, biases}, or the older `filters`/`biases` fields; fc6-fc8 are
  convolutions there: 7x7, 1x1, 1x1).
Both hold the published 224x224 RGB network with its mean subtracted on a 0-255 scale, which is what
VGGFaceEncoder computes. The layer widths are read from the file (1.0 for the real weights), every
tensor's shape is checked, and a wrong file is one error naming the layer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from speech2face.training.networks.face_encoder import VGGFaceEncoder

CONV_NAMES = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
              "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"]
FC_NAMES = ["fc6", "fc7", "fc8"]


def _target_names(model: VGGFaceEncoder) -> dict[str, str]:
    """Source layer name -> the model's parameter prefix."""
    convs = [i for i, m in enumerate(model.features) if isinstance(m, torch.nn.Conv2d)]
    return {**{name: f"features.{i}" for name, i in zip(CONV_NAMES, convs)}, **{n: n for n in FC_NAMES}}


def _build(layers: dict[str, tuple[torch.Tensor, torch.Tensor]], path: Path) -> VGGFaceEncoder:
    missing = [n for n in CONV_NAMES + FC_NAMES if n not in layers]
    if missing:
        raise ValueError(f"{path}: not VGG-Face weights (no layer {', '.join(missing[:3])})")
    width = layers["conv1_1"][0].shape[0] / 64
    model = VGGFaceEncoder(n_identities=layers["fc8"][0].shape[0], width=width)
    state = {}
    for name, prefix in _target_names(model).items():
        for part, tensor in zip(("weight", "bias"), layers[name]):
            expected = model.state_dict()[f"{prefix}.{part}"].shape
            tensor = tensor.reshape(expected) if part == "bias" else tensor
            if tuple(tensor.shape) != tuple(expected):
                raise ValueError(f"{path}: {name} {part} has shape {tuple(tensor.shape)}, "
                                 f"VGG-Face needs {tuple(expected)}")
            state[f"{prefix}.{part}"] = tensor.float()
    model.load_state_dict(state, strict=False)   # `mean` stays the published one
    return model.eval()


def _from_dag_state_dict(path: Path) -> dict:
    source = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(source, dict) and "state_dict" in source:
        source = source["state_dict"]
    return {n: (source[f"{n}.weight"], source[f"{n}.bias"]) for n in CONV_NAMES + FC_NAMES
            if f"{n}.weight" in source and f"{n}.bias" in source}


def _from_matconvnet(path: Path) -> dict:
    from scipy.io import loadmat

    data = loadmat(str(path), struct_as_record=False, squeeze_me=True)
    net = data.get("net")
    layers = getattr(net, "layers", None) if net is not None else data.get("layers")
    if layers is None:
        raise ValueError(f"{path}: no MatConvNet `layers` in this .mat file")
    found = {}
    for layer in np.atleast_1d(layers):
        name = str(getattr(layer, "name", ""))
        if name not in CONV_NAMES + FC_NAMES:
            continue
        if hasattr(layer, "weights"):
            filters, biases = layer.weights[0], layer.weights[1]
        else:
            filters, biases = layer.filters, layer.biases
        filters = np.asarray(filters, np.float32)
        if filters.ndim == 2:           # a 1x1xCinxCout filter loses its leading axes when squeezed
            filters = filters[None, None]
        weight = torch.from_numpy(np.ascontiguousarray(filters.transpose(3, 2, 0, 1)))  # H W Cin Cout -> Cout Cin H W
        if name in FC_NAMES:
            weight = weight.reshape(weight.shape[0], -1)   # (C, H, W) flattening, as pool5.flatten(1)
        found[name] = (weight, torch.from_numpy(np.asarray(biases, np.float32).reshape(-1)))
    return found


def import_vgg_face(path: str | Path) -> VGGFaceEncoder:
    """A frozen-ready VGGFaceEncoder from vgg_face_dag.pth (or any .pt/.pth with those keys) or a
    MatConvNet .mat."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such VGG-Face weights file")
    layers = _from_matconvnet(path) if path.suffix.lower() == ".mat" else _from_dag_state_dict(path)
    return _build(layers, path)

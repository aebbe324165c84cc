"""Torch datasets for the three training stages, built from any PairedVoiceFaces source."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.engine.features.kernels import compute_features
from speech2face.engine.features.resampling import validate_audio


def faces_by_identity(pairs) -> tuple[np.ndarray, np.ndarray | None, list[int], dict[int, int]]:
    """One face (and its landmarks, if known) per identity, in first-seen order.

    Returns faces (I, H, W, 3) uint8, landmarks (I, K, 2) or None, the identity ids, and for
    every item of `pairs` the row of its identity.
    """
    faces, landmarks, ids, row_of_identity = [], [], [], {}
    for index in range(len(pairs)):
        item = pairs[index]
        if item["identity"] not in row_of_identity:
            row_of_identity[item["identity"]] = len(ids)
            ids.append(item["identity"])
            faces.append(item["face"])
            landmarks.append(item.get("landmarks"))
    marks = np.stack(landmarks).astype(np.float32) if all(m is not None for m in landmarks) else None
    return np.stack(faces), marks, ids, row_of_identity


def to_image_tensor(faces: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, size, size) in [0, 1]."""
    images = torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).float() / 255.0
    if images.shape[-1] != size:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return images


class AugmentedFaces(Dataset):
    """Face-encoder stage: each identity's face under small shifts and colour changes, labelled by
    identity (and by its known attributes, when given). Swapping and scaling colour channels keeps
    the encoder from identifying faces by colour alone; where `nuisance_masks` (N, H, W) mark the
    pixels that are not the face (background, clothes), they are repainted a random colour in
    every sample, so that, like a face-recognition network trained on face crops, the encoder
    learns nothing from them."""

    def __init__(self, images: torch.Tensor, attributes: torch.Tensor | None = None, max_shift: int = 4,
                 seed: int = 0, nuisance_masks: torch.Tensor | None = None):
        self.images = images
        self.attributes = attributes
        self.nuisance_masks = nuisance_masks
        self.max_shift = max_shift
        self.generator = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        image = self.images[index]
        if self.nuisance_masks is not None:
            paint = torch.from_numpy(self.generator.uniform(0, 1, size=(3, 1, 1))).float()
            image = torch.where(self.nuisance_masks[index], paint, image)
        dx, dy = self.generator.integers(-self.max_shift, self.max_shift + 1, size=2)
        image = torch.roll(image, shifts=(int(dy), int(dx)), dims=(1, 2))
        image = image[torch.from_numpy(self.generator.permutation(3))]
        gain = torch.from_numpy(self.generator.uniform(0.8, 1.2, size=(3, 1, 1))).float()
        item = {"image": (image * gain).clamp(0, 1), "label": torch.tensor(index)}
        if self.attributes is not None:
            item["attributes"] = self.attributes[index]
        return item


def colour_masks(faces: np.ndarray, colours: np.ndarray, tolerance: float = 24.0) -> torch.Tensor:
    """(N, H, W) masks of the pixels within `tolerance` RGB units of each face's given colours
    (`colours` (N, C, 3), e.g. its background and clothes), for AugmentedFaces' repainting."""
    distance = np.linalg.norm(faces[:, None].astype(np.float32) - colours[:, :, None, None, :], axis=-1)
    return torch.from_numpy((distance <= tolerance).any(axis=1))


class DecoderTargets(Dataset):
    """Face-decoder stage: a face feature -> that face's image and landmarks."""

    def __init__(self, features: torch.Tensor, images: torch.Tensor, landmarks: torch.Tensor):
        self.features, self.images, self.landmarks = features, images, landmarks

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict:
        return {"feature": self.features[index], "image": self.images[index], "landmarks": self.landmarks[index]}


class VoiceToFace(Dataset):
    """Voice-encoder stage: a clip's spectrogram (the serving kernels) -> its speaker's face feature.

    Spectrograms are computed once, in batches, by the same C++ kernels serving uses. With
    `crop_frames`, each item is a random window of that many frames: the encoder averages over
    time, so it serves full clips after training on shorter windows (3x cheaper at 200 frames).
    """

    def __init__(self, pairs, rows: dict[int, int], face_features: torch.Tensor, spec: FeatureSpec,
                 crop_frames: int | None = None, seed: int = 0):
        self.crop_frames = crop_frames
        self.generator = np.random.default_rng(seed)
        clips = []
        self.targets = []
        for index in range(len(pairs)):
            item = pairs[index]
            clips.append(validate_audio(item["audio"], item.get("sample_rate", spec.sample_rate), spec))
            self.targets.append(rows[item["identity"]])
        spectrograms = [compute_features(clips[i:i + 64], spec) for i in range(0, len(clips), 64)]
        self.spectrograms = torch.from_numpy(np.concatenate(spectrograms)).to(torch.float16)  # halves memory
        self.face_features = face_features

    def __len__(self) -> int:
        return len(self.spectrograms)

    def __getitem__(self, index: int) -> dict:
        row = self.targets[index]
        spectrogram = self.spectrograms[index]
        if self.crop_frames and self.crop_frames < len(spectrogram):
            start = int(self.generator.integers(0, len(spectrogram) - self.crop_frames + 1))
            spectrogram = spectrogram[start:start + self.crop_frames]
        return {"spectrogram": spectrogram.float(), "face_feature": self.face_features[row],
                "row": torch.tensor(row)}

"""The three training stages: face encoder (built-in model only), face decoder, voice encoder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F

from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.training.networks import face_decoder as fd
from speech2face.training.networks import voice_encoder as ve
from speech2face.training.networks.face_encoder import SmallFaceEncoder, SmallFaceEncoderConfig, freeze
from speech2face.training.fit import FitConfig, fit
from speech2face.training.losses import LossWeights, speech2face_loss
from speech2face.training.stage_data import AugmentedFaces, DecoderTargets, VoiceToFace


def train_face_encoder(images: torch.Tensor, feature_dim: int, fit_config: FitConfig, out_dir: Path,
                       device: torch.device, attributes: torch.Tensor | None = None,
                       attribute_weight: float = 1.0, nuisance_masks: torch.Tensor | None = None) -> SmallFaceEncoder:
    """Instance discrimination (every identity's face is its own class, under augmentation), plus,
    where the data knows them, regression of standardised face attributes from the feature."""
    n_attributes = 0 if attributes is None else attributes.shape[1]
    config = SmallFaceEncoderConfig(image_size=images.shape[-1], feature_dim=feature_dim,
                                    n_identities=len(images), n_attributes=n_attributes)
    torch.manual_seed(fit_config.seed)   # initial weights from the stage's seed, not from what ran before
    model = SmallFaceEncoder(config)

    def loss(model, batch):
        feature, logits = model(batch["image"])
        terms = {"identity_ce": F.cross_entropy(logits, batch["label"])}
        total = terms["identity_ce"]
        if "attributes" in batch:
            head = model.module.attribute_head if hasattr(model, "module") else model.attribute_head
            terms["attribute_mse"] = (head(feature) - batch["attributes"]).pow(2).mean()
            total = total + attribute_weight * terms["attribute_mse"]
        return {"total": total, **terms}

    dataset = AugmentedFaces(images, attributes, seed=fit_config.seed, nuisance_masks=nuisance_masks)
    return freeze(fit("face_encoder", model, dataset, loss, fit_config, out_dir, device))


@torch.no_grad()
def encode_faces(encoder: torch.nn.Module, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    return torch.cat([encoder(images[i:i + batch])[0] for i in range(0, len(images), batch)])


def train_face_decoder(features: torch.Tensor, images: torch.Tensor, landmarks: torch.Tensor,
                       config: fd.FaceDecoderConfig, fit_config: FitConfig, out_dir: Path,
                       device: torch.device, landmark_weight: float = 10.0) -> fd.FaceDecoder:
    """Cole et al.'s targets: the true image (L1) and landmarks (MSE) from the face's feature."""
    torch.manual_seed(fit_config.seed)
    decoder = fd.FaceDecoder(config, mean_landmarks=landmarks.mean(dim=0))

    def loss(model, batch):
        predicted_landmarks, image = model(batch["feature"])
        image_l1 = (image - batch["image"]).abs().mean()
        landmark_mse = (predicted_landmarks - batch["landmarks"]).pow(2).mean()
        return {"total": image_l1 + landmark_weight * landmark_mse, "image_l1": image_l1,
                "landmark_mse": landmark_mse}

    return freeze(fit("face_decoder", decoder, DecoderTargets(features, images, landmarks), loss,
                      fit_config, out_dir, device))


def train_voice_encoder(dataset: VoiceToFace, config: ve.VoiceEncoderConfig, decoder: fd.FaceDecoder,
                        face_encoder: SmallFaceEncoder, weights: LossWeights, fit_config: FitConfig,
                        out_dir: Path, device: torch.device) -> ve.VoiceEncoder:
    """The paper's loss against the frozen decoder's first layer and face classifier."""
    torch.manual_seed(fit_config.seed)
    model = ve.VoiceEncoder(config)
    f_dec, f_cls = decoder.f_dec.to(device), face_encoder.classifier.to(device)

    def loss(model, batch):
        return speech2face_loss(model(batch["spectrogram"]), batch["face_feature"], f_dec, f_cls, weights)

    return fit("voice_encoder", model, dataset, loss, fit_config, out_dir, device).eval()


def decoder_config_for(preset: str, feature_dim: int, n_landmarks: int) -> fd.FaceDecoderConfig:
    return dataclasses.replace(fd.PRESETS[preset], feature_dim=feature_dim, n_landmarks=n_landmarks)


def voice_config_for(preset: str, spec: FeatureSpec, feature_dim: int) -> ve.VoiceEncoderConfig:
    frames, bins, channels = spec.shape
    return dataclasses.replace(ve.PRESETS[preset], feature_dim=feature_dim, n_frames=frames,
                               n_bins=bins, in_channels=channels)

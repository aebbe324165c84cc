"""`s2f train --data DIR`: the three stages on a folder prepared by `s2f data avspeech|voxceleb`.

Face encoder: the small CNN trained on the folder's faces (instance discrimination), or VGG-Face
from the user's weights (training/networks/vgg_face_import.py), frozen. Then the face decoder (image and
landmarks from the face feature) and the voice encoder (the paper's loss). Writes
`OUT/checkpoint.pt` (weights, FeatureSpec, provenance); the command then exports the ONNX bundle
`s2f serve`/`s2f export` read. Stage states in `--work` make a rerun resume.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    face_encoder: str = "small"          # or "vgg-face"
    vgg_face_weights: str | None = None
    voice_preset: str = "tiny"
    decoder_preset: str = "builtin"
    feature_dim: int = 128               # the small encoder's; VGG-Face's is its fc7 width
    small_face_size: int = 64
    face_epochs: int = 20
    decoder_epochs: int = 20
    voice_epochs: int = 10
    voice_crop_frames: int | None = 200
    batch_size: int = 32
    resampler: str = "soxr_hq"
    seed: int = 0


def _face_stage(faces, options: TrainOptions, work: Path, device):
    """(frozen face encoder, its features of every identity's face, the small encoder or None)."""
    from speech2face.training import stages
    from speech2face.training.fit import FitConfig
    from speech2face.training.stage_data import to_image_tensor

    if options.face_encoder == "vgg-face":
        if not options.vgg_face_weights:
            raise ValueError("--face-encoder vgg-face needs --vgg-face-weights (vgg_face_dag.pth or vgg_face.mat)")
        from speech2face.training.networks.face_encoder import freeze
        from speech2face.training.networks.vgg_face_import import import_vgg_face

        encoder = freeze(import_vgg_face(options.vgg_face_weights))
        return encoder, stages.encode_faces(encoder, to_image_tensor(faces, 224), batch=16), None
    if options.face_encoder != "small":
        raise ValueError(f"unknown face encoder {options.face_encoder!r}; expected small or vgg-face")
    images = to_image_tensor(faces, options.small_face_size)
    encoder = stages.train_face_encoder(images, options.feature_dim, FitConfig(
        epochs=options.face_epochs, batch_size=options.batch_size, seed=options.seed), work, device).cpu()
    return encoder, stages.encode_faces(encoder, images), encoder


def train_on_folder(data: Path, out: Path, work: Path, options: TrainOptions) -> tuple[Path, dict]:
    """Trains the three stages; (the checkpoint written into `out`, a summary)."""
    import torch

    from speech2face.engine.contract.feature_spec import FeatureSpec
    from speech2face.training import distributed, stages
    from speech2face.training.checkpoint import Checkpoint, save_checkpoint
    from speech2face.training.datasets import open_prepared
    from speech2face.training.fit import FitConfig
    from speech2face.training.stage_data import VoiceToFace, faces_by_identity, to_image_tensor

    started = time.time()
    device = distributed.setup()
    pairs = open_prepared(data)
    if len(pairs) == 0:
        raise ValueError(f"{data}: no prepared clips (see its manifest.json for the failures)")
    faces, landmarks, ids, rows = faces_by_identity(pairs)
    if landmarks is None:
        raise ValueError(f"{data}: faces without landmarks; prepare the folder with `s2f data`")
    spec = FeatureSpec(resampler=options.resampler)
    face_encoder, face_features, small_encoder = _face_stage(faces, options, work, device)
    fit = FitConfig(epochs=options.decoder_epochs, batch_size=options.batch_size, seed=options.seed)
    decoder_config = stages.decoder_config_for(options.decoder_preset, face_features.shape[1], landmarks.shape[1])
    decoder = stages.train_face_decoder(face_features, to_image_tensor(faces, decoder_config.image_size),
                                        torch.from_numpy(landmarks), decoder_config, fit, work, device).cpu()
    voice_data = VoiceToFace(pairs, rows, face_features, spec, crop_frames=options.voice_crop_frames,
                             seed=options.seed)
    voice_config = stages.voice_config_for(options.voice_preset, spec, face_features.shape[1])
    voice = stages.train_voice_encoder(voice_data, voice_config, decoder, face_encoder, _loss_weights(),
                                       dataclasses.replace(fit, epochs=options.voice_epochs), work, device).cpu()
    provenance = {"source": "s2f train", "trained": True, "data": str(data),
                  "train_options": dataclasses.asdict(options),
                  "train_identities": len(ids), "train_clips": len(voice_data),
                  "train_seconds": round(time.time() - started, 1), "torch": str(torch.__version__)}
    out.mkdir(parents=True, exist_ok=True)
    path = save_checkpoint(out / "checkpoint.pt", Checkpoint(voice, decoder, spec, provenance, small_encoder))
    return path, {"identities": len(ids), "clips": len(voice_data)}


def _loss_weights():
    from speech2face.training.losses import LossWeights

    return LossWeights()

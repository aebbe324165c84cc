"""The built-in model's recipe, on the synthetic corpus: generate the corpus -> face encoder ->
face decoder -> voice encoder -> checkpoint. Runs as one process or under `torchrun
--nproc_per_node N` (DDP, gloo on CPU). `s2f train-default` (engine/cli/training_commands.py)
runs it, then exports the bundle and evaluates it on the held-out identities.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.training import distributed
from speech2face.training.checkpoint import Checkpoint, save_checkpoint
from speech2face.training.fit import FitConfig
from speech2face.training.losses import LossWeights
from speech2face.training import stages
from speech2face.training.stage_data import VoiceToFace, colour_masks, faces_by_identity, to_image_tensor


@dataclasses.dataclass(frozen=True)
class DefaultRecipe:
    identities: int = 1600          # split by identity: 60 % train, 5 % val, 35 % test (>= 500 held out)
    clips_per_identity: int = 2
    val_fraction: float = 0.05
    test_fraction: float = 0.35
    seed: int = 0                   # the corpus (identities, clips, split): every seeded rebuild evaluates alike
    # Every training generator (initial weights, shuffling, augmentation, crops). Rebuilds with one
    # train_seed on one machine are bit-identical; EVALUATION.md states the spread across seeds.
    train_seed: int = 0
    threads: int = 2                # PyTorch's intra-op threads: reductions split by thread count
    feature_dim: int = 128
    voice_preset: str = "builtin"
    decoder_preset: str = "builtin"
    face_epochs: int = 60
    # Weight of the face encoder's attribute regression beside instance discrimination: at 10 the
    # feature space is led by facial attributes rather than by colours (SYNTHETIC.md, retrieval).
    face_attribute_weight: float = 10.0
    decoder_epochs: int = 40
    # 30, not 10: `s2f recipe-spread --seeds 0 1 2` gives paper cosine R@1 4.73-5.71 % and SF2F
    # R@1 18.7-21.0 % at 30, against 2.86-4.11 % and 17.3-18.1 % at 10 (README).
    voice_epochs: int = 30
    voice_crop_frames: int = 200    # 2 s training windows; served on the full 6 s clip
    voice_lr: float = 1e-3
    loss: LossWeights = LossWeights()


def _corpus(data_dir: Path, recipe: DefaultRecipe, workers: int):
    from speech2face.training.data.synthetic import SyntheticPairs, generate_corpus

    if distributed.is_main():
        generate_corpus(data_dir, recipe.identities, recipe.clips_per_identity, recipe.seed, workers)
    distributed.barrier()
    fractions = {"val_fraction": recipe.val_fraction, "test_fraction": recipe.test_fraction}
    return SyntheticPairs(data_dir, split="train", **fractions), SyntheticPairs(data_dir, split="test", **fractions)


def _face_attributes(pairs, ids: list[int]) -> torch.Tensor:
    """The synthetic corpus's numeric face parameters per identity, standardised: the built-in
    face encoder learns to encode them (a real VGG-Face learns faces from labelled identities)."""
    rows = [pairs.record(i)["face"] for i in ids]
    keys = sorted(k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    values = torch.tensor([[float(r[k]) for k in keys] for r in rows])
    return (values - values.mean(0)) / values.std(0).clamp_min(1e-6)


def _nuisance_masks(pairs, ids: list[int], faces) -> torch.Tensor:
    """Background and clothes pixels of each face, from the colours the generator drew them in."""
    colours = np.array([[pairs.record(i)["face"]["background"], pairs.record(i)["face"]["clothes"]] for i in ids])
    return colour_masks(faces, colours)


# The training stages in order, with the recipe fields each one reads; a stage also depends on
# every stage before it, so each stage's key holds its fields and those of the stages before.
STAGE_FIELDS = {
    "face_encoder": ("identities", "clips_per_identity", "val_fraction", "test_fraction", "seed", "train_seed",
                     "threads", "feature_dim", "face_epochs", "face_attribute_weight"),
    "face_decoder": ("decoder_preset", "decoder_epochs"),
    "voice_encoder": ("voice_preset", "voice_epochs", "voice_crop_frames", "voice_lr", "loss"),
}


def stage_keys(recipe: "DefaultRecipe", rules_version: int, world_size: int) -> dict[str, dict]:
    """What each stage's result depends on: a stage whose key is unchanged resumes (or is reused)."""
    record, key, keys = recipe_record(recipe), {"rules_version": rules_version, "world_size": world_size}, {}
    for stage, fields in STAGE_FIELDS.items():
        key = {**key, **{field: record[field] for field in fields}}
        keys[stage] = key
    return keys


def reset_stale_states(work_dir: Path, keys: dict[str, dict]) -> list[str]:
    """Stages resume from `work_dir/<stage>.state.pt`, which only belongs to the same stage key
    (stage_keys). Deletes the states whose key differs from the one recorded there, or all of them
    when nothing is recorded, and returns those stages: a change to the voice stage retrains only
    the voice stage (the earlier ones are deterministic, so reusing them changes nothing)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    record = work_dir / "run_key.json"
    recorded = json.loads(record.read_text()).get("stages", {}) if record.exists() else {}
    dropped = []
    for stage in STAGE_FIELDS:
        state = work_dir / f"{stage}.state.pt"
        if state.exists() and recorded.get(stage) != keys[stage]:
            state.unlink()
            dropped.append(stage)
    if dropped:
        print(f"{work_dir}: the recipe or corpus changed for {', '.join(dropped)}: training it afresh", flush=True)
    record.write_text(json.dumps({"stages": keys}, indent=2, sort_keys=True) + "\n")
    return dropped


def recipe_record(recipe: DefaultRecipe) -> dict:
    """The recipe as JSON holds it (provenance, run keys, spreads): what two recipes are compared by."""
    return json.loads(json.dumps(dataclasses.asdict(recipe)))


def guard_recipe(train_seed: int = 0) -> DefaultRecipe:
    """The recipe guard's reduced recipe (tests/training/test_recipe_guard.py): the same corpus,
    stages and losses with fewer epochs, so that a change that costs accuracy shows in minutes."""
    return DefaultRecipe(face_epochs=20, decoder_epochs=12, voice_epochs=4, train_seed=train_seed)


@contextlib.contextmanager
def deterministic(threads: int):
    """As deterministic as PyTorch on CPU allows: deterministic kernels and a fixed thread count
    (a different count splits reductions differently), restored afterwards for the caller. What
    still varies: another CPU's vector instructions (oneDNN picks kernels per ISA) and another
    PyTorch version."""
    before = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.set_num_threads(before[1])


@dataclasses.dataclass(frozen=True)
class Trained:
    checkpoint: Path
    test_pairs: object   # the held-out identities (SyntheticPairs, split="test")


def train(data_dir: Path, work_dir: Path, recipe: DefaultRecipe, workers: int = 2) -> Trained | None:
    """Trains the three stages; the main process returns the checkpoint and the held-out pairs."""
    with deterministic(recipe.threads):
        return _train(data_dir, work_dir, recipe, workers)


def _train(data_dir: Path, work_dir: Path, recipe: DefaultRecipe, workers: int) -> Trained | None:
    from speech2face.training.data.synthetic import RULES_VERSION

    device = distributed.setup()
    started = time.time()
    spec = FeatureSpec(resampler="kernel")  # the built-in model's spec, unchanged since its first training
    train_pairs, test_pairs = _corpus(data_dir, recipe, workers)
    if distributed.is_main():
        reset_stale_states(work_dir, stage_keys(recipe, RULES_VERSION, distributed.world_size()))
    distributed.barrier()

    faces, landmarks, ids, rows = faces_by_identity(train_pairs)
    decoder_config = stages.decoder_config_for(recipe.decoder_preset, recipe.feature_dim, landmarks.shape[1])
    face_images = to_image_tensor(faces, faces.shape[1])
    face_encoder = stages.train_face_encoder(face_images, recipe.feature_dim,
                                             FitConfig(epochs=recipe.face_epochs, batch_size=64,
                                                       seed=recipe.train_seed),
                                             work_dir, device, attributes=_face_attributes(train_pairs, ids),
                                             attribute_weight=recipe.face_attribute_weight,
                                             nuisance_masks=_nuisance_masks(train_pairs, ids, faces)).cpu()
    face_features = stages.encode_faces(face_encoder, face_images)

    decoder = stages.train_face_decoder(face_features, to_image_tensor(faces, decoder_config.image_size),
                                        torch.from_numpy(landmarks), decoder_config,
                                        FitConfig(epochs=recipe.decoder_epochs, batch_size=64, seed=recipe.train_seed),
                                        work_dir, device).cpu()

    voice_data = VoiceToFace(train_pairs, rows, face_features, spec, crop_frames=recipe.voice_crop_frames,
                             seed=recipe.train_seed)
    voice_config = stages.voice_config_for(recipe.voice_preset, spec, recipe.feature_dim)
    voice_encoder = stages.train_voice_encoder(
        voice_data, voice_config, decoder, face_encoder, recipe.loss,
        FitConfig(epochs=recipe.voice_epochs, batch_size=32, lr=recipe.voice_lr, seed=recipe.train_seed),
        work_dir, device).cpu()

    checkpoint_path = work_dir / "checkpoint.pt"
    trained = None
    if distributed.is_main():
        provenance = {"source": "make train-default (synthetic corpus)", "trained": True,
                      "recipe": recipe_record(recipe),
                      "train_identities": len(faces), "train_clips": len(voice_data),
                      "world_size": distributed.world_size(),
                      "train_seconds": round(time.time() - started, 1), "torch": str(torch.__version__)}
        save_checkpoint(checkpoint_path, Checkpoint(voice_encoder, decoder, spec, provenance, face_encoder))
        trained = Trained(checkpoint_path, test_pairs)
    distributed.barrier()
    distributed.teardown()
    return trained

"""Training machinery: the loss terms, resume, and DDP across two CPU processes (gloo)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from speech2face.training.fit import FitConfig, fit
from speech2face.training.losses import LossWeights, distillation, speech2face_loss


def test_distillation_is_soft_cross_entropy():
    teacher, student = torch.randn(4, 10), torch.randn(4, 10)
    expected = F.cross_entropy(student / 2.0, F.softmax(teacher / 2.0, dim=1))
    assert torch.allclose(distillation(teacher, student, 2.0), expected, atol=1e-6)


def test_loss_is_zero_for_a_perfect_prediction_and_trains_only_the_voice_side():
    f_dec, f_cls = torch.nn.Linear(8, 5), torch.nn.Linear(8, 3)
    for p in [*f_dec.parameters(), *f_cls.parameters()]:
        p.requires_grad_(False)
    face = torch.randn(4, 8)
    terms = speech2face_loss(face.clone(), face, f_dec, f_cls, LossWeights())
    assert terms["decoder_l1"].item() == pytest.approx(0.0, abs=1e-6)
    assert terms["feature_l2"].item() == pytest.approx(0.0, abs=1e-6)
    voice = torch.randn(4, 8, requires_grad=True)
    speech2face_loss(voice, face, f_dec, f_cls, LossWeights())["total"].backward()
    assert voice.grad is not None and voice.grad.abs().sum() > 0
    assert f_dec.weight.grad is None


def _toy(tmp_path: Path, epochs: int) -> torch.nn.Module:
    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, i):
            x = torch.full((2,), float(i % 7))
            return {"x": x, "y": x.sum(0, keepdim=True) * 2}

    torch.manual_seed(0)
    return fit("toy", torch.nn.Linear(2, 1), Pairs(), lambda m, b: {"total": (m(b["x"]) - b["y"]).pow(2).mean()},
               FitConfig(epochs=epochs, batch_size=8, lr=0.01), tmp_path, torch.device("cpu"))


def test_resume_continues_from_the_saved_epoch(tmp_path):
    _toy(tmp_path, epochs=1)
    state = torch.load(tmp_path / "toy.state.pt", weights_only=False)
    assert state["epoch"] == 0
    _toy(tmp_path, epochs=3)
    assert torch.load(tmp_path / "toy.state.pt", weights_only=False)["epoch"] == 2


def test_ddp_two_cpu_processes_agree_and_learn(tmp_path):
    worker = Path(__file__).resolve().parents[1] / "ddp_worker.py"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                    str(worker), str(tmp_path)], check=True, timeout=300, capture_output=True)
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), f"ranks diverged on {key}"
    # The toy target is y = x . [0..7] + 1: the weights approach it.
    assert torch.allclose(rank0["weight"][0], torch.arange(8.0), atol=0.5)


def test_face_encoder_augmentation_repaints_only_the_nuisance_pixels():
    import numpy as np

    from speech2face.training.stage_data import AugmentedFaces, colour_masks, to_image_tensor

    faces = np.zeros((2, 16, 16, 3), np.uint8)
    faces[:] = (200, 30, 30)                      # background
    faces[:, 4:12, 4:12] = (90, 160, 90)          # the "face"
    masks = colour_masks(faces, np.array([[(198, 33, 31)], [(10, 10, 10)]], np.float64), tolerance=8)
    assert masks[0].sum() == 16 * 16 - 64 and not masks[0, 4:12, 4:12].any()
    assert not masks[1].any()                     # no pixel near that colour: nothing to repaint
    data = AugmentedFaces(to_image_tensor(faces, 16), max_shift=0, nuisance_masks=masks)
    painted = []
    for _ in range(6):
        image = data[0]["image"]
        background = image[:, masks[0]]
        assert background.std(dim=1).max() < 1e-6  # one paint colour per sample ...
        face = image[:, 4:12, 4:12].reshape(3, -1)
        assert face.std(dim=1).max() < 1e-6         # ... and the face region left whole
        painted.append(background[:, 0])
    assert torch.stack(painted).std(dim=0).max() > 0.05   # a new colour every sample


def test_train_default_drops_only_the_stage_states_a_recipe_change_touches(tmp_path):
    import dataclasses

    from speech2face.training.train_default import DefaultRecipe, reset_stale_states, stage_keys

    def states(*names):
        for name in names:
            (tmp_path / f"{name}.state.pt").write_bytes(b"x")

    recipe = DefaultRecipe()
    keys = stage_keys(recipe, rules_version=4, world_size=1)
    assert reset_stale_states(tmp_path, keys) == []                     # first run: nothing to drop
    states("face_encoder", "face_decoder", "voice_encoder")
    assert reset_stale_states(tmp_path, keys) == []                     # same recipe: every stage resumes
    more_voice = stage_keys(dataclasses.replace(recipe, voice_epochs=recipe.voice_epochs + 1), 4, 1)
    assert reset_stale_states(tmp_path, more_voice) == ["voice_encoder"]   # only the voice stage retrains
    states("voice_encoder")
    other_seed = stage_keys(dataclasses.replace(recipe, train_seed=recipe.train_seed + 1), 4, 1)
    assert reset_stale_states(tmp_path, other_seed) == ["face_encoder", "face_decoder", "voice_encoder"]
    states("face_encoder")
    assert reset_stale_states(tmp_path, stage_keys(recipe, 5, 1)) == ["face_encoder"]   # new corpus rules
    (tmp_path / "run_key.json").unlink()                                # states without a record: unknown origin
    states("voice_encoder")
    assert reset_stale_states(tmp_path, keys) == ["voice_encoder"]


def test_every_recipe_field_belongs_to_a_stage_key():
    from speech2face.training.train_default import STAGE_FIELDS, DefaultRecipe, recipe_record

    assert sorted(f for fields in STAGE_FIELDS.values() for f in fields) == sorted(recipe_record(DefaultRecipe()))

"""`s2f train-default` (what `make train-default` runs) in miniature: corpus -> three stages -> checkpoint
-> ONNX bundle -> evaluation, then serving the result in-process. The full recipe (10 min) is not run
here; this checks the wiring."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from speech2face.engine.cli.main import main
from speech2face.engine.contract.bundle import load_bundle
from speech2face.engine.runtime.local_runtime import LocalRuntime
from speech2face.training.train_default import DefaultRecipe, train

TINY = DefaultRecipe(identities=40, face_epochs=1, decoder_epochs=1, voice_epochs=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train-default")
    out = root / "model"
    assert main(["train-default", "--data", str(root / "corpus"), "--work", str(root / "work"), "--out", str(out),
                 "--identities", str(TINY.identities), "--face-epochs", "1", "--decoder-epochs", "1",
                 "--voice-epochs", "1"]) == 0
    return root, out


def test_builds_a_bundle_with_its_evaluation(trained):
    _, out = trained
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["gallery_size"] == round(TINY.test_fraction * TINY.identities)
    assert evaluation["queries"] == evaluation["gallery_size"] * TINY.clips_per_identity
    # R@1 is a count of queries over the queries; recall grows with K; chance is K / gallery size
    hits = evaluation["r_at_1"] * evaluation["queries"]
    assert hits == pytest.approx(round(hits), abs=1e-6) and evaluation["r_at_1"] == evaluation["paper"]["cosine"]["R@1"]
    for metric in ("cosine", "l2", "l1"):
        recalls = [evaluation["paper"][metric][f"R@{k}"] for k in (1, 2, 5, 10)]
        assert recalls == sorted(recalls) and recalls[-1] <= 1.0, (metric, recalls)
    assert evaluation["chance_at_1"] == pytest.approx(1 / evaluation["gallery_size"])
    agreeing = evaluation["gender_agreement"] * evaluation["queries"]
    assert agreeing == pytest.approx(round(agreeing), abs=1e-6)
    provenance = json.loads((out / "model.json").read_text())["provenance"]
    assert provenance["recipe"]["identities"] == TINY.identities and provenance["trained"]
    assert provenance["parity_torch_vs_onnxruntime"]["feature_max_abs"] < 1e-4


def test_the_bundle_serves_a_face(trained):
    _, out = trained
    bundle = load_bundle(out)
    rng = np.random.default_rng(0)
    result = LocalRuntime(bundle).infer((0.1 * rng.standard_normal(48_000)).astype(np.float32), 16_000)
    assert result.image.shape == (bundle.image_size, bundle.image_size, 3)
    assert np.linalg.norm(result.feature) == pytest.approx(1.0, abs=1e-4)


def test_a_rerun_with_the_same_recipe_resumes_every_stage(trained):
    root, _ = trained
    states = sorted((root / "work").glob("*.state.pt"))
    assert [p.name for p in states] == ["face_decoder.state.pt", "face_encoder.state.pt", "voice_encoder.state.pt"]
    before = {p.name: os.stat(p).st_mtime_ns for p in states}
    train(root / "corpus", root / "work", TINY, workers=2)
    assert {p.name: os.stat(p).st_mtime_ns for p in states} == before    # nothing retrained


def _weights(checkpoint_path) -> dict:
    import torch

    state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    return {f"{part}.{k}": v for part in ("voice_encoder", "face_decoder", "face_encoder")
            for k, v in state[part]["state_dict"].items()}


def test_one_train_seed_rebuilds_bit_identical_weights_and_another_seed_differs(trained):
    """The recipe's determinism: every generator seeded, deterministic kernels, a fixed thread count."""
    import dataclasses

    import torch

    root, _ = trained
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        again = train(root / "corpus", root / "work-again", TINY, workers=2)
        # the caller's settings come back: other code in the process keeps its kernels and threads
        assert torch.get_num_threads() == 1 and not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(threads)
    other = train(root / "corpus", root / "work-seed1", dataclasses.replace(TINY, train_seed=1), workers=2)
    first, second, third = (_weights(p) for p in (root / "work" / "checkpoint.pt", again.checkpoint, other.checkpoint))
    assert first.keys() == second.keys() == third.keys()
    assert all((first[k] == second[k]).all() for k in first)              # bit-identical, tolerance 0
    assert any(not (first[k] == third[k]).all() for k in first)           # the seed reaches the weights

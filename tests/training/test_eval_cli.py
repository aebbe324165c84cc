"""`s2f eval` end to end: it generates the checkpoint recipe's held-out data when none is given,
writes its reports to an output folder (never beside the checkpoint unless asked) and prints both
retrieval protocols as its last line of JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from speech2face.engine.runtime.builtin import BUILTIN_BUNDLE


def _s2f(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "speech2face.engine.cli.main", *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def tiny_recipe_checkpoint(tmp_path_factory):
    """The built-in weights under a tiny recipe: 40 identities, seed 5 (identities it never saw)."""
    path = tmp_path_factory.mktemp("model") / "checkpoint.pt"
    payload = torch.load(BUILTIN_BUNDLE / "checkpoint.pt", map_location="cpu", weights_only=True)
    payload["provenance"]["recipe"].update(identities=40, seed=5)
    torch.save(payload, path)
    return path


def test_eval_generates_missing_held_out_data_and_reports_both_protocols(tiny_recipe_checkpoint, tmp_path):
    artifacts = tmp_path / "artifacts"
    result = _s2f("eval", "--checkpoint", str(tiny_recipe_checkpoint), "--json", env={"S2F_ARTIFACTS": str(artifacts)})
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    # the recipe's split: 35 % of 40 identities held out, 2 clips each
    assert metrics["gallery_size"] == 14 and metrics["queries"] == 28
    assert metrics["chance_at_1"] == 1 / 14 and metrics["r_at_1"] == metrics["paper"]["cosine"]["R@1"]
    assert set(metrics["paper"]) == {"cosine", "l2", "l1", "chance", "gallery_size"}
    assert set(metrics["paper"]["l1"]) == {"R@1", "R@2", "R@5", "R@10"}
    assert metrics["sf2f"]["gallery_size"] == 14 and metrics["sf2f"]["galleries"] == 1  # fewer than 100 held out
    assert metrics["gender_agreement"] >= 0.8          # the built-in model reads gender at 0.97
    corpus = artifacts / "eval-data" / "synthetic-40x2-seed5-rules4"
    assert (corpus / "manifest.json").exists() and "synthetic corpus" in result.stderr  # the progress bar
    out = artifacts / "eval" / tiny_recipe_checkpoint.parent.name
    assert json.loads((out / "evaluation.json").read_text())["sf2f"] == metrics["sf2f"]
    report = (out / "EVALUATION.md").read_text()
    assert report.startswith(f"# Evaluation of {tiny_recipe_checkpoint}") and "SF2F protocol" in report
    assert not (tiny_recipe_checkpoint.parent / "EVALUATION.md").exists()

    # Second run: the cached data is reused (no progress bar), the report goes where --out says.
    again = _s2f("eval", "--checkpoint", str(tiny_recipe_checkpoint), "--out", str(tmp_path / "here"),
                 env={"S2F_ARTIFACTS": str(artifacts)})
    assert again.returncode == 0, again.stderr
    assert "synthetic corpus" not in again.stderr and (tmp_path / "here" / "EVALUATION.md").read_text() == report


def test_eval_with_a_missing_corpus_is_one_clear_line(tmp_path):
    result = _s2f("eval", "--data", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "no corpus" in result.stderr and "Traceback" not in result.stderr


def test_eval_of_a_checkpoint_without_a_recipe_asks_for_data(tmp_path):
    path = tmp_path / "checkpoint.pt"
    payload = torch.load(BUILTIN_BUNDLE / "checkpoint.pt", map_location="cpu", weights_only=True)
    payload["provenance"].pop("recipe")
    torch.save(payload, path)
    result = _s2f("eval", "--checkpoint", str(path), env={"S2F_ARTIFACTS": str(tmp_path / "a")})
    assert result.returncode == 2 and "pass --data" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_builtin_model_on_a_fresh_clone_stays_ten_times_chance(tmp_path):
    """`s2f eval --json` with nothing generated (1,600-identity corpus, ~1 min, then 1,120 queries)."""
    result = _s2f("eval", "--json", env={"S2F_ARTIFACTS": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["r_at_1"] >= 10 * metrics["chance_at_1"]
    assert metrics["sf2f"]["gallery_size"] == 100 and metrics["sf2f"]["galleries"] == 5
    assert metrics["sf2f"]["r_at_1"] >= 10 * metrics["sf2f"]["chance"]["r_at_1"]
    assert json.loads((BUILTIN_BUNDLE / "evaluation.json").read_text())["r_at_1"] == metrics["r_at_1"]

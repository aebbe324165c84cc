"""The spread across seeded rebuilds (training/evaluation/spread.py) on made-up evaluations."""

from __future__ import annotations

import json

import pytest

from speech2face.training.evaluation import spread


def _evaluation(r1: float, sf2f_r1: float) -> dict:
    """An evaluation.json with every figure the report reads; R@K grows with K."""
    paper = {m: {f"R@{k}": min(1.0, r1 * k) for k in (1, 2, 5, 10)} for m in ("cosine", "l2", "l1")}
    return {"paper": paper, "sf2f": {f"r_at_{k}": min(1.0, sf2f_r1 * k) for k in (1, 5, 10)},
            "gender_agreement": 0.9 + r1, "age_agreement": 0.7 + r1}


def _per_seed(pairs):
    return {seed: spread.figures(_evaluation(*pair)) for seed, pair in enumerate(pairs)}


def test_every_figure_gets_min_median_max_and_the_median_model_is_the_middle_seed():
    per_seed = _per_seed([(0.05, 0.20), (0.03, 0.15), (0.04, 0.18)])
    summary = spread.summarise(per_seed, {"train_seed": 0}, "s2f recipe-spread --seeds 0 1 2")
    headline = summary["figures"][spread.HEADLINE]
    assert (headline["min"], headline["median"], headline["max"]) == (0.03, 0.04, 0.05)
    assert summary["median_seed"] == 2
    assert set(summary["figures"]) >= {"paper l1 R@10", "SF2F cosine R@5", "age agreement"}
    assert summary["figures"]["SF2F cosine R@1"]["values"] == {"0": 0.20, "1": 0.15, "2": 0.18}


def test_a_headline_tie_goes_to_the_higher_sf2f_figure_and_even_counts_take_the_lower_middle():
    assert spread.median_seed(_per_seed([(0.04, 0.10), (0.04, 0.30), (0.04, 0.20)])) == 2
    assert spread.median_seed(_per_seed([(0.01, 0.1), (0.02, 0.1), (0.03, 0.1), (0.04, 0.1)])) == 1


def test_lower_bounds_are_the_lowest_seed_less_half_the_width():
    summary = spread.summarise(_per_seed([(0.05, 0.20), (0.03, 0.15), (0.04, 0.18)]), {}, "cmd")
    bounds = spread.lower_bounds(summary)
    assert bounds[spread.HEADLINE] == pytest.approx(0.03 - 0.5 * 0.02)
    assert bounds["SF2F cosine R@1"] == pytest.approx(0.15 - 0.5 * 0.05)


def test_the_report_gains_a_section_per_stored_spread(tmp_path):
    per_seed = _per_seed([(0.05, 0.20), (0.03, 0.15), (0.04, 0.18)])
    summary = spread.summarise(per_seed, {}, "s2f recipe-spread --seeds 0 1 2")
    assert spread.with_spreads("# report\n", tmp_path) == "# report\n"
    spread.write(tmp_path / spread.SPREAD_FILE, summary)
    text = spread.with_spreads("# report\n", tmp_path)
    assert "`s2f recipe-spread --seeds 0 1 2`" in text and "median model by paper cosine R@1 is seed 2" in text
    row = next(line for line in text.splitlines() if line.startswith(f"| {spread.HEADLINE} |"))
    assert row.split("|")[1:-1] == [f" {spread.HEADLINE} ", " 5.00 ", " 3.00 ", " 4.00 ", " 3.00 ", " 4.00 ", " 5.00 "]
    assert json.loads((tmp_path / spread.SPREAD_FILE).read_text()) == summary

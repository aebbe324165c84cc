"""The recipe guard (`make test-recipe`): the reduced recipe, rebuilt from nothing, must score no
worse than the spread its seeded rebuilds gave (models/default/guard_spread.json, rendered in
EVALUATION.md). A change to the recipe, the corpus or the networks that costs accuracy fails here
in minutes instead of after a full rebuild."""

from __future__ import annotations

import pytest

from speech2face.engine.runtime.builtin import ARTIFACTS, BUILTIN_BUNDLE
from speech2face.training.checkpoint import load_checkpoint
from speech2face.training.data.synthetic import estimate_face_traits
from speech2face.training.evaluation import spread
from speech2face.training.evaluation.evaluate import evaluate
from speech2face.training.train_default import guard_recipe, recipe_record, train


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_reduced_recipe_scores_within_its_stated_spread(tmp_path):
    stated = spread.read(BUILTIN_BUNDLE / spread.GUARD_SPREAD_FILE)
    assert stated is not None, "no guard_spread.json: run make guard-spread"
    recipe = guard_recipe(train_seed=0)
    # The stated spread belongs to this recipe; a changed recipe needs `make guard-spread` (and a look at the figures).
    assert stated["recipe"] == recipe_record(guard_recipe()), "the reduced recipe changed since guard_spread.json"
    trained = train(ARTIFACTS / "synthetic-corpus", tmp_path / "work", recipe)
    got = spread.figures(evaluate(load_checkpoint(trained.checkpoint), trained.test_pairs, estimate_face_traits))
    bounds = spread.lower_bounds(stated)   # the lowest seed less half the spread's width
    print("\n".join(f"{name}: {got[name]:.4f} (seeds {stated['figures'][name]['min']:.4f}.."
                    f"{stated['figures'][name]['max']:.4f}, bound {bounds[name]:.4f})" for name in bounds))
    below = {name: (round(got[name], 4), round(bound, 4)) for name, bound in bounds.items() if got[name] < bound}
    assert not below, f"figures below the stated spread (got, bound): {below}"

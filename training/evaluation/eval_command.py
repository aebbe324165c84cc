"""`s2f eval`: held-out evaluation that runs on a fresh clone.

The held-out identities come from the checkpoint's own recipe (its provenance): the synthetic
corpus is deterministic, so when no corpus is given the one the recipe trained on is generated
(with a progress bar, ~30 s for the built-in model's 1,600 identities on 2 cores) and cached
under the artifacts folder; the test split of it is the one training never saw. Reports go to an
output folder (default under artifacts/), never beside the checkpoint unless `--out` says so.
"""

from __future__ import annotations

import json
from pathlib import Path


def corpus_for(recipe: dict, artifacts: Path) -> Path:
    """The recipe's synthetic corpus: the one `make train-default` left, when it matches, or a cached
    copy generated now under `artifacts/eval-data/` (never regenerating a folder someone else wrote)."""
    from speech2face.training.data.synthetic import RULES_VERSION, generate_corpus, read_manifest

    needed = {"n_identities": recipe["identities"], "clips_per_identity": recipe.get("clips_per_identity", 2),
              "seed": recipe.get("seed", 0)}
    trained_on = artifacts / "synthetic-corpus"
    manifest = read_manifest(trained_on)
    if manifest is not None and all(manifest.get(k) == v for k, v in needed.items()) \
            and manifest.get("rules_version") == RULES_VERSION:
        return trained_on
    name = "synthetic-{n_identities}x{clips_per_identity}-seed{seed}".format(**needed) + f"-rules{RULES_VERSION}"
    return generate_corpus(artifacts / "eval-data" / name, needed["n_identities"], needed["clips_per_identity"],
                           needed["seed"], workers=2, progress=True)


def run_eval(checkpoint_path: Path, data: Path | None, out: Path, report: Path | None, title: str) -> dict:
    """Evaluates, writes `out/evaluation.json` and the markdown report, returns the metrics."""
    from speech2face.engine.runtime.builtin import ARTIFACTS
    from speech2face.training.checkpoint import load_checkpoint
    from speech2face.training.data.synthetic import SyntheticPairs, estimate_face_traits
    from speech2face.training.evaluation.evaluate import evaluate, markdown_report
    from speech2face.training.evaluation.spread import with_spreads

    if not checkpoint_path.exists():
        raise FileNotFoundError(f"{checkpoint_path}: no checkpoint; run `make train-default` or pass --checkpoint")
    if data is not None and not data.exists():
        raise FileNotFoundError(f"{data}: no corpus; pass a synthetic corpus folder, or leave --data out to "
                                "generate the checkpoint's own held-out data")
    checkpoint = load_checkpoint(checkpoint_path)
    recipe = checkpoint.provenance.get("recipe", {})
    if data is None:
        if "identities" not in recipe:
            raise ValueError(f"{checkpoint_path}: its provenance names no synthetic recipe to regenerate held-out "
                             "data from; pass --data")
        data = corpus_for(recipe, ARTIFACTS)
    # The held-out split is the one the checkpoint's recipe never trained on.
    fractions = {k: recipe[k] for k in ("val_fraction", "test_fraction") if k in recipe}
    result = evaluate(checkpoint, SyntheticPairs(data, split="test", **fractions), estimate_face_traits)
    text = with_spreads(markdown_report(result, title), out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
    report_path = report or out / "EVALUATION.md"
    report_path.write_text(text)
    print(text)
    print(f"wrote {out / 'evaluation.json'} and {report_path}")
    return result

"""How far a rebuild moves the figures: the recipe's spread across training seeds.

One train_seed rebuilds bit-identical weights on one machine (training/train_default.py), so the
only honest yardstick for "did the recipe get worse" is the spread across seeds: every figure of
`s2f eval` for each seeded rebuild, with min, median and max. `s2f recipe-spread` writes it as
JSON beside the built-in model; EVALUATION.md renders it and the recipe guard
(tests/training/test_recipe_guard.py) reads its lower bounds.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

HEADLINE = "paper cosine R@1"   # the median model is the seed whose headline figure is the median
SPREAD_FILE = "spread.json"
GUARD_SPREAD_FILE = "guard_spread.json"


def figures(evaluation: dict) -> dict[str, float]:
    """Every figure of one evaluation.json, by a readable name (fractions, not percents)."""
    out = {f"paper {metric} R@{k}": evaluation["paper"][metric][f"R@{k}"]
           for metric in ("cosine", "l2", "l1") for k in (1, 2, 5, 10)}
    out.update({f"SF2F cosine R@{k}": evaluation["sf2f"][f"r_at_{k}"] for k in (1, 5, 10)})
    out.update({f"{trait} agreement": evaluation[f"{trait}_agreement"] for trait in ("gender", "age")})
    return out


def summarise(per_seed: dict[int, dict[str, float]], recipe: dict, command: str) -> dict:
    """{recipe, command, seeds, median_seed, figures: {name: {values: {seed: v}, min, median, max}}}."""
    seeds = sorted(per_seed)
    table = {}
    for name in per_seed[seeds[0]]:
        values = {str(s): per_seed[s][name] for s in seeds}
        table[name] = {"values": values, "min": min(values.values()),
                       "median": statistics.median(values.values()), "max": max(values.values())}
    return {"recipe": recipe, "command": command, "seeds": seeds, "median_seed": median_seed(per_seed),
            "figures": table}


def median_seed(per_seed: dict[int, dict[str, float]]) -> int:
    """The seed whose headline figure is the median (with an even count, the lower middle one);
    ties go to the seed with the higher SF2F R@1."""
    ranked = sorted(per_seed, key=lambda s: (per_seed[s][HEADLINE], per_seed[s]["SF2F cosine R@1"]))
    return ranked[(len(ranked) - 1) // 2]


def lower_bounds(spread: dict, slack: float = 0.5) -> dict[str, float]:
    """Per figure, the least a rebuild may give before it counts as a regression: the lowest seed,
    less `slack` times the spread's width (another CPU's kernels move a seed's figures a little)."""
    return {name: f["min"] - slack * (f["max"] - f["min"]) for name, f in spread["figures"].items()}


def write(path: Path, spread: dict) -> Path:
    path.write_text(json.dumps(spread, indent=2) + "\n")
    return path


def read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def markdown(spread: dict, title: str) -> str:
    """A section of EVALUATION.md: every figure per seed, with min / median / max (percent)."""
    seeds = [str(s) for s in spread["seeds"]]
    lines = [f"## {title}", "", f"`{spread['command']}` (seeds {', '.join(seeds)}; the median model by "
             f"{HEADLINE} is seed {spread['median_seed']}).", "",
             "| figure | " + " | ".join(f"seed {s}" for s in seeds) + " | min | median | max |",
             "|---" * (len(seeds) + 4) + "|"]
    for name, f in spread["figures"].items():
        scale, digits = (1, 3) if "agreement" in name else (100, 2)
        cells = [f"{scale * f['values'][s]:.{digits}f}" for s in seeds]
        cells += [f"{scale * f[k]:.{digits}f}" for k in ("min", "median", "max")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


SECTIONS = ((SPREAD_FILE, "Spread across seeded rebuilds of the recipe"),
            (GUARD_SPREAD_FILE, "Spread of the recipe guard's reduced recipe (make test-recipe)"))


def with_spreads(report: str, folder: Path) -> str:
    """The evaluation report followed by the spreads stored in `folder` (those that exist)."""
    sections = [markdown(s, title) for name, title in SECTIONS if (s := read(folder / name)) is not None]
    return "\n".join([report, *sections])

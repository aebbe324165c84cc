"""Golden config.pbtxt snapshots of the cpu target, both layouts, for the built-in model.

The files under tests/golden/ are also the quickest way to read what Triton is given. A change
in the config generator shows here as a diff to review; when it is intended, rewrite them with

    S2F_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_golden_configs.py
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from speech2face.engine import contract

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


FORMS = [contract.SAMPLES_MODEL, contract.FILE_MODEL]


@pytest.mark.parametrize("layout, repository_fixture, models", [
    ("fused", "cpu_repository", [contract.ENSEMBLE, *FORMS]),
    ("ensemble", "ensemble_repository",
     [contract.PREPROCESS, contract.VOICE_ENCODER, contract.FACE_DECODER, contract.ENSEMBLE, *FORMS]),
])
def test_cpu_configs_match_their_snapshots(request, layout, repository_fixture, models):
    repository = request.getfixturevalue(repository_fixture)
    written = sorted(p.parent.name for p in repository.glob(f"*/{contract.CONFIG_FILE}"))
    assert written == sorted(models)
    for model in models:
        text = (repository / model / contract.CONFIG_FILE).read_text()
        golden = GOLDEN / f"cpu-{layout}" / model / contract.CONFIG_FILE
        if os.environ.get("S2F_UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(text)
        diff = "".join(difflib.unified_diff(golden.read_text().splitlines(True), text.splitlines(True),
                                            str(golden), f"written {model}"))
        assert not diff, f"the {layout} layout's {model} config changed:\n{diff}"

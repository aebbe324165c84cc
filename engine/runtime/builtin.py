"""Where the built-in default model, the sample voice and generated artifacts live.

The wheel carries `model_repository/`, `models/default/` and `assets/` as package data at the same
places relative to this package as in a checkout (see pyproject.toml), so one rule finds them in
both: an editable install resolves to the checkout, a regular one to site-packages.
"""

from __future__ import annotations

import os
from pathlib import Path

from speech2face.engine.contract.bundle import MANIFEST, ModelBundle, load_bundle

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
# A checkout holds pyproject.toml beside the sources; an installed package does not.
IS_CHECKOUT = (PACKAGE_ROOT / "pyproject.toml").is_file()
PROJECT_ROOT = PACKAGE_ROOT  # kept for callers that show paths relative to the project
MODEL_SOURCES = PACKAGE_ROOT / "model_repository"
BUILTIN_BUNDLE = PACKAGE_ROOT / "models" / "default"
SAMPLE_VOICE = PACKAGE_ROOT / "assets" / "voice_sample.wav"


def _artifacts_dir() -> Path:
    """Generated files: the checkout's artifacts/, else a user cache; never site-packages."""
    if os.environ.get("S2F_ARTIFACTS"):
        return Path(os.environ["S2F_ARTIFACTS"])
    if IS_CHECKOUT:
        return PACKAGE_ROOT / "artifacts"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "speech2face"


ARTIFACTS = _artifacts_dir()


class BuiltinModelMissing(FileNotFoundError):
    """The built-in model is not where the package expects it."""


def default_bundle() -> ModelBundle:
    """The built-in model (models/default). Nothing is trained or exported here."""
    if not (BUILTIN_BUNDLE / MANIFEST).exists():
        raise BuiltinModelMissing(
            f"the built-in model is missing ({BUILTIN_BUNDLE / MANIFEST}); in a checkout, rebuild it with "
            "`make train-default`, or pass a model with --bundle/--repository")
    return load_bundle(BUILTIN_BUNDLE)


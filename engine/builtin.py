"""Where the built-in default model, the sample voice and generated artifacts live."""

from __future__ import annotations

import os
from pathlib import Path

from speech2face.engine.bundle import MANIFEST, ModelBundle, load_bundle

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUILTIN_BUNDLE = PROJECT_ROOT / "models" / "default"
SAMPLE_VOICE = PROJECT_ROOT / "assets" / "voice_sample.wav"
ARTIFACTS = Path(os.environ.get("S2F_ARTIFACTS", PROJECT_ROOT / "artifacts"))
UNTRAINED_BUNDLE = ARTIFACTS / "untrained-default"


def default_bundle() -> ModelBundle:
    """The committed built-in model; without one, fixed-seed weights exported on first use."""
    if (BUILTIN_BUNDLE / MANIFEST).exists():
        return load_bundle(BUILTIN_BUNDLE)
    if not (UNTRAINED_BUNDLE / MANIFEST).exists():
        # Needs the training stack (PyTorch), which `make demo` installs.
        from speech2face.export.build import export_bundle
        from speech2face.training.default_model import write_untrained_default

        checkpoint = write_untrained_default(UNTRAINED_BUNDLE / "checkpoint.pt")
        export_bundle(checkpoint, UNTRAINED_BUNDLE)
    return load_bundle(UNTRAINED_BUNDLE)


def default_repository(out_dir: str | Path | None = None) -> Path:
    """A cpu-target Triton repository of the default model (rewritten each call: a few MB)."""
    from speech2face.export.repository import write_cpu_repository

    return write_cpu_repository(default_bundle(), out_dir or ARTIFACTS / "repository-cpu")

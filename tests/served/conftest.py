"""Fixtures the served tests share: a voice-like signal and the in-process runtime's answer to it."""

from __future__ import annotations

import pytest

from signals import harmonic_voice
from speech2face.engine.runtime.local_runtime import LocalRuntime


@pytest.fixture(scope="module")
def voice():
    return harmonic_voice()


@pytest.fixture(scope="module")
def reference(bundle, voice):
    return LocalRuntime(bundle).infer(*voice)

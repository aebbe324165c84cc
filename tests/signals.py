"""Test signals shared by the tests/test_features_*.py files (helpers only, no tests)."""

from __future__ import annotations

import numpy as np

from speech2face.engine.features.reference import reference_resample  # noqa: F401  (the oracle)


def make_signal(name: str, n: int, rate: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    if name == "noise":
        x = 0.1 * rng.standard_normal(n)
    elif name == "tones":
        x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3150.5 * t) + 0.05 * np.sin(2 * np.pi * 7000 * t)
    elif name == "speech":  # harmonics of a gliding f0, syllable-like envelope, breath noise
        f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t) + 10 * np.sin(2 * np.pi * 5 * t)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        voiced = sum(np.sin(k * phase) / k * np.exp(-k / 12) for k in range(1, 30))
        envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 0.5
        x = 0.3 * voiced * envelope + 0.01 * rng.standard_normal(n)
    elif name == "silence":
        x = np.zeros(n)
    elif name == "clipped":
        x = np.clip(3.0 * np.sin(2 * np.pi * 220 * t) + 0.3 * rng.standard_normal(n), -1.0, 1.0)
    elif name == "padded":  # speech with leading and trailing silence, for trimming
        x = np.zeros(n)
        a, b = n // 4, n - n // 5
        x[a:b] = make_signal("speech", b - a, rate, seed)
    else:
        raise ValueError(name)
    return x.astype(np.float32)


SIGNALS = ("noise", "tones", "speech", "silence", "clipped", "padded")


def linear_error(out: np.ndarray, ref_linear: np.ndarray, power: float) -> float:
    """max |undo_power(out) - ref| / max |ref|: the error before the power law, scale-free."""
    undone = np.sign(out.astype(np.float64)) * np.abs(out.astype(np.float64)) ** (1.0 / power)
    scale = max(np.abs(ref_linear).max(), 1e-30)
    return float(np.abs(undone - ref_linear).max() / scale)



def harmonic_voice(rate: int = 16000, seconds: float = 2.5) -> tuple[np.ndarray, int]:
    """A harmonic signal with a vibrato (140 Hz +- 20 Hz at 3 Hz, 7 partials): voice-like, and shorter
    than the model's 6 s clip, so it is repeated. (float32 samples, rate)."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(140 + 20 * np.sin(2 * np.pi * 3 * t)) / rate
    return (sum(np.sin(k * phase) / k for k in range(1, 8)) * 0.2).astype(np.float32), rate

"""Test signals shared by the tests/test_features_*.py files (helpers only, no tests)."""

from __future__ import annotations

import numpy as np


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


def reference_resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """float64 evaluation of the C++ resampler's design (its filters read back through
    ``_kernels.resampler_info``): full convolution with each halfband decimator's prototype,
    keeping every other sample, then y[n] = sum_t x[t] h(n * down - t * up) at the middle rate.
    test_features_resample.py checks those prototypes against an independent NumPy design and
    measures their responses, so this is the oracle for the kernel's arithmetic.
    (engine/features_reference.reference_resample still describes the earlier single-stage
    100 dB design.)"""
    from speech2face.engine import _kernels

    x = np.asarray(audio, dtype=np.float64)
    if rate_in == rate_out:
        return x.copy()
    info = _kernels.resampler_info(rate_in, rate_out)
    y, t0 = x, 0  # y[k] is the sample at time index t0 + k of the current rate
    for hb in info["halfbands"]:
        h, hw = hb["prototype"], hb["hw"]
        full = np.convolve(y, h)  # full[m] sits at time index t0 - hw + m
        lo = -((hw - t0) // 2)  # ceil((t0 - hw) / 2)
        hi = (t0 + y.size - 1 + hw) // 2
        y, t0 = full[2 * np.arange(lo, hi + 1) - (t0 - hw)], lo
    proto, up, down = info["prototype"], info["up"], info["down"]
    half = (proto.size - 1) // 2
    reach = half // up + 1
    n_out = -(-x.size * rate_out // rate_in)
    out = np.empty(n_out)
    for start in range(0, n_out, 2048):
        t = np.arange(start, min(n_out, start + 2048)) * down
        i = (t // up)[:, None] + np.arange(-reach, reach + 1)[None, :]
        d = t[:, None] - i * up
        k = i - t0
        ok = (np.abs(d) <= half) & (k >= 0) & (k < y.size)
        w = np.where(ok, proto[np.clip(d + half, 0, proto.size - 1)], 0.0)
        out[start:start + t.size] = np.sum(w * y[np.clip(k, 0, y.size - 1)], axis=1)
    return out

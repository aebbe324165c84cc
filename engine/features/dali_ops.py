"""DALI building blocks shared by the pipelines (engine/features/dali_features.py, engine/features/dali_audio.py).

Called inside a `pipeline_def(enable_conditionals=True)`: DALI converts their `if` statements
into per-sample conditionals, whose predicates it evaluates on the CPU.
"""

from __future__ import annotations

import math

import numpy as np

RESAMPLE_QUALITY = 100.0
ANTIALIAS_TAPS = 801     # Kaiser transition ~0.008 x the input rate: 380 Hz at 48 kHz
ANTIALIAS_CUTOFF = 0.49  # x the output rate: -6 dB at 7.84 kHz for 16 kHz
ANTIALIAS_BETA = 10.0    # Kaiser beta: ~100 dB stop band


def clip_policy(audio, clip: int):
    """Repeat-then-crop: double the clip until it holds at least `clip` samples (at most log2(clip)
    doublings), then crop; CPU or GPU data (the predicates read the shape, on the CPU)."""
    from nvidia.dali import fn, types

    x = fn.slice(audio, 0, clip, axes=[0], out_of_bounds_policy="trim_to_shape")
    for _ in range(max(0, math.ceil(math.log2(clip)))):
        length = x.shape(dtype=types.INT32)[0]
        if length < clip:
            x = fn.slice(fn.cat(x, x, axis=0), 0, clip, axes=[0], out_of_bounds_policy="trim_to_shape")
    return x


def resample(audio, rate, rate_out: float, device: str):
    """`audio` at `rate` (a per-sample float scalar) to `rate_out`. fn.audio_resample does not
    low-pass when it decimates (a 9 kHz tone in 48 kHz audio passes at full level, aliased into
    the voice band), so audio above `rate_out` goes through `antialias` first."""
    from nvidia.dali import fn, types

    if rate > rate_out:
        audio = antialias(audio, rate, rate_out, device)
    return fn.audio_resample(audio, in_rate=rate, out_rate=rate_out, dtype=types.FLOAT, quality=RESAMPLE_QUALITY)


def antialias(audio, rate, rate_out: float, device: str):
    """Low-pass before decimation: a Kaiser-windowed sinc of ANTIALIAS_TAPS taps at the input
    rate, cutoff ANTIALIAS_CUTOFF x the output rate, unit DC gain, built per sample from its rate
    and applied as a one-row image filter (fn.filter: CPU and GPU)."""
    from nvidia.dali import fn, types
    import nvidia.dali.math as dmath

    taps = ANTIALIAS_TAPS
    n = np.arange(taps, dtype=np.float32) - (taps - 1) / 2
    window = np.kaiser(taps, ANTIALIAS_BETA).astype(np.float32)
    fc = ANTIALIAS_CUTOFF * rate_out / rate                       # cycles per input sample
    x = types.Constant(n, dtype=types.FLOAT) * (2.0 * fc) + 1e-9  # no 0/0 at the centre tap
    h = dmath.sin(np.pi * x) / (np.pi * x) * types.Constant(window, dtype=types.FLOAT)
    h = fn.reshape(h / fn.reductions.sum(h), shape=[1, taps])
    row = fn.reshape(audio, shape=[1, -1], layout="HW")
    filtered = fn.filter(row, h.gpu() if device == "gpu" else h, border="constant")
    return fn.reshape(filtered, shape=[-1])

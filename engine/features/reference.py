"""NumPy reference of every FeatureSpec kind: slow, float64, obviously right; the tests' oracle.

Also the reference resampler (the C++ resampler's own filters, read back from the kernel and
evaluated directly in float64; tests check those filters against an independent design). The
mel filter bank the C++ kernels are given lives in engine/features/mel.py (serving code), tested
against librosa.
"""

from __future__ import annotations

import numpy as np

from speech2face.engine.contract.feature_spec import FeatureSpec
# The mel bank is serving code (engine/features/mel.py); the reference uses the same one.
from speech2face.engine.features.mel import hz_to_mel, mel_filterbank, mel_to_hz  # noqa: F401


def apply_clip_policy(audio: np.ndarray, clip_samples: int) -> np.ndarray:
    """Repeat a short clip until it holds at least ``clip_samples``, then keep the first ones."""
    if audio.size == 0:
        raise ValueError("audio is empty")
    repeats = -(-clip_samples // audio.size)
    return np.tile(audio, repeats)[:clip_samples]


def trim_region(audio: np.ndarray, win_length: int, hop_length: int, top_db: float) -> tuple[int, int]:
    """[begin, end) left after dropping leading/trailing frames quieter than peak - top_db.

    Frames are ``win_length`` samples every ``hop_length`` (no window); energy is the mean
    square. Audio shorter than one frame, or all zeros, is kept whole.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.size < win_length:
        return 0, x.size
    frames = 1 + (x.size - win_length) // hop_length
    starts = np.arange(frames) * hop_length
    energy = np.array([np.mean(x[s:s + win_length] ** 2) for s in starts])
    peak = energy.max()
    if not peak > 0:
        return 0, x.size
    loud = np.flatnonzero(energy >= peak * 10.0 ** (-top_db / 10.0))
    return int(starts[loud[0]]), int(min(x.size, starts[loud[-1]] + win_length))


def periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def prepare_clip(audio16k: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Trim (when the spec asks for it) and apply the clip policy, in float64."""
    x = np.asarray(audio16k, dtype=np.float64)
    if spec.trim_silence:
        begin, end = trim_region(x, spec.win_length, spec.hop_length, spec.trim_top_db)
        x = x[begin:end]
    return apply_clip_policy(x, spec.clip_samples)


def stft_frames(audio16k: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Complex STFT (frames, bins) framed like tf.signal.stft: no centring, window zero-padded."""
    clip = prepare_clip(audio16k, spec)
    starts = np.arange(spec.n_frames) * spec.hop_length
    frames = clip[starts[:, None] + np.arange(spec.win_length)[None, :]]
    return np.fft.rfft(frames * periodic_hann(spec.win_length), n=spec.n_fft, axis=1)


def reference_features(audio16k: np.ndarray, spec: FeatureSpec = FeatureSpec()) -> np.ndarray:
    """The voice encoder's input for one 16 kHz mono clip, float32 of shape ``spec.shape``."""
    stft = stft_frames(audio16k, spec)
    if spec.kind == "complex_powerlaw":
        parts = np.stack([stft.real, stft.imag], axis=-1)
        out = np.sign(parts) * np.abs(parts) ** spec.power
    elif spec.kind == "magnitude_powerlaw":
        out = (np.abs(stft) ** spec.power)[..., None]
    else:  # logmel
        mel = (np.abs(stft) ** 2) @ mel_filterbank(spec).T
        out = np.log(mel + spec.log_floor)[..., None]
    return out.astype(np.float32)


def reference_resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """float64 evaluation of the C++ resampler's design (its filters read back through
    ``_kernels.resampler_info``): full convolution with each halfband decimator's prototype,
    keeping every other sample, then y[n] = sum_t x[t] h(n * down - t * up) at the middle rate.
    test_features_resample.py checks those prototypes against an independent NumPy design and
    measures their responses, so this is the oracle for the kernel's arithmetic."""
    from speech2face.engine.features import _kernels

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
    n_out = (2 * x.size * rate_out + rate_in) // (2 * rate_in)  # soxr's rule: nearest, halves up
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

"""Feature computation for serving and training: validation (and resampling), then the C++ kernel."""

from __future__ import annotations

import functools
import os
from typing import Sequence

import numpy as np

from speech2face.engine import _kernels
from speech2face.engine.feature_spec import FeatureSpec

MAX_SECONDS = 600.0  # longer uploads are refused rather than silently cropped
MIN_RATE, MAX_RATE = 8000, 192000
MAX_CHANNELS = 16
_KIND_CODES = {"complex_powerlaw": 0, "magnitude_powerlaw": 1, "logmel": 2}
_INT_SCALES = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}


class AudioError(ValueError):
    """Audio that cannot become features; the message names the problem."""


def validate_audio(audio: np.ndarray, sample_rate: int, spec: FeatureSpec) -> np.ndarray:
    """Returns mono float32 audio at the spec's rate, or raises AudioError naming the problem.

    Accepts int16, int32 (scaled to [-1, 1)), float32 and float64 samples, 1-D mono or 2-D
    (samples, channels) (channels are averaged), at any rate from 8 kHz to 192 kHz (resampled
    by the C++ polyphase resampler). Refuses empty audio, NaN/Inf, other ranks and dtypes,
    absurd rates and anything longer than 10 minutes.
    """
    audio = np.asarray(audio)
    if audio.dtype not in _INT_SCALES and audio.dtype not in (np.float32, np.float64):
        raise AudioError(f"audio dtype {audio.dtype} is not supported; send int16, int32, float32 or float64")
    if audio.ndim == 2:
        if audio.shape[1] > MAX_CHANNELS:
            raise AudioError(
                f"2-D audio must be (samples, channels) with at most {MAX_CHANNELS} channels, got shape {audio.shape}"
            )
    elif audio.ndim != 1:
        raise AudioError(f"audio must be 1-D mono or 2-D (samples, channels), got shape {audio.shape}")
    if audio.size == 0:
        raise AudioError("audio is empty")
    try:
        rate = int(sample_rate)
    except (TypeError, ValueError):
        raise AudioError(f"sample rate {sample_rate!r} is not a number") from None
    if rate != sample_rate or rate <= 0:
        raise AudioError(f"sample rate must be a positive whole number of Hz, got {sample_rate!r}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"sample rate {rate} Hz is not supported; use {MIN_RATE}..{MAX_RATE} Hz")
    seconds = audio.shape[0] / rate
    if seconds > MAX_SECONDS:
        raise AudioError(f"audio is {seconds:.0f} s long; the limit is {MAX_SECONDS:.0f} s")
    if audio.dtype in _INT_SCALES:
        scale = np.float32(1.0 / _INT_SCALES[audio.dtype])
        audio = audio.astype(np.float32) * scale
    else:
        if not np.isfinite(audio).all():
            raise AudioError("audio contains NaN or Inf samples")
        if audio.dtype == np.float64 and np.abs(audio).max() > np.finfo(np.float32).max:
            raise AudioError("audio has samples too large for float32")
        audio = audio.astype(np.float32, copy=False)
    if audio.ndim == 2:
        audio = audio.mean(axis=1, dtype=np.float32) if audio.shape[1] > 1 else audio[:, 0]
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if rate != spec.sample_rate:
        audio = resample(audio, rate, spec.sample_rate)
    return audio


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """float32 polyphase resampling (Kaiser-windowed sinc; see csrc/spectrogram.cpp)."""
    return _kernels.resample(np.ascontiguousarray(audio, dtype=np.float32), int(rate_in), int(rate_out))


@functools.lru_cache(maxsize=16)
def _mel_filterbank32(spec: FeatureSpec) -> np.ndarray:
    from speech2face.engine.features_reference import mel_filterbank

    return np.ascontiguousarray(mel_filterbank(spec), dtype=np.float32)


def compute_features(
    clips: Sequence[np.ndarray],
    spec: FeatureSpec = FeatureSpec(),
    num_threads: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Features of validated 16 kHz float32 clips in one kernel call: (batch, *spec.shape).

    float32 C-contiguous clips are read in place (no copy); the GIL is released while the
    kernel runs on ``num_threads`` threads (default: all cores).

    ``out``: a float32 C-contiguous writeable array of shape (len(clips), *spec.shape) to
    write into (and return) instead of a fresh array; a caller that reuses one buffer (the
    Triton preprocess model, a training loader) skips the page faults of fresh memory, which
    at B=32 (39 MB) cost more than the features. Without it, large outputs come from a small
    pool of recycled buffers (freed outputs return to it).
    """
    threads = num_threads or os.cpu_count() or 1
    mel_fb = _mel_filterbank32(spec) if spec.kind == "logmel" else None
    return _kernels.features_batch(
        list(clips),
        kind=_KIND_CODES[spec.kind],
        clip_samples=spec.clip_samples,
        win_length=spec.win_length,
        hop_length=spec.hop_length,
        n_fft=spec.n_fft,
        power=spec.power,
        mel_fb=mel_fb,
        log_floor=spec.log_floor,
        trim=spec.trim_silence,
        trim_top_db=spec.trim_top_db,
        num_threads=threads,
        out=out,
    )

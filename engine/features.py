"""Feature computation for serving and training: validation, then the C++ kernel."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from speech2face.engine import _kernels
from speech2face.engine.feature_spec import FeatureSpec

MAX_SECONDS = 600.0  # longer uploads are refused rather than silently cropped


class AudioError(ValueError):
    """Audio that cannot become features; the message names the problem."""


def validate_audio(audio: np.ndarray, sample_rate: int, spec: FeatureSpec) -> np.ndarray:
    """Returns mono float32 audio at the spec's rate, or raises AudioError naming the problem."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise AudioError(f"audio must be 1-D mono samples, got shape {audio.shape}")
    if audio.size == 0:
        raise AudioError("audio is empty")
    if sample_rate != spec.sample_rate:
        raise AudioError(
            f"sample rate {sample_rate} Hz is not supported; send {spec.sample_rate} Hz audio"
        )
    if audio.size > MAX_SECONDS * sample_rate:
        raise AudioError(
            f"audio is {audio.size / sample_rate:.0f} s long; the limit is {MAX_SECONDS:.0f} s"
        )
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if not np.isfinite(audio).all():
        raise AudioError("audio contains NaN or Inf samples")
    return audio


def compute_features(
    clips: Sequence[np.ndarray],
    spec: FeatureSpec = FeatureSpec(),
    num_threads: int | None = None,
) -> np.ndarray:
    """Features of validated 16 kHz float32 clips in one kernel call: (batch, *spec.shape)."""
    threads = num_threads or min(len(clips), os.cpu_count() or 1)
    return _kernels.complex_powerlaw_batch(
        list(clips),
        clip_samples=spec.clip_samples,
        win_length=spec.win_length,
        hop_length=spec.hop_length,
        n_fft=spec.n_fft,
        power=spec.power,
        num_threads=threads,
    )

"""Features for serving and training through the C++ kernel (resampling: features/resampling.py)."""

from __future__ import annotations

import functools
import os
from typing import Sequence

import numpy as np

from speech2face.engine.features import _kernels
from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.engine.features.mel import mel_filterbank


@functools.lru_cache(maxsize=16)
def _feature_params(spec: FeatureSpec) -> _kernels.FeatureParams:
    """``spec`` as the kernel takes it, validated, with its FFT plan and mel weights prepared:
    built once per spec (the mel filterbank too), not on every call."""
    mel_fb = None
    if spec.kind == "logmel":
        mel_fb = np.ascontiguousarray(mel_filterbank(spec), dtype=np.float32)
    return _kernels.FeatureParams(
        kind=getattr(_kernels.Kind, spec.kind),
        clip_samples=spec.clip_samples,
        win_length=spec.win_length,
        hop_length=spec.hop_length,
        n_fft=spec.n_fft,
        power=spec.power,
        mel_fb=mel_fb,
        log_floor=spec.log_floor,
        trim=spec.trim_silence,
        trim_top_db=spec.trim_top_db,
    )


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
    return _kernels.features_batch(list(clips), _feature_params(spec), num_threads=threads, out=out)

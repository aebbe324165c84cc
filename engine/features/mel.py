"""The Slaney mel filter bank that the C++ kernels are given for the `logmel` feature kind.

Serving code (engine/features/kernels.py) and the NumPy reference (engine/features/reference.py) both
use this one; tests compare it with librosa's.
"""

from __future__ import annotations

import math

import numpy as np

from speech2face.engine.contract.feature_spec import FeatureSpec


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    linear = f / (200.0 / 3.0)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, linear)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    linear = m * (200.0 / 3.0)
    log_part = 1000.0 * np.exp((m - 15.0) * (math.log(6.4) / 27.0))
    return np.where(m >= 15.0, log_part, linear)


def mel_filterbank(spec: FeatureSpec) -> np.ndarray:
    """(n_mels, n_bins) float64: triangles on the Slaney mel scale, Slaney area-normalised."""
    edges = mel_to_hz(np.linspace(hz_to_mel(spec.mel_fmin), hz_to_mel(spec.mel_fmax_hz), spec.n_mels + 2))
    freqs = np.linspace(0.0, spec.sample_rate / 2, spec.n_bins)
    lower = (freqs[None, :] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    upper = (edges[2:, None] - freqs[None, :]) / (edges[2:] - edges[1:-1])[:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]

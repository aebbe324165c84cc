"""NumPy reference of every FeatureSpec kind: slow, float64, obviously right; the tests' oracle."""

from __future__ import annotations

import numpy as np

from speech2face.engine.feature_spec import FeatureSpec


def apply_clip_policy(audio: np.ndarray, clip_samples: int) -> np.ndarray:
    """Repeat a short clip until it holds at least ``clip_samples``, then keep the first ones."""
    if audio.size == 0:
        raise ValueError("audio is empty")
    repeats = -(-clip_samples // audio.size)
    return np.tile(audio, repeats)[:clip_samples]


def periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def stft_frames(audio16k: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Complex STFT (frames, bins) framed like tf.signal.stft: no centring, window zero-padded."""
    clip = apply_clip_policy(np.asarray(audio16k, dtype=np.float64), spec.clip_samples)
    starts = np.arange(spec.n_frames) * spec.hop_length
    frames = clip[starts[:, None] + np.arange(spec.win_length)[None, :]]
    return np.fft.rfft(frames * periodic_hann(spec.win_length), n=spec.n_fft, axis=1)


def reference_features(audio16k: np.ndarray, spec: FeatureSpec = FeatureSpec()) -> np.ndarray:
    """The voice encoder's input for one 16 kHz mono clip, float32 of shape ``spec.shape``."""
    stft = stft_frames(audio16k, spec)
    parts = np.stack([stft.real, stft.imag], axis=-1)
    return (np.sign(parts) * np.abs(parts) ** spec.power).astype(np.float32)

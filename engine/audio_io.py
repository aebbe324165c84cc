"""Reads WAV/FLAC/OGG files (soundfile) as mono float32 samples in [-1, 1] and their rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class AudioFileError(ValueError):
    """A file that cannot be read as audio; the message names the file and the problem."""


_INT_SCALES = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}


def to_mono_float32(samples: np.ndarray) -> np.ndarray:
    """(samples,) or (samples, channels) int16/int32/float32/float64 -> mono float32.

    Integers are scaled to [-1, 1) (int16 by 2^15, int32 by 2^31); channels are averaged.
    """
    samples = np.asarray(samples)
    if samples.dtype in _INT_SCALES:
        samples = samples.astype(np.float32) * np.float32(1.0 / _INT_SCALES[samples.dtype])
    elif samples.dtype in (np.float32, np.float64):
        samples = samples.astype(np.float32, copy=False)
    else:
        raise AudioFileError(f"unsupported sample type {samples.dtype}")
    if samples.ndim == 2:
        samples = samples.mean(axis=1, dtype=np.float32)
    elif samples.ndim != 1:
        raise AudioFileError(f"audio must be (samples,) or (samples, channels), got {samples.shape}")
    return np.ascontiguousarray(samples, dtype=np.float32)


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate) of a WAV/FLAC/OGG file, any channel count."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    try:
        # soundfile converts every stored subtype (PCM_16/24/32, FLOAT, DOUBLE, Vorbis) to
        # float32 in [-1, 1]; always_2d gives (frames, channels).
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise AudioFileError(f"{path}: not a readable audio file ({error})") from None
    if samples.size == 0:
        raise AudioFileError(f"{path}: the file holds no audio samples")
    return to_mono_float32(samples), int(rate)

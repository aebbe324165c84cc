"""Reads WAV/FLAC/OGG files (soundfile) as mono float32 samples in [-1, 1] and their rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speech2face.engine import audio
from speech2face.engine.audio import AudioError, check_layout


class AudioFileError(AudioError):
    """A file that cannot be read as audio; the message names the file and the problem."""

    def __init__(self, message: str, reason: str = "bad_file"):
        super().__init__(message, reason)


def to_mono_float32(samples: np.ndarray) -> np.ndarray:
    """(samples,) or (samples, channels) int16/int32/float32/float64 -> mono float32 (engine/audio.py's rules)."""
    samples = np.asarray(samples)
    try:
        check_layout(samples)
    except AudioError as error:
        raise AudioFileError(str(error), error.reason) from None
    return audio.to_mono_float32(samples)


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

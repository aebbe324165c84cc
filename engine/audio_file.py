"""Reads a WAV/FLAC/OGG file as mono float32 samples and their sample rate (client side)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class AudioFileError(ValueError):
    pass


def read_audio_file(path: str | Path) -> tuple[np.ndarray, int]:
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise AudioFileError(f"{path}: not a readable audio file ({error})") from None
    if samples.size == 0:
        raise AudioFileError(f"{path}: the file holds no audio samples")
    return samples.mean(axis=1), int(rate)

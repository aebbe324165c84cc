"""Reads WAV/FLAC/OGG files (soundfile) as mono float32 samples in [-1, 1] and their rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speech2face.engine.contract import audio_rules as audio
from speech2face.engine.contract.audio_rules import AudioError, check_layout, check_length


class AudioFileError(AudioError):
    """A file that cannot be read as audio; the message names the file and the problem."""

    def __init__(self, message: str, reason: str = "bad_file"):
        super().__init__(message, reason)


def _declared_wav_bytes(data: bytes) -> tuple[int, int] | None:
    """(declared, present) bytes of a RIFF/WAVE file's data chunk, or None when not a WAV.

    libsndfile reads a truncated WAV up to where it ends without a word; the chunk header
    still says how long the data should be, so a cut file is caught here.
    """
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        return None
    order = "little" if data[:4] == b"RIFF" else "big"
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = data[offset:offset + 4], int.from_bytes(data[offset + 4:offset + 8], order)
        if chunk == b"data":
            return size, len(data) - offset - 8
        offset += 8 + size + (size & 1)
    return None


def _read(source, name: str, max_seconds: float) -> tuple[np.ndarray, int]:
    import soundfile

    try:
        with soundfile.SoundFile(source) as audio_file:  # opened once: header checked, then decoded
            rate = audio_file.samplerate
            # Refuse before decoding: a small compressed file can inflate to gigabytes of samples.
            if rate > 0:
                check_length(audio_file.frames, rate, max_seconds)
            # soundfile converts every stored subtype (PCM_16/24/32, FLOAT, DOUBLE, Vorbis) to
            # float32 in [-1, 1]; always_2d gives (frames, channels).
            samples = audio_file.read(dtype="float32", always_2d=True)
    except AudioError as error:
        raise AudioFileError(f"{name}: {error}", error.reason) from None
    except (RuntimeError, soundfile.LibsndfileError) as error:
        # libsndfile's own words, without soundfile's "Error opening <_io.BytesIO object at 0x...>".
        detail = getattr(error, "error_string", None) or str(error)
        raise AudioFileError(f"{name}: not a readable WAV, FLAC or OGG file ({detail})") from None
    if samples.size == 0:
        raise AudioFileError(f"{name}: the file holds no audio samples (empty or truncated)", "empty")
    try:
        check_layout(samples)   # the channel count
    except AudioError as error:
        raise AudioFileError(f"{name}: {error}", error.reason) from None
    return audio.to_mono_float32(samples), int(rate)


def decode_audio(data: bytes, name: str = "the audio file",
                 max_seconds: float = audio.MAX_SECONDS) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate) of a whole WAV/FLAC/OGG file held in memory."""
    import io

    if not data:
        raise AudioFileError(f"{name} is empty (0 bytes)", "empty")
    wav = _declared_wav_bytes(data)
    if wav is not None and 0 < wav[0] < 0xFFFFFFFF and wav[1] < wav[0]:
        raise AudioFileError(f"{name} is truncated: its WAV header declares {wav[0]} bytes of samples, "
                             f"{max(wav[1], 0)} are present")
    return _read(io.BytesIO(data), name, max_seconds)


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate) of a WAV/FLAC/OGG file, any channel count."""
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    return _read(str(path), str(path), audio.MAX_SECONDS)

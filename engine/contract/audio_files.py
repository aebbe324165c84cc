"""Reads WAV/FLAC/OGG files (soundfile) as mono float32 samples in [-1, 1] and their rate."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from speech2face.engine.contract import audio_rules as audio
from speech2face.engine.contract.audio_rules import AudioError, check_length, check_rate


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


def _read(source, name: str, max_seconds: float, keep_seconds: float | None = None) -> tuple[np.ndarray, int]:
    import soundfile

    try:
        with soundfile.SoundFile(source) as audio_file:  # opened once: header checked, then decoded
            rate, channels = audio_file.samplerate, audio_file.channels
            # Refuse from the header, before decoding: a small compressed file can inflate to
            # gigabytes of samples.
            check_rate(rate)
            if channels > audio.MAX_CHANNELS:
                raise AudioError(f"{channels} channels; at most {audio.MAX_CHANNELS} are accepted", "bad_shape")
            check_length(audio_file.frames, rate, max_seconds)
            keep = audio_file.frames if keep_seconds is None else min(audio_file.frames,
                                                                     math.ceil(keep_seconds * rate))
            samples = _read_mono(audio_file, keep)
    except AudioError as error:
        raise AudioFileError(f"{name}: {error}", error.reason) from None
    except (RuntimeError, soundfile.LibsndfileError) as error:
        # libsndfile's own words, without soundfile's "Error opening <_io.BytesIO object at 0x...>".
        detail = getattr(error, "error_string", None) or str(error)
        raise AudioFileError(f"{name}: not a readable WAV, FLAC or OGG file ({detail})") from None
    if samples.size == 0:
        raise AudioFileError(f"{name}: the file holds no audio samples (empty or truncated)", "empty")
    return samples, int(rate)


def _read_mono(audio_file, frames: int, block: int = 1 << 16) -> np.ndarray:
    """The first `frames` frames, mixed down block by block: memory stays at the mono result plus
    one block of every channel, whatever the channel count. soundfile converts every stored
    subtype (PCM 16/24/32, FLOAT, DOUBLE, Vorbis, Opus) to float32 in [-1, 1]."""
    out = np.empty(max(frames, 0), np.float32)
    done = 0
    while done < frames:
        part = audio_file.read(min(block, frames - done), dtype="float32", always_2d=True)
        if len(part) == 0:   # the header promised more than the stream holds
            break
        out[done:done + len(part)] = audio.to_mono_float32(part)
        done += len(part)
    return out[:done]


def decode_audio(data: bytes, name: str = "the audio file", max_seconds: float = audio.MAX_SECONDS,
                 keep_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate) of a WAV/FLAC/OGG file held in memory.

    `keep_seconds`: decode only the first this many seconds (the server passes what its clip
    policy keeps, plus the resampler's reach), so the cost of decoding an accepted file does not
    grow with its declared length, rate or channel count. The header's rate, channels and length
    are checked before anything is decoded."""
    import io

    if not data:
        raise AudioFileError(f"{name} is empty (0 bytes)", "empty")
    wav = _declared_wav_bytes(data)
    if wav is not None and 0 < wav[0] < 0xFFFFFFFF and wav[1] < wav[0]:
        raise AudioFileError(f"{name} is truncated: its WAV header declares {wav[0]} bytes of samples, "
                             f"{max(wav[1], 0)} are present")
    return _read(io.BytesIO(data), name, max_seconds, keep_seconds)


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate) of a WAV/FLAC/OGG file, any channel count."""
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    return _read(str(path), str(path), audio.MAX_SECONDS)

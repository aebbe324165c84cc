"""What a caller's audio becomes before it is sent, and the warnings it deserves.

- Samples and their rate (an array): the contract's audio rules (engine/contract/audio_rules.py, the
  server's own), mono float32, sent as AUDIO + SAMPLE_RATE.
- A file (a path or its bytes) that libsndfile reads as WAV, FLAC or OGG (`contract.AUDIO_FILE_FORMATS`):
  its header checked, sent whole as AUDIO_FILE; the server decodes it with the same libsndfile.
- Any other file FFmpeg reads (M4A/AAC, MP3, WebM/Opus, AIFF, the audio track of a video): decoded
  here (engine/client/ffmpeg_decode.py) and sent as samples.

A wrong clip is an `InvalidInput` naming the file once, before anything is sent. A clip that is
served but not as the contract expects (shorter than 1 s, samples outside [-1, 1]) gives an
`AudioWarning`. No waiting and no sockets here: the clients' core (core.py) sequences these steps.
"""

from __future__ import annotations

import dataclasses
import io
import os
import sys
import warnings
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from speech2face.engine import contract
from speech2face.engine.client.errors import InvalidInput
from speech2face.engine.contract import audio_rules

MAX_SECONDS = audio_rules.MAX_SECONDS
MAX_REQUEST_BYTES = contract.MAX_REQUEST_BYTES
# Over HTTP the tensors of one request, leaving 64 KiB of the body for the JSON header.
HTTP_MAX_PAYLOAD_BYTES = contract.MAX_HTTP_BINARY_BODY_BYTES - 65536


def _limit_note(max_request_bytes: int) -> str:
    if max_request_bytes != HTTP_MAX_PAYLOAD_BYTES:
        return ""
    return " over HTTP (tritonserver 2.51 crashes on larger binary HTTP bodies; send it over gRPC)"
AudioSource = Union[str, os.PathLike, bytes, np.ndarray, Sequence[float]]
FILE_SOURCES = (str, os.PathLike, bytes, bytearray, memoryview)   # a file, not samples
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")   # libsndfile subtypes whose samples may leave [-1, 1]
_UNRECOGNISED = 1                      # libsndfile's SF_ERR_UNRECOGNISED_FORMAT


@dataclasses.dataclass(frozen=True)
class Request:
    """One clip ready to send: `file` bytes (AUDIO_FILE), or `samples` at `rate` (AUDIO)."""

    file: bytes | None = None
    samples: np.ndarray | None = None
    rate: int = 0


@dataclasses.dataclass(frozen=True)
class FileInfo:
    """A file as its header describes it, nothing decoded.

    whole: sent as it is (libsndfile reads it as WAV/FLAC/OGG); otherwise FFmpeg decodes it here.
    source: the path (str) or the bytes. frames: from libsndfile's header (None for FFmpeg's, whose
    container may not say). kind: libsndfile's subtype (PCM_16, FLOAT, VORBIS, ...) or FFmpeg's codec.
    """

    name: str
    source: str | bytes = dataclasses.field(repr=False)
    whole: bool
    rate: int
    frames: int | None
    kind: str


# ---------------------------------------------------------------------------------------- samples
def prepare_audio(audio, sample_rate, *, max_seconds: float = MAX_SECONDS,
                  max_request_bytes: int = MAX_REQUEST_BYTES, name: str | None = None) -> tuple[np.ndarray, int]:
    """The contract's checks and conversion: (mono float32 samples, int rate), or InvalidInput naming
    the problem (and `name`, the file the samples came from, when given)."""
    audio = np.asarray(audio)
    where = f"{name}: " if name else ""
    try:
        audio_rules.check_layout(audio)
        rate = audio_rules.check_rate(sample_rate)
        audio_rules.check_length(audio.shape[0], rate, max_seconds)
        if audio.shape[0] * 4 > max_request_bytes:
            raise InvalidInput(f"{where}audio of {audio.shape[0]} samples is {audio.shape[0] * 4 / 2**20:.0f} MiB as "
                               f"float32; the request limit is {max_request_bytes / 2**20:.0f} MiB"
                               f"{_limit_note(max_request_bytes)} (resample to 16 kHz before sending)")
        audio_rules.check_values(audio)
    except audio_rules.AudioError as error:
        raise InvalidInput(f"{where}{error}") from None
    return audio_rules.to_mono_float32(audio), rate


def peak_of(samples: np.ndarray) -> float:
    """The largest |sample| of checked mono float32 samples."""
    return float(np.max(np.abs(samples))) if samples.size else 0.0


_CLIENT_DIR = os.path.dirname(os.path.abspath(__file__))


def warn(name: str | None, samples: int, rate: int, peak: float | None) -> None:
    """An AudioWarning per thing the contract's audio rules warn about (audio_rules.audio_warnings),
    naming the file, attributed to the caller's line (the first frame outside this package)."""
    found = audio_rules.audio_warnings(samples, rate, peak)
    if not found:
        return
    level, frame = 1, sys._getframe(0)
    while frame is not None and frame.f_code.co_filename.startswith(_CLIENT_DIR):
        frame, level = frame.f_back, level + 1
    for message in found:
        warnings.warn(f"{name}: {message}" if name else message, audio_rules.AudioWarning, stacklevel=level)


# ------------------------------------------------------------------------------------------ files
def read_file(source: str | os.PathLike | bytes) -> tuple[bytes, str]:
    """(the file's bytes, a name for messages) of a path or of bytes already read."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "audio file bytes"
    path = Path(source)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    try:
        return path.read_bytes(), str(path)
    except OSError as error:
        raise InvalidInput(f"{path}: cannot be read ({error.strerror})") from None


def _locate(source: str | os.PathLike | bytes) -> tuple[str | bytes, str, int]:
    """(the path as a str, or the bytes; a name for messages; the size in bytes)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return data, "audio file bytes", len(data)
    path = Path(source)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    try:
        with open(path, "rb"):
            pass
        return str(path), str(path), path.stat().st_size
    except OSError as error:
        raise InvalidInput(f"{path}: cannot be read ({error.strerror})") from None


def _libsndfile_info(where: str | bytes):
    """(soundfile's header info, None) or (None, libsndfile's error)."""
    import soundfile

    try:
        return soundfile.info(io.BytesIO(where) if isinstance(where, bytes) else where), None
    except (RuntimeError, soundfile.LibsndfileError) as error:
        return None, error


def _libsndfile_words(error: Exception) -> str:
    """libsndfile's own message, without soundfile's "Error opening <_io.BytesIO object at 0x...>"."""
    return (getattr(error, "error_string", None) or str(error)).strip().rstrip(".")


def _check_whole(info, size: int, name: str, max_seconds: float, max_request_bytes: int) -> None:
    """A file to be sent whole: within the request limit, and a header the server accepts."""
    if size > max_request_bytes:
        raise InvalidInput(f"{name}: {size / 2**20:.0f} MiB; the request limit is "
                           f"{max_request_bytes / 2**20:.0f} MiB{_limit_note(max_request_bytes)}")
    if info.frames <= 0:
        raise InvalidInput(f"{name}: the file holds no audio samples")
    if info.channels > audio_rules.MAX_CHANNELS:
        raise InvalidInput(f"{name}: {info.channels} channels; at most {audio_rules.MAX_CHANNELS} are accepted")
    try:
        audio_rules.check_length(info.frames, audio_rules.check_rate(info.samplerate), max_seconds)
    except audio_rules.AudioError as error:
        raise InvalidInput(f"{name}: {error}") from None


def inspect_file(source: str | os.PathLike | bytes, *, max_seconds: float = MAX_SECONDS,
                 max_request_bytes: int = MAX_REQUEST_BYTES) -> FileInfo:
    """How a file will be sent, from its header only (nothing decoded, a path's bytes not read):
    whole when libsndfile reads it as WAV/FLAC/OGG, else decoded by FFmpeg. InvalidInput, naming the
    file once with libsndfile's or FFmpeg's own words, when neither reads it or it breaks the limits."""
    where, name, size = _locate(source)
    info, error = _libsndfile_info(where)
    if info is not None and info.format in contract.AUDIO_FILE_FORMATS:
        _check_whole(info, size, name, max_seconds, max_request_bytes)
        return FileInfo(name, where, True, int(info.samplerate), int(info.frames), info.subtype)
    from speech2face.engine.client import ffmpeg_decode

    # libsndfile's words matter when it knew the format and still failed (a broken WAV header)
    recognised = error is not None and getattr(error, "code", _UNRECOGNISED) != _UNRECOGNISED
    media = ffmpeg_decode.probe(where, name, max_seconds=max_seconds,
                                libsndfile_words=_libsndfile_words(error) if recognised else None)
    return FileInfo(name, where, False, media.rate, None, media.codec)


def check_audio_file(data: bytes, name: str, *, max_seconds: float = MAX_SECONDS,
                     max_request_bytes: int = MAX_REQUEST_BYTES) -> None:
    """Whether these bytes may be sent whole as AUDIO_FILE (header only): a format the server decodes,
    a rate and a length within the limits. Raises InvalidInput naming the file and the problem."""
    info, error = _libsndfile_info(bytes(data))
    if info is None:
        raise InvalidInput(f"{name}: not a readable audio file ({_libsndfile_words(error)})")
    if info.format not in contract.AUDIO_FILE_FORMATS:
        raise InvalidInput(f"{name}: {info.format} files are not served; send "
                           f"{', '.join(contract.AUDIO_FILE_FORMATS)} or decoded samples")
    _check_whole(info, len(data), name, max_seconds, max_request_bytes)


def file_bytes(found: FileInfo) -> bytes:
    """The bytes of a file to send whole."""
    return found.source if isinstance(found.source, bytes) else read_file(found.source)[0]


def file_peak(data: bytes, name: str) -> float:
    """The largest |sample| of a float (FLOAT/DOUBLE) file sent whole, read block by block; NaN, Inf
    or samples beyond ±2^31 are refused here with the rules' words, as the server would."""
    import soundfile

    peak = 0.0
    with soundfile.SoundFile(io.BytesIO(data)) as audio_file:
        for block in audio_file.blocks(blocksize=1 << 16, dtype="float64", always_2d=True):
            with np.errstate(invalid="ignore"):
                block_peak = float(np.max(np.abs(block))) if block.size else 0.0
            if not (np.isfinite(block_peak) and block_peak <= audio_rules.MAX_ABS_SAMPLE):
                whole, _ = soundfile.read(io.BytesIO(data), dtype="float64", always_2d=True)
                try:
                    audio_rules.check_values(whole)
                except audio_rules.AudioError as error:
                    raise InvalidInput(f"{name}: {error}") from None
            peak = max(peak, block_peak)
    return peak


def decode_file(data: bytes, name: str = "audio file") -> Request:
    """A WAV/FLAC/OGG file's samples, for a model without AUDIO_FILE: the server's own decoder
    (engine/contract/audio_files.py), with the same checks."""
    from speech2face.engine.contract.audio_files import decode_audio

    try:
        samples, rate = decode_audio(data, name)
    except audio_rules.AudioError as error:
        raise InvalidInput(str(error)) from None
    return Request(samples=samples, rate=rate)

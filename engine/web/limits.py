"""What the page accepts, checked before anything reaches the server: size in bytes, then length.

The contract (engine/contract/audio_rules.py) has a maximum length (600 s) but no minimum; the
model repeats a short clip up to its 6 s window, so a 0.2 s click still "works" and gives a
meaningless face. The page asks for at least MIN_SECONDS of voice, and takes at most
MAX_SECONDS (the model reads only the first 6 s; a minute is plenty for a demo) and
MAX_UPLOAD_BYTES (also given to Gradio, which refuses larger uploads before they are stored).

The length is read with the contract's own decoder (libsndfile: WAV, FLAC, OGG/Opus, MP3), which
checks the header before decoding and decodes here only the first MIN_SECONDS. Formats it does
not read (M4A/AAC, WebM) go to the client, which decodes them itself and bounds them by
MAX_SECONDS (its `max_seconds` option); their minimum is not checked here.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from speech2face.engine.contract.audio_files import AudioFileError, decode_audio

MIN_SECONDS = 1.0
MAX_SECONDS = 60.0
MAX_UPLOAD_BYTES = 20_000_000


class ClipRejected(ValueError):
    """A clip the page refuses; the message is what the person sees. `reason`: a short word
    (empty, too_big, too_short, too_long, bad_file)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Clip:
    path: str
    size: int                 # bytes
    checked: bool             # False: a format the contract's decoder does not read (the client's job)


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def check_clip(path: str | None, max_bytes: int = MAX_UPLOAD_BYTES, min_seconds: float = MIN_SECONDS,
               max_seconds: float = MAX_SECONDS) -> Clip:
    """The clip at `path` if the page takes it, else ClipRejected saying why."""
    if not path:
        raise ClipRejected("No clip yet: record one with the microphone or drop an audio file.", "empty")
    try:
        size = os.path.getsize(path)
    except OSError as error:
        raise ClipRejected(f"The upload cannot be read ({error.strerror}).", "bad_file") from None
    if size > max_bytes:
        raise ClipRejected(f"The file is {megabytes(size)}; the limit is {megabytes(max_bytes)}.", "too_big")
    if size == 0:
        raise ClipRejected("The file is empty (0 bytes).", "empty")
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        samples, rate = decode_audio(data, Path(path).name, max_seconds=max_seconds, keep_seconds=min_seconds)
    except AudioFileError as error:
        if error.reason == "too_long":
            raise ClipRejected(f"The clip is longer than {max_seconds:g} s; use at most {max_seconds:g} s.",
                               "too_long") from None
        if error.reason == "bad_file" and not _looks_like_libsndfile_format(data):
            return Clip(path, size, checked=False)   # M4A, WebM...: the client decodes (or refuses) it
        raise ClipRejected(f"The clip was refused: {error}", "bad_file") from None
    seconds = len(samples) / rate
    if seconds < min_seconds:
        raise ClipRejected(f"The clip is {seconds:.2f} s long; speak for at least {min_seconds:g} s.", "too_short")
    return Clip(path, size, checked=True)


# The magic numbers of the containers libsndfile reads: a file that starts like one of these and
# still fails is broken, not merely in a format left to the client.
_SNDFILE_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"FORM", b".snd", b"ID3")


def _looks_like_libsndfile_format(data: bytes) -> bool:
    return data.startswith(_SNDFILE_MAGIC)

"""What libsndfile does not read, decoded here with PyAV (FFmpeg in its wheel): M4A/AAC from phones,
MP3, WebM/Opus from browsers, AIFF, the audio track of a video (mp4, mov, mkv, webm), ...

The result is what the contract's AUDIO input takes: mono float32 at the file's native rate, every
channel mixed down (engine/contract/audio_rules.py's `to_mono_float32`, as for any array), decoded
frame by frame. A container that declares a duration beyond the limit is refused before anything
is decoded; one that declares none (a browser's MediaRecorder WebM) is refused as soon as the
decoded samples pass the limit, so no file makes the client hold more than the limit's samples.

Errors are `InvalidInput`s naming the file once, with FFmpeg's own words.
"""

from __future__ import annotations

import dataclasses
import io
import os

import numpy as np

from speech2face.engine import contract
from speech2face.engine.client.errors import InvalidInput
from speech2face.engine.contract import audio_rules

# A container's declared duration may exceed its samples' by encoder priming and padding (an AAC
# track of exactly 600 s declares ~600.06 s); beyond this, it is refused before decoding. The
# decoded samples are then held to the exact limit.
DURATION_SLACK_S = 1.0


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    """What FFmpeg reads in a file's header, without decoding: its audio track's codec, rate, channels
    and the duration the container declares (None: it does not say)."""

    container: str
    codec: str
    rate: int
    channels: int
    seconds: float | None


def _ffmpeg_words(error: Exception) -> str:
    """FFmpeg's own message, without PyAV's errno and file name ("[Errno ...] ...: '<none>'")."""
    return getattr(error, "strerror", None) or str(error)


def _unreadable(name: str, ffmpeg_words: str, libsndfile_words: str | None = None) -> InvalidInput:
    other = f"libsndfile: {libsndfile_words}; " if libsndfile_words else ""
    return InvalidInput(f"{name}: not a readable audio file ({other}FFmpeg: {ffmpeg_words})")


def _open(source: str | os.PathLike | bytes, name: str, libsndfile_words: str | None = None):
    import av

    try:
        return av.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else os.fspath(source),
                       metadata_errors="ignore")
    except av.FFmpegError as error:
        raise _unreadable(name, _ffmpeg_words(error), libsndfile_words) from None


def _audio_track(container, name: str, max_seconds: float, libsndfile_words: str | None = None):
    """The container's audio stream (the first; a video's), its header checked: MediaInfo."""
    streams = list(container.streams)
    audio = [s for s in streams if s.type == "audio"]
    if not audio:
        kinds = ", ".join(sorted({s.type for s in streams})) or "no streams"
        raise InvalidInput(f"{name}: holds no audio track (FFmpeg reads it as {container.format.long_name}: {kinds})")
    stream = audio[0]
    context = stream.codec_context
    if context is None:   # a codec this FFmpeg build cannot decode
        raise _unreadable(name, f"no decoder for its audio track in {container.format.long_name}", libsndfile_words)
    rate = context.sample_rate or stream.rate or 0
    try:
        audio_rules.check_rate(rate)
    except audio_rules.AudioError as error:
        raise InvalidInput(f"{name}: {error}") from None
    if context.channels > audio_rules.MAX_CHANNELS:
        raise InvalidInput(f"{name}: {context.channels} channels; at most {audio_rules.MAX_CHANNELS} are accepted")
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        import av

        seconds = container.duration / av.time_base
    else:
        seconds = None
    if seconds is not None and seconds > max_seconds + DURATION_SLACK_S:
        raise InvalidInput(f"{name}: audio is {seconds:.7g} s long; the limit is {max_seconds:g} s "
                           "(as its header says; nothing was decoded)")
    info = MediaInfo(container.format.name, context.name, int(rate), int(context.channels), seconds)
    return stream, info


def probe(source: str | os.PathLike | bytes, name: str, *, max_seconds: float = audio_rules.MAX_SECONDS,
          libsndfile_words: str | None = None) -> MediaInfo:
    """The file's audio track as its header describes it, nothing decoded; InvalidInput when FFmpeg
    cannot open it (`libsndfile_words`: why libsndfile could not either, for the message), it holds
    no audio, or its header is beyond the contract's limits."""
    with _open(source, name, libsndfile_words) as container:
        return _audio_track(container, name, max_seconds, libsndfile_words)[1]


def decode(source: str | os.PathLike | bytes, name: str, *, max_seconds: float = audio_rules.MAX_SECONDS,
           max_request_bytes: int = contract.MAX_REQUEST_BYTES) -> tuple[np.ndarray, int]:
    """(mono float32 samples at the file's native rate, that rate) of its first audio track."""
    import av

    with _open(source, name) as container:
        stream, info = _audio_track(container, name, max_seconds)
        chunks: list[np.ndarray] = []
        total, rate, resampler, limit = 0, info.rate, None, 0
        try:
            for frame in container.decode(stream):
                if resampler is None:   # the first frame fixes the rate (an HE-AAC header may say half)
                    rate = audio_rules.check_rate(frame.sample_rate)
                    limit = min(int(max_seconds * rate), max_request_bytes // 4)
                    # float planar at that rate: a format conversion only, unless a later frame changes rate
                    resampler = av.AudioResampler(format="fltp", rate=rate)
                for out in resampler.resample(frame):
                    total += out.samples
                    if total > limit:
                        raise InvalidInput(_too_long(name, total, rate, max_seconds, max_request_bytes))
                    chunks.append(audio_rules.to_mono_float32(out.to_ndarray().T))
            for out in resampler.resample(None) if resampler is not None else ():
                chunks.append(audio_rules.to_mono_float32(out.to_ndarray().T))
        except av.FFmpegError as error:
            raise InvalidInput(f"{name}: not a readable audio file (FFmpeg, decoding its {info.codec} track: "
                               f"{_ffmpeg_words(error)})") from None
        except audio_rules.AudioError as error:
            raise InvalidInput(f"{name}: {error}") from None
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if samples.size == 0:
        raise InvalidInput(f"{name}: its {info.codec} track holds no audio samples")
    return samples, rate


def _too_long(name: str, total: int, rate: int, max_seconds: float, max_request_bytes: int) -> str:
    if total > int(max_seconds * rate):
        return f"{name}: audio is longer than the {max_seconds:g} s limit (decoding stopped at {total / rate:.7g} s)"
    return (f"{name}: decoded at {rate} Hz, its samples pass the request limit of "
            f"{max_request_bytes / 2**20:.0f} MiB as float32 (convert it to a lower rate before sending)")

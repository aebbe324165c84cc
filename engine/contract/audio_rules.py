"""Audio normalisation and its limits, defined once (NumPy only: the client side imports it too).

Every path that turns caller audio into the model's input goes through here: the served models
(`validate_audio`, through engine/runtime/request_batch.py), the in-process runtime, the file reader
(engine/contract/audio_files.py) and the client's own checks before sending. A refusal is an `AudioError`
whose message names the problem and whose `reason` is a short machine-readable word (the
refusal counters of the served models are labelled with it).

Served, with a warning (the client's `AudioWarning`; the server serves them silently):

- samples outside [-1, 1] (the contract's range) are served unchanged, not clipped, up to the
  refusal limit of ±MAX_ABS_SAMPLE: a clip at the wrong scale gives another face than the same clip
  scaled into range, so the caller is told rather than the samples changed behind its back;
- a clip shorter than SHORT_CLIP_SECONDS: the server repeats it to fill the model's clip (6 s by
  default), and a face from so little voice is unreliable.

`audio_warnings` words both, from a length and a peak. For a file sent whole the length is its
header's frame count, and the peak is read only where it stores floats (integer PCM cannot leave
[-1, 1]; a compressed file sent whole is not decoded by the client).
"""

from __future__ import annotations

import numpy as np

MAX_SECONDS = 600.0  # longer uploads are refused rather than silently cropped
MIN_RATE, MAX_RATE = 8000, 192000
MAX_CHANNELS = 16
# The contract is samples in [-1, 1]. Anything beyond the int32 full scale is not audio; refusing it
# keeps every feature kind's float32 arithmetic finite (a 25 ms Hann window at 2^31 gives STFT
# magnitudes ~4e11 and powers ~2e23, far below float32's 3.4e38; at 3e38 the STFT overflows to NaN).
MAX_ABS_SAMPLE = 2.0**31
INT_SCALES = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

# Clips shorter than this are served with an AudioWarning: the server repeats them to fill its clip.
SHORT_CLIP_SECONDS = 1.0

REASONS = ("bad_dtype", "bad_shape", "empty", "bad_rate", "too_long", "not_finite", "overflow", "bad_file", "bad_inputs")


class AudioError(ValueError):
    """Audio that cannot become features; the message names the problem, `reason` is one of REASONS."""

    def __init__(self, message: str, reason: str = "bad_shape"):
        super().__init__(message)
        self.reason = reason


class AudioWarning(UserWarning):
    """Audio that is served, but not as the contract expects it (see the module's docstring)."""


def audio_warnings(samples: int, rate: int, peak: float | None = None) -> list[str]:
    """What a served clip of `samples` at `rate` Hz with largest |sample| `peak` (None: unknown)
    deserves a warning about, in words; [] for a clip as the contract expects."""
    found = []
    if samples < SHORT_CLIP_SECONDS * rate:
        found.append(f"audio is {samples / rate:.3g} s long, shorter than {SHORT_CLIP_SECONDS:g} s: the server "
                     f"repeats it to fill the model's clip, and a face from so little voice is unreliable")
    if peak is not None and peak > 1.0:
        found.append(f"samples reach {peak:.3g}, outside [-1, 1]: served unchanged, not clipped "
                     f"(the face depends on the level: scale the audio into [-1, 1])")
    return found


def check_layout(audio: np.ndarray) -> None:
    """dtype (int16/int32/float32/float64), rank (1-D mono or 2-D (samples, channels)) and emptiness."""
    if audio.dtype not in INT_SCALES and audio.dtype not in _FLOATS:
        raise AudioError(f"audio dtype {audio.dtype} is not supported; send int16, int32, float32 or float64",
                         "bad_dtype")
    if audio.ndim == 2:
        if audio.shape[1] > MAX_CHANNELS:
            raise AudioError(f"2-D audio must be (samples, channels) with at most {MAX_CHANNELS} channels, "
                             f"got shape {audio.shape}", "bad_shape")
    elif audio.ndim != 1:
        raise AudioError(f"audio must be 1-D mono or 2-D (samples, channels), got shape {audio.shape}", "bad_shape")
    if audio.size == 0:
        raise AudioError("audio is empty", "empty")


def check_rate(sample_rate) -> int:
    """The rate as an int in MIN_RATE..MAX_RATE Hz, or AudioError("bad_rate")."""
    if isinstance(sample_rate, (bool, np.bool_)) or not isinstance(
            sample_rate, (int, np.integer, float, np.floating)):
        raise AudioError(f"sample rate {sample_rate!r} is not a number of Hz", "bad_rate")
    if not np.isfinite(sample_rate) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise AudioError(f"sample rate must be a positive whole number of Hz, got {sample_rate!r}", "bad_rate")
    rate = int(sample_rate)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"sample rate {rate} Hz is not supported; use {MIN_RATE}..{MAX_RATE} Hz", "bad_rate")
    return rate


def check_length(samples: int, rate: int, max_seconds: float = MAX_SECONDS) -> None:
    """Refuses more than `max_seconds` of audio, with exact sample counts (600 s + 1 sample is over)."""
    limit = int(max_seconds * rate)
    if samples > limit:
        raise AudioError(f"audio is {samples / rate:.7g} s long; the limit is {max_seconds:g} s ({limit} samples "
                         f"at {rate} Hz; this audio has {samples})", "too_long")


def check_values(audio: np.ndarray) -> None:
    """Float samples must be finite and within ±MAX_ABS_SAMPLE (integers always are)."""
    if audio.dtype in INT_SCALES:
        return
    with np.errstate(invalid="ignore"):
        peak = float(np.max(np.abs(audio)))
    if np.isfinite(peak) and peak <= MAX_ABS_SAMPLE:
        return
    flat = audio.reshape(audio.shape[0], -1)
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        raise AudioError(f"audio contains NaN or Inf samples (first at sample {int(np.flatnonzero(bad)[0])})",
                         "not_finite")
    first = int(np.flatnonzero((np.abs(flat) > MAX_ABS_SAMPLE).any(axis=1))[0])
    raise AudioError(f"audio sample {first} is too large ({float(np.abs(flat[first]).max()):.3g}): samples beyond "
                     f"±2^31 would overflow the float32 features (the contract is samples in [-1, 1])", "overflow")


def to_mono_float32(audio: np.ndarray) -> np.ndarray:
    """Checked (samples,) or (samples, channels) samples -> C-contiguous mono float32.

    Integers are scaled to [-1, 1) (int16 by 2^15, int32 by 2^31); channels are averaged.
    """
    if audio.dtype in INT_SCALES:
        audio = audio.astype(np.float32) * np.float32(1.0 / INT_SCALES[audio.dtype])
    else:
        audio = audio.astype(np.float32, copy=False)
    if audio.ndim == 2:
        audio = audio.mean(axis=1, dtype=np.float32) if audio.shape[1] > 1 else audio[:, 0]
    return np.ascontiguousarray(audio, dtype=np.float32)


def normalize_audio(audio, sample_rate, max_seconds: float = MAX_SECONDS) -> tuple[np.ndarray, int]:
    """(mono float32 samples, int rate) at the caller's rate, or AudioError naming the problem.

    Accepts int16, int32, float32 and float64 samples, 1-D mono or 2-D (samples, channels)
    (at most MAX_CHANNELS), at MIN_RATE..MAX_RATE Hz, at most `max_seconds` long. Refuses empty
    audio, NaN/Inf, and samples beyond ±MAX_ABS_SAMPLE.
    """
    audio = np.asarray(audio)
    check_layout(audio)
    rate = check_rate(sample_rate)
    check_length(audio.shape[0], rate, max_seconds)
    check_values(audio)
    return to_mono_float32(audio), rate


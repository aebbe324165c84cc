"""The FeatureSpec's resamplers behind one call: `resample(audio, rate_in, rate_out, resampler)`.

- ``soxr_hq``: python-soxr's HQ preset, what ``librosa.load`` uses by default, so a model trained
  on librosa-loaded audio sees the same samples when served.
- ``kernel``: the C++ polyphase resampler (csrc/spectrogram.cpp), soxr HQ's band edges with a
  flatter passband; what models saved before the spec named its resampler were trained with.

Both return round(n * rate_out / rate_in) samples (soxr's rule, halves up) with output n at input
time n * rate_in / rate_out; only their filters differ (tests/unit/test_features_resample.py).
"""

from __future__ import annotations

import numpy as np

from speech2face.engine.contract.audio_rules import AudioError, normalize_audio
from speech2face.engine.contract.feature_spec import RESAMPLERS


def resample(audio: np.ndarray, rate_in: int, rate_out: int, resampler: str = "soxr_hq") -> np.ndarray:
    """Mono float32 audio at ``rate_out``, by the named resampler (float32 arithmetic)."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if resampler == "kernel":
        from speech2face.engine.features import _kernels

        return _kernels.resample(audio, int(rate_in), int(rate_out))
    if resampler == "soxr_hq":
        import soxr

        if audio.size == 0 or rate_in == rate_out:
            return audio.copy()
        return np.ascontiguousarray(soxr.resample(audio, int(rate_in), int(rate_out), quality="HQ"))
    raise ValueError(f"unknown resampler {resampler!r}; expected one of {RESAMPLERS}")


# How far past a sample the resamplers' filters reach is a few milliseconds (soxr HQ, and the C++
# kernel's polyphase and halfband stages); decoding this much more than the clip keeps leaves
# every kept sample as a decode of the whole file gives it (tests/unit/test_bounded_decode.py).
RESAMPLER_REACH_S = 0.25


def decoded_seconds(spec) -> float | None:
    """How much of a file serving decodes for `spec`: the clip it keeps (the first clip_seconds)
    and the resampler's reach; None (everything) when the spec trims silence first, since the kept
    part may then start anywhere."""
    return None if spec.trim_silence else spec.clip_seconds + RESAMPLER_REACH_S


def validate_audio(audio, sample_rate, spec) -> np.ndarray:
    """Mono float32 audio at the spec's rate (resampled by `spec.resampler`), or AudioError."""
    audio, rate = normalize_audio(audio, sample_rate)
    if rate != spec.sample_rate:
        samples = audio.size
        audio = resample(audio, rate, spec.sample_rate, spec.resampler)
        if audio.size == 0:  # round(n * 16000 / rate) is 0 for a lone sample at >= 32 kHz
            raise AudioError(f"audio of {samples} samples at {rate} Hz is shorter than one sample at "
                             f"{spec.sample_rate} Hz", "empty")
    return audio

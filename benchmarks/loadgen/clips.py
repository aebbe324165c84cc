"""The clips every engine is measured on: deterministic, voice-like, and the same for all."""

from __future__ import annotations

import io

import numpy as np

RATE = 16000


def make_clips(count: int = 8, seconds: float = 6.0, rate: int = RATE, seed: int = 0) -> list[tuple[np.ndarray, int]]:
    """Deterministic voice-like clips: harmonic stacks with vibrato, different pitch, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    clips = []
    for k in range(count):
        f0 = 90 + 160 * k / max(1, count - 1) + 15 * np.sin(2 * np.pi * (2 + k % 3) * t)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        voice = sum(np.sin(h * phase) / h for h in range(1, 10)) * 0.15
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t + k)
        audio = voice * envelope + 0.01 * rng.standard_normal(t.size)
        clips.append((audio.astype(np.float32), rate))
    return clips


def flac_file(audio: np.ndarray, rate: int) -> tuple[bytes, np.ndarray]:
    """(16-bit FLAC bytes of the clip, the samples a decoder gets back from them)."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, audio, rate, format="FLAC", subtype="PCM_16")
    data = buffer.getvalue()
    decoded, _ = soundfile.read(io.BytesIO(data), dtype="float32")
    return data, decoded

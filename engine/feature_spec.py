"""FeatureSpec: the one definition of the voice encoder's input, saved in every checkpoint."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

FEATURE_KINDS = ("complex_powerlaw",)


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """How audio becomes the voice encoder's input tensor.

    The defaults are the paper's: 16 kHz mono, 6 s (shorter clips repeated, longer cropped),
    STFT framed like ``tf.signal.stft`` (no centring, 25 ms periodic Hann, 10 ms hop, 512-point
    FFT), real and imaginary parts each mapped to sign(x)|x|^0.3: 598 x 257 x 2.
    """

    sample_rate: int = 16000
    clip_seconds: float = 6.0
    win_length: int = 400
    hop_length: int = 160
    n_fft: int = 512
    power: float = 0.3
    kind: str = "complex_powerlaw"

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"unknown feature kind {self.kind!r}; expected one of {FEATURE_KINDS}")
        if self.n_fft & (self.n_fft - 1) or self.n_fft < 4:
            raise ValueError(f"n_fft must be a power of two >= 4, got {self.n_fft}")
        if not 0 < self.win_length <= self.n_fft:
            raise ValueError(f"win_length must be in (0, n_fft], got {self.win_length}")
        if self.hop_length <= 0 or self.power <= 0 or self.sample_rate <= 0:
            raise ValueError("hop_length, power and sample_rate must be positive")
        if self.clip_samples < self.win_length:
            raise ValueError("clip_seconds is shorter than one analysis window")

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def n_frames(self) -> int:
        return 1 + (self.clip_samples - self.win_length) // self.hop_length

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one clip's features (time, frequency, channel)."""
        return (self.n_frames, self.n_bins, 2)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown FeatureSpec fields: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "FeatureSpec":
        return cls.from_dict(json.loads(text))

"""FeatureSpec: the one definition of the voice encoder's input, saved in every checkpoint."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

FEATURE_KINDS = ("complex_powerlaw", "magnitude_powerlaw", "logmel")
# soxr_hq: python-soxr's HQ preset, what librosa.load resamples with by default (new specs);
# kernel: the C++ polyphase resampler in csrc/ (what specs saved before this field meant).
RESAMPLERS = ("soxr_hq", "kernel")
LEGACY_RESAMPLER = "kernel"


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """How audio becomes the voice encoder's input tensor, always (time, frequency, channel).

    Common to every kind: 16 kHz mono, other rates brought there by ``resampler`` (see
    RESAMPLERS; both give soxr's output length, round(n * 16000 / rate), and timing); optional
    silence trimming (``trim_silence``, default
    off: frames of ``win_length`` samples every ``hop_length`` whose mean square is more than
    ``trim_top_db`` below the loudest frame are dropped from both ends); the clip policy
    (``clip_seconds``, 6 s: shorter clips are repeated, then everything is cropped); an STFT
    framed like ``tf.signal.stft`` (no centring, 25 ms periodic Hann zero-padded to the
    512-point FFT, 10 ms hop): 598 frames x 257 bins.

    ``kind``:

    - ``complex_powerlaw`` (the paper): real and imaginary parts each mapped to
      sign(x)|x|^power, power 0.3: shape (598, 257, 2), channel 0 real, 1 imaginary.
    - ``magnitude_powerlaw``: |X|^power: shape (598, 257, 1).
    - ``logmel``: log(M + log_floor) with M = mel filter bank @ |X|^2 (``n_mels`` = 80
      triangular filters between ``mel_fmin`` and ``mel_fmax`` (None: Nyquist) on the Slaney
      mel scale with Slaney area normalisation, i.e. librosa's and DALI's defaults), natural
      log, log_floor 1e-6: shape (598, 80, 1). ``power`` is not used.
    """

    sample_rate: int = 16000
    clip_seconds: float = 6.0
    win_length: int = 400
    hop_length: int = 160
    n_fft: int = 512
    power: float = 0.3
    kind: str = "complex_powerlaw"
    n_mels: int = 80
    mel_fmin: float = 0.0
    mel_fmax: float | None = None
    log_floor: float = 1e-6
    trim_silence: bool = False
    trim_top_db: float = 50.0
    resampler: str = "soxr_hq"

    def __post_init__(self) -> None:
        if self.resampler not in RESAMPLERS:
            raise ValueError(f"unknown resampler {self.resampler!r}; expected one of {RESAMPLERS}")
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"unknown feature kind {self.kind!r}; expected one of {FEATURE_KINDS}")
        if self.n_fft & (self.n_fft - 1) or self.n_fft < 16:
            raise ValueError(f"n_fft must be a power of two >= 16, got {self.n_fft}")
        if not 0 < self.win_length <= self.n_fft:
            raise ValueError(f"win_length must be in (0, n_fft], got {self.win_length}")
        if self.hop_length <= 0 or self.power <= 0 or self.sample_rate <= 0:
            raise ValueError("hop_length, power and sample_rate must be positive")
        if not self.clip_seconds > 0 or self.clip_samples < self.win_length:
            raise ValueError("clip_seconds is shorter than one analysis window")
        if self.n_mels <= 0 or self.log_floor <= 0 or self.trim_top_db <= 0:
            raise ValueError("n_mels, log_floor and trim_top_db must be positive")
        if not 0 <= self.mel_fmin < self.mel_fmax_hz <= self.sample_rate / 2:
            raise ValueError("need 0 <= mel_fmin < mel_fmax <= sample_rate / 2")

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
    def mel_fmax_hz(self) -> float:
        return self.sample_rate / 2 if self.mel_fmax is None else float(self.mel_fmax)

    @property
    def channels(self) -> int:
        return 2 if self.kind == "complex_powerlaw" else 1

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one clip's features (time, frequency, channel)."""
        freq = self.n_mels if self.kind == "logmel" else self.n_bins
        return (self.n_frames, freq, self.channels)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureSpec":
        """Older dicts without the newer fields get their defaults, except ``resampler``: a spec
        saved before it existed was computed with the C++ kernel, so it keeps meaning that."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown FeatureSpec fields: {sorted(unknown)}")
        return cls(**{"resampler": LEGACY_RESAMPLER, **data})

    @classmethod
    def from_json(cls, text: str) -> "FeatureSpec":
        return cls.from_dict(json.loads(text))

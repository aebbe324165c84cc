"""What one inference gives back, whoever ran it (a served model or the in-process runtime)."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class FaceResult:
    feature: np.ndarray      # (D,) float32, L2-normalised
    image: np.ndarray        # (H, W, 3) uint8
    latency_s: float         # client-measured, the successful attempt only
    attempts: int = 1        # 1 unless ServerUnavailable retries happened

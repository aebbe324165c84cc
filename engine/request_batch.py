"""Many Triton requests' audio as one batch of clips, with a refusal per bad request.

The Python models that take raw audio (`preprocess` in the ensemble layout, `speech2face` in
the fused layout) share this: each request is validated on its own, so one bad clip is refused
with a message naming the problem while the rest of the batch is served.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

from speech2face.engine.feature_spec import FeatureSpec
from speech2face.engine.features import AudioError, validate_audio


@dataclasses.dataclass
class ClipBatch:
    clips: list[np.ndarray]             # validated mono float32 clips at the spec's rate
    owners: np.ndarray                  # request index of each clip
    refusals: dict[int, str]            # request index -> why it was refused

    def requests_served(self) -> list[tuple[int, np.ndarray]]:
        """(request index, boolean mask over the clips) for every request that was not refused."""
        return [(int(i), self.owners == i) for i in np.unique(self.owners)]


def request_clips(audio: np.ndarray, rates: np.ndarray, spec: FeatureSpec) -> list[np.ndarray]:
    """One request's (batch, samples) AUDIO and (batch, 1) SAMPLE_RATE -> validated clips."""
    if audio.ndim != 2:
        raise AudioError(f"AUDIO must be (batch, samples), got shape {audio.shape}")
    if rates.shape != (audio.shape[0], 1):
        raise AudioError(f"SAMPLE_RATE must be (batch, 1), got shape {rates.shape}")
    return [validate_audio(row, int(rate), spec) for row, rate in zip(audio, rates[:, 0])]


def gather_clips(requests: Iterable[tuple[np.ndarray, np.ndarray]], spec: FeatureSpec) -> ClipBatch:
    clips: list[np.ndarray] = []
    owners: list[int] = []
    refusals: dict[int, str] = {}
    for i, (audio, rates) in enumerate(requests):
        try:
            accepted = request_clips(audio, rates, spec)
        except AudioError as error:
            refusals[i] = str(error)
            continue
        clips += accepted
        owners += [i] * len(accepted)
    return ClipBatch(clips, np.asarray(owners, dtype=np.int64), refusals)

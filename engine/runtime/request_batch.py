"""Many Triton requests' audio as one batch of clips, with a refusal per bad request.

The Python models that take raw audio (`preprocess` in the ensemble layout, `speech2face` in
the fused layout) share this: each request is validated on its own, so one bad clip is refused
with a message naming the problem while the rest of the batch is served.

A request carries either AUDIO (FP32 [batch, samples]) + SAMPLE_RATE (INT32 [batch, 1]), or
AUDIO_FILE (BYTES [batch, 1]: one whole WAV/FLAC/OGG file per batch item, decoded here).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from speech2face.engine import contract
from speech2face.engine.contract.audio_rules import AudioError
from speech2face.engine.features.resampling import decoded_seconds, validate_audio
from speech2face.engine.contract.audio_files import decode_audio
from speech2face.engine.contract.feature_spec import FeatureSpec


@dataclasses.dataclass
class ClipBatch:
    clips: list[np.ndarray]             # validated mono float32 clips at the spec's rate
    owners: np.ndarray                  # request index of each clip
    refusals: dict[int, AudioError]     # request index -> why it was refused

    def requests_served(self) -> list[tuple[int, np.ndarray]]:
        """(request index, boolean mask over the clips) for every request that was not refused."""
        return [(int(i), self.owners == i) for i in np.unique(self.owners)]


def sample_clips(audio: np.ndarray, rates: np.ndarray | None, spec: FeatureSpec) -> list[np.ndarray]:
    """One request's (batch, samples) AUDIO and (batch, 1) SAMPLE_RATE -> validated clips."""
    if rates is None:
        raise AudioError(f"{contract.AUDIO.name} needs {contract.SAMPLE_RATE.name} (INT32 [batch, 1])", "bad_inputs")
    if audio.ndim != 2:
        raise AudioError(f"{contract.AUDIO.name} must be (batch, samples), got shape {audio.shape}", "bad_shape")
    if rates.shape != (audio.shape[0], 1):
        raise AudioError(f"{contract.SAMPLE_RATE.name} must be (batch, 1) = ({audio.shape[0]}, 1) for this "
                         f"{contract.AUDIO.name}, got shape {rates.shape}", "bad_shape")
    return [validate_audio(row, int(rate), spec) for row, rate in zip(audio, rates[:, 0])]


def file_clips(files: np.ndarray, spec: FeatureSpec) -> list[np.ndarray]:
    """One request's (batch, 1) AUDIO_FILE -> validated clips (decoded, mixed down, resampled)."""
    if files.ndim != 2 or files.shape[1] != 1:
        raise AudioError(f"{contract.AUDIO_FILE.name} must be (batch, 1): one file per batch item, "
                         f"got shape {files.shape}", "bad_shape")
    clips = []
    for k, data in enumerate(files[:, 0]):
        try:
            samples, rate = decode_audio(bytes(data), keep_seconds=decoded_seconds(spec))
            clips.append(validate_audio(samples, rate, spec))
        except AudioError as error:
            prefix = f"{contract.AUDIO_FILE.name}[{k}]: " if len(files) > 1 else f"{contract.AUDIO_FILE.name}: "
            raise AudioError(prefix + str(error), error.reason) from None
    return clips


def request_clips(audio, rates, files, spec: FeatureSpec) -> list[np.ndarray]:
    """Validated clips of one request, whichever of the two input forms it uses."""
    if files is not None:
        if audio is not None or rates is not None:
            raise AudioError(f"send either {contract.AUDIO.name} + {contract.SAMPLE_RATE.name} or "
                             f"{contract.AUDIO_FILE.name}, not both", "bad_inputs")
        return file_clips(files, spec)
    if audio is None:
        raise AudioError(f"the request has no audio: send {contract.AUDIO.name} + {contract.SAMPLE_RATE.name}, "
                         f"or {contract.AUDIO_FILE.name}", "bad_inputs")
    return sample_clips(audio, rates, spec)


def gather_clips(requests, get_input: Callable, spec: FeatureSpec) -> ClipBatch:
    """`get_input(request, name)` -> a tensor with .as_numpy(), or None (pb_utils.get_input_tensor_by_name)."""
    def numpy_input(request, tensor):
        found = get_input(request, tensor.name)
        return None if found is None else found.as_numpy()

    clips: list[np.ndarray] = []
    owners: list[int] = []
    refusals: dict[int, AudioError] = {}
    for i, request in enumerate(requests):
        try:
            accepted = request_clips(numpy_input(request, contract.AUDIO), numpy_input(request, contract.SAMPLE_RATE),
                                     numpy_input(request, contract.AUDIO_FILE), spec)
        except AudioError as error:
            refusals[i] = error
            continue
        clips += accepted
        owners += [i] * len(accepted)
    return ClipBatch(clips, np.asarray(owners, dtype=np.int64), refusals)


def refusal_response_error(pb_utils, error: AudioError):
    """The Triton error for a refused request: INVALID_ARG, with the message naming the problem."""
    return pb_utils.TritonError(str(error), pb_utils.TritonError.INVALID_ARG)

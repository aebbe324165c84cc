"""The DALI implementation of the FeatureSpec (the GPU serving path; runs on CPU for tests).

DALI has no complex STFT (``fn.spectrogram`` gives |X| or |X|^2 only), so it covers the kinds
``magnitude_powerlaw`` and ``logmel``; ``complex_powerlaw`` needs the C++ kernels (or the
STFT inside the graph, export/frontend.py). Silence trimming is not implemented here either.

The pipeline mirrors features_reference: optional resampling (engine/dali_ops.resample:
an anti-aliasing low-pass, then ``fn.audio_resample``, DALI's own windowed sinc, so resampled
inputs agree only approximately), the repeat-then-crop clip
policy (a doubling ladder of ``cat`` + ``slice`` under DALI conditionals), a periodic Hann
STFT without centring, then |X|^power or log(mel + floor) with DALI's Slaney mel bank.
Output per sample: (frames, F, 1) float32, like the other implementations.

``write_model_dali`` serializes the pipeline to ``model.dali`` for Triton's DALI backend under
the serving contract (engine/contract/tensors.py, the only place the names are spelled): input
``contract.AUDIO`` (FP32, [-1]) and, when resampling, ``contract.SAMPLE_RATE`` (INT32, [1], cast
to float inside the pipeline for ``fn.audio_resample``); output ``contract.SPECTROGRAM_NAME``
(FP32, (frames, F, 1)); tests/unit/test_features_dali.py feeds the serialized file by those names.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from speech2face.engine import contract
from speech2face.engine.features import dali_ops
from speech2face.engine.contract.feature_spec import FeatureSpec

SUPPORTED_KINDS = ("magnitude_powerlaw", "logmel")
AUDIO_INPUT = contract.AUDIO.name
AUDIO_DTYPE = contract.AUDIO.dtype  # "float32"
RATE_INPUT = contract.SAMPLE_RATE.name
RATE_DTYPE = contract.SAMPLE_RATE.dtype  # "int32"
FEATURES_OUTPUT = contract.SPECTROGRAM_NAME

_DALI_TYPES = {"float32": "FLOAT", "int32": "INT32"}


def check_spec(spec: FeatureSpec) -> None:
    if spec.kind not in SUPPORTED_KINDS:
        raise ValueError(
            f"DALI cannot compute {spec.kind!r} features (no complex STFT); supported: {SUPPORTED_KINDS}"
        )
    if spec.trim_silence:
        raise ValueError("the DALI pipeline does not implement trim_silence")


def _hann(n: int) -> list[float]:
    return [float(0.5 - 0.5 * math.cos(2.0 * math.pi * i / n)) for i in range(n)]


def build_pipeline(
    spec: FeatureSpec,
    batch_size: int = 32,
    num_threads: int = 2,
    device: str = "cpu",
    device_id: int | None = None,
    resample: bool = False,
    seed: int = 0,
):
    """A DALI pipeline (not yet built) computing ``spec``'s features of the AUDIO input (16 kHz
    unless ``resample``, in which case the INT32 SAMPLE_RATE input gives each clip's rate),
    output named FEATURES_OUTPUT (contract.SPECTROGRAM_NAME)."""
    from nvidia.dali import fn, pipeline_def, types
    import nvidia.dali.math as dmath

    check_spec(spec)
    clip = spec.clip_samples

    @pipeline_def(
        batch_size=batch_size, num_threads=num_threads, device_id=device_id,
        enable_conditionals=True, seed=seed, prefetch_queue_depth=1,
    )
    def pipeline():
        audio = fn.external_source(name=AUDIO_INPUT, dtype=getattr(types, _DALI_TYPES[AUDIO_DTYPE]),
                                   ndim=1, device="cpu")
        if resample:
            rate = fn.external_source(name=RATE_INPUT, dtype=getattr(types, _DALI_TYPES[RATE_DTYPE]),
                                      ndim=1, device="cpu")
            rate = fn.reshape(fn.cast(rate, dtype=types.FLOAT), shape=[])  # INT32 Hz -> float
            audio = dali_ops.resample(audio, rate, float(spec.sample_rate), "cpu")
        x = dali_ops.clip_policy(audio, clip)
        if device == "gpu":  # the clip policy's predicates live on the CPU; the rest on the GPU
            x = x.gpu()
        power = 1 if spec.kind == "magnitude_powerlaw" else 2
        stft = fn.spectrogram(
            x, nfft=spec.n_fft, window_length=spec.win_length, window_step=spec.hop_length,
            window_fn=_hann(spec.win_length), power=power, center_windows=False, layout="tf",
        )
        if spec.kind == "magnitude_powerlaw":
            feats = dmath.pow(stft, float(spec.power))
        else:
            mel = fn.mel_filter_bank(
                stft, sample_rate=float(spec.sample_rate), nfilter=spec.n_mels,
                freq_low=float(spec.mel_fmin), freq_high=float(spec.mel_fmax_hz),
                normalize=True, mel_formula="slaney",
            )
            feats = dmath.log(mel + float(spec.log_floor))
        return fn.expand_dims(feats, axes=[2], new_axis_names="C", name=FEATURES_OUTPUT)

    return pipeline()


class DaliFeatures:
    """Runs a built CPU pipeline over lists of 16 kHz clips (tests, benchmarks, offline use)."""

    def __init__(self, spec: FeatureSpec, batch_size: int = 32, num_threads: int = 2):
        self.spec = spec
        self.batch_size = batch_size
        self.pipe = build_pipeline(spec, batch_size=batch_size, num_threads=num_threads)
        self.pipe.build()

    def __call__(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        out = []
        for start in range(0, len(clips), self.batch_size):
            chunk = [np.ascontiguousarray(c, dtype=np.float32) for c in clips[start:start + self.batch_size]]
            self.pipe.feed_input(AUDIO_INPUT, chunk)
            (result,) = self.pipe.run()
            out += [np.asarray(result[i]) for i in range(len(chunk))]
        return np.stack(out)


def dali_features(clips: Sequence[np.ndarray], spec: FeatureSpec, num_threads: int = 2) -> np.ndarray:
    """(batch, *spec.shape) features of 16 kHz clips through a one-off CPU pipeline."""
    return DaliFeatures(spec, batch_size=max(1, len(clips)), num_threads=num_threads)(clips)


def write_model_dali(spec: FeatureSpec, path: str | Path, max_batch_size: int = 32,
                     device: str = "gpu", resample: bool = True, num_threads: int = 4) -> Path:
    """Serializes the pipeline for Triton's DALI backend (``<model>/1/model.dali``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No device id (see dali_audio.write_clip_dali): serializing a GPU pipeline needs no CUDA.
    pipe = build_pipeline(spec, batch_size=max_batch_size, num_threads=num_threads, device=device,
                          resample=resample)
    pipe.serialize(filename=str(path))
    return path

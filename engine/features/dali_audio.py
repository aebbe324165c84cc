"""DALI audio stage of the gpu target: the FeatureSpec's 16 kHz clip, ready for the waveform engine.

Two serialized pipelines for Triton's DALI backend, both ending in the clip policy of
features_reference.apply_clip_policy (repeat, then crop to ``spec.clip_samples``) and output
``contract.CLIP_NAME`` (FP32, [clip_samples]):

- ``source="audio"``: inputs ``contract.AUDIO`` (FP32 mono samples) and ``contract.SAMPLE_RATE``
  (INT32 [1]); engine/dali_ops.resample (an anti-aliasing low-pass when decimating, then
  ``fn.audio_resample``) brings other rates to 16 kHz (the spec's own rate passes unchanged).
  With ``device="gpu"`` the samples go to the GPU first: filtering, resampling and the clip
  policy run there, only the per-clip filter taps and the shape predicates on the CPU.
- ``source="file"``: input ``contract.AUDIO_FILE``'s bytes as UINT8 [-1] (DALI has no string
  type, so Triton's BYTES cannot enter a DALI model; a client sends the encoded file's bytes),
  decoded at the file's own rate and downmixed to mono by ``fn.decoders.audio`` (on the CPU,
  through libsndfile), then resampled and clipped like the samples above.

The C++ path (engine/features.validate_audio) differs in the resampling filter only: the
tests measure that difference and docs/GPU.md states it. Validation (NaN/Inf, rate range,
length) is the cpu target's; DALI refuses such requests with its own error.
"""

from __future__ import annotations

from pathlib import Path

from speech2face.engine import contract
from speech2face.engine.features.dali_ops import clip_policy, resample
from speech2face.engine.contract.feature_spec import FeatureSpec

SOURCES = ("audio", "file")


def build_clip_pipeline(spec: FeatureSpec, source: str = "audio", batch_size: int = 32, num_threads: int = 2,
                        device: str = "cpu", device_id: int | None = None):
    """A (not yet built) DALI pipeline giving `spec`'s clip as contract.CLIP_NAME."""
    from nvidia.dali import fn, pipeline_def, types

    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    rate_out = float(spec.sample_rate)

    @pipeline_def(batch_size=batch_size, num_threads=num_threads, device_id=device_id,
                  enable_conditionals=True, prefetch_queue_depth=1)
    def pipeline():
        if source == "file":
            encoded = fn.external_source(name=contract.AUDIO_FILE.name, dtype=types.UINT8, ndim=1, device="cpu")
            audio, rate = fn.decoders.audio(encoded, downmix=True, dtype=types.FLOAT)  # its own rate
            rate = fn.reshape(rate, shape=[])
            audio = audio.gpu() if device == "gpu" else audio
            audio = resample(audio, rate, rate_out, device)
        else:
            audio = fn.external_source(name=contract.AUDIO.name, dtype=types.FLOAT, ndim=1, device="cpu")
            rate = fn.external_source(name=contract.SAMPLE_RATE.name, dtype=types.INT32, ndim=1, device="cpu")
            rate = fn.reshape(fn.cast(rate, dtype=types.FLOAT), shape=[])
            audio = audio.gpu() if device == "gpu" else audio
            audio = resample(audio, rate, rate_out, device)
        return fn.cast(clip_policy(audio, spec.clip_samples), dtype=types.FLOAT, name=contract.CLIP_NAME)

    return pipeline()


def write_clip_dali(spec: FeatureSpec, path: str | Path, source: str = "audio", max_batch_size: int = 32,
                    device: str = "gpu", num_threads: int = 4) -> Path:
    """Serializes the audio stage for Triton's DALI backend (``<model>/1/model.dali``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No device id: DALI creates no GPU pipeline without CUDA, and serializing needs none (the
    # DALI backend deserializes the pipeline for each model instance on the instance's GPU).
    pipe = build_clip_pipeline(spec, source, batch_size=max_batch_size, num_threads=num_threads, device=device)
    pipe.serialize(filename=str(path))
    return path


def load_clip_pipeline(path: str | Path, batch_size: int, num_threads: int = 1):
    """A serialized audio stage, built on DALI's CPU backend (what `s2f check` and the tests run).

    A pipeline serialized for the GPU keeps GPU operators, which need a device; such files are
    checked by re-building the same pipeline for the CPU (`build_clip_pipeline(device="cpu")`)."""
    from nvidia.dali import Pipeline

    pipe = Pipeline.deserialize(filename=str(path), batch_size=batch_size, num_threads=num_threads, device_id=None)
    pipe.build()
    return pipe

"""DALI's resampler (the gpu target's audio stage) against the C++ path's, on the bundled voice.

    .venv/bin/python benchmarks/studies/dali_resample_diff.py

For each input (the voice resampled to a rate with soxr, so band-limited to 8 kHz; and with
white noise added at the input rate, broadband like a real 44.1/48 kHz recording): the clip
difference relative to the serving path's clip (engine/features.validate_audio) overall and per
band (Welch spectra), and what it does to the face (built-in model through the waveform graph
vs the in-process runtime): feature cosine and largest image difference.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import scipy.signal
import soxr

from speech2face.engine.runtime import builtin
from speech2face.engine import contract
from speech2face.engine.contract.audio_files import read_audio
from speech2face.engine.features.dali_audio import build_clip_pipeline
from speech2face.engine.features.resampling import validate_audio
from speech2face.engine.features.reference import apply_clip_policy
from speech2face.engine.runtime.local_runtime import LocalRuntime
from speech2face.engine.runtime.onnx_runner import open_session
from speech2face.export.waveform_graph import waveform_graph

BANDS = ((0, 4000), (4000, 7000), (7000, 8000))


def dali_clip(spec, audio: np.ndarray, rate: int) -> np.ndarray:
    pipe = build_clip_pipeline(spec, "audio", batch_size=1, num_threads=1)
    pipe.build()
    pipe.feed_input(contract.AUDIO.name, [audio])
    pipe.feed_input(contract.SAMPLE_RATE.name, [np.array([rate], np.int32)])
    return np.asarray(pipe.run()[0][0])


def band_db(diff: np.ndarray, clip: np.ndarray) -> list[float]:
    f, p_diff = scipy.signal.welch(diff, 16000, nperseg=1024)
    _, p_clip = scipy.signal.welch(clip, 16000, nperseg=1024)
    return [10 * np.log10(p_diff[(f >= lo) & (f < hi)].sum() / p_clip[(f >= lo) & (f < hi)].sum()) for lo, hi in BANDS]


def main() -> None:
    bundle = builtin.default_bundle()
    spec = bundle.feature_spec
    path = Path(tempfile.mkdtemp()) / "waveform.onnx"
    onnx.save(waveform_graph(bundle), str(path))
    session, runtime = open_session(path, 1), LocalRuntime(bundle, 1)
    voice, rate16 = read_audio(builtin.SAMPLE_VOICE)
    print("input                 diff dB   0-4k dB  4-7k dB  7-8k dB   face cos   image levels")
    rng = np.random.default_rng(0)
    for rate, noise in ((8000, 0.0), (22050, 0.0), (44100, 0.0), (48000, 0.0), (44100, 0.01), (48000, 0.01)):
        audio = soxr.resample(voice, rate16, rate).astype(np.float32)
        audio += (noise * rng.standard_normal(audio.size)).astype(np.float32)  # broadband: content above 8 kHz
        cpp = apply_clip_policy(validate_audio(audio, rate, spec), spec.clip_samples)
        ours = dali_clip(spec, audio, rate)
        diff = ours - cpp
        total = 10 * np.log10((diff ** 2).mean() / (cpp ** 2).mean())
        feature, image = session.run(None, {contract.ONNX_CLIP_INPUT: ours[None]})
        want_feature, want_image = runtime.run([validate_audio(audio, rate, spec)])
        cosine = float((feature * want_feature).sum() / np.linalg.norm(feature) / np.linalg.norm(want_feature))
        levels = int(np.abs(image.astype(int) - want_image.astype(int)).max())
        bands = "".join(f"{b:9.1f}" for b in band_db(diff, cpp))
        label = f"{rate} Hz" + (f" + noise {noise}" if noise else "")
        print(f"{label:<22}{total:9.1f}{bands}   {cosine:.6f}   {levels}")


if __name__ == "__main__":
    main()

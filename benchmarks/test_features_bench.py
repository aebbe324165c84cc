"""Feature extraction and resampling benchmarks (pytest-benchmark).

    make bench-features   # pytest benchmarks/test_features_bench.py --benchmark-only ...

Groups: features-b1 (one 6 s 16 kHz clip), features-b32 (32 clips), resample-48k / resample-44k
(one 6 s clip to 16 kHz). Every feature benchmark computes the paper's feature (STFT framed
like tf.signal.stft, then sign(x)|x|^0.3 on re/im), except dali, which has no complex STFT and
computes |X| then |X|^0.3 (magnitude_powerlaw), its nearest equivalent. Thread counts: cpp 2
threads, torch 2 threads (set_num_threads), scipy workers=2, DALI num_threads=2, numpy and
librosa single-threaded (their defaults). The benchmark name ends with [IMPL].

The C++ kernel appears three times, so that the cost of output memory is visible:
- cpp: the serving/training path: the caller passes ``out=``, one preallocated output buffer
  reused across calls (what a Triton preprocess instance or a training loader can keep);
- cpp-alloc: no ``out=``: a fresh array per call. Large outputs come from the kernel's pool of
  recycled buffers, so when the previous result has been freed (as here) its memory is reused;
- cpp-newmem: ``out=np.empty(...)`` per call: never-touched memory every time (a caller that
  keeps every output alive), paying the page faults and kernel zeroing (39 MB at B=32).
"""

from __future__ import annotations

import numpy as np
import pytest

from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.engine.features.kernels import compute_features
from speech2face.engine.features.reference import periodic_hann

SPEC = FeatureSpec()
RATE = 16000
N_FFT, WIN, HOP, P = SPEC.n_fft, SPEC.win_length, SPEC.hop_length, SPEC.power


def _clips(batch):
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(SPEC.clip_samples)).astype(np.float32) for _ in range(batch)]


CLIPS = {1: _clips(1), 32: _clips(32)}
WINDOW512 = np.zeros(N_FFT, np.float32)
WINDOW512[:WIN] = periodic_hann(WIN)


def _powerlaw_np(spec):
    parts = np.stack([spec.real, spec.imag], axis=-1)
    return np.copysign(np.abs(parts) ** P, parts).astype(np.float32)


def _frames(clip):
    return np.lib.stride_tricks.sliding_window_view(clip, WIN)[::HOP][: SPEC.n_frames]


_out_buffers = {}


def impl_cpp(clips):
    n = len(clips)
    if n not in _out_buffers:
        _out_buffers[n] = np.empty((n, *SPEC.shape), np.float32)
    return compute_features(clips, SPEC, num_threads=2, out=_out_buffers[n])


def impl_cpp_alloc(clips):
    return compute_features(clips, SPEC, num_threads=2)


def impl_cpp_newmem(clips):
    return compute_features(clips, SPEC, num_threads=2, out=np.empty((len(clips), *SPEC.shape), np.float32))


def impl_numpy(clips):
    return np.stack([_powerlaw_np(np.fft.rfft(_frames(c) * WINDOW512[:WIN], n=N_FFT, axis=1)) for c in clips])


def impl_scipy(clips):
    import scipy.fft

    frames = np.stack([_frames(c) for c in clips]) * WINDOW512[:WIN]
    return _powerlaw_np(scipy.fft.rfft(frames, n=N_FFT, axis=-1, workers=2))


_torch_state = {}


def impl_torch(clips):
    import torch

    if not _torch_state:
        torch.set_num_threads(2)
        _torch_state["window"] = torch.from_numpy(WINDOW512)
    x = torch.from_numpy(np.stack(clips))
    # tf.signal.stft framing: window at the start of each 512-sample frame, so pad the end
    x = torch.nn.functional.pad(x, (0, N_FFT - WIN))
    s = torch.stft(x, N_FFT, HOP, window=_torch_state["window"], center=False, return_complex=True)
    s = torch.view_as_real(s.transpose(1, 2))[:, : SPEC.n_frames]
    return (torch.sign(s) * s.abs().pow(P)).numpy()


def impl_librosa(clips):
    import librosa

    out = []
    for c in clips:
        padded = np.concatenate([c, np.zeros(N_FFT - WIN, np.float32)])
        s = librosa.stft(padded, n_fft=N_FFT, hop_length=HOP, window=WINDOW512, center=False)
        out.append(_powerlaw_np(s.T[: SPEC.n_frames]))
    return np.stack(out)


_dali = {}


def impl_dali(clips):
    from speech2face.engine.features.dali_features import DaliFeatures

    key = len(clips)
    if key not in _dali:
        _dali[key] = DaliFeatures(FeatureSpec(kind="magnitude_powerlaw"), batch_size=key, num_threads=2)
    return _dali[key](clips)


IMPLS = {"cpp": impl_cpp, "cpp-alloc": impl_cpp_alloc, "cpp-newmem": impl_cpp_newmem, "numpy": impl_numpy, "scipy": impl_scipy, "torch": impl_torch,
         "librosa": impl_librosa, "dali": impl_dali}
OPTIONAL = {"torch": "torch", "librosa": "librosa", "dali": "nvidia.dali", "scipy": "scipy"}


def _run(benchmark, name, batch):
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name])
    fn = IMPLS[name]
    clips = CLIPS[batch]
    out = fn(clips)  # warm-up (plans, pipelines, thread pools)
    assert out.shape[0] == batch
    benchmark.extra_info["clips"] = batch
    benchmark.extra_info["clip_seconds"] = SPEC.clip_seconds
    if batch == 1:
        benchmark.pedantic(fn, args=(clips,), rounds=200, iterations=1, warmup_rounds=10)
    else:
        benchmark.pedantic(fn, args=(clips,), rounds=20, iterations=1, warmup_rounds=2)


@pytest.mark.benchmark(group="features-b1")
@pytest.mark.parametrize("impl", list(IMPLS))
def test_features_b1(benchmark, impl):
    _run(benchmark, impl, 1)


@pytest.mark.benchmark(group="features-b32")
@pytest.mark.parametrize("impl", list(IMPLS))
def test_features_b32(benchmark, impl):
    _run(benchmark, impl, 32)


# ---- resampling: one 6 s clip to 16 kHz ----

def _source(rate):
    rng = np.random.default_rng(1)
    return (0.1 * rng.standard_normal(int(6 * rate))).astype(np.float32)


def resample_cpp(x, rate):
    from speech2face.engine.features.resampling import resample

    return resample(x, rate, RATE, "kernel")


def resample_soxr(x, rate):
    import soxr

    return soxr.resample(x, rate, RATE, quality="HQ")


def resample_scipy(x, rate):
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, RATE)
    return resample_poly(x, RATE // g, rate // g)


RESAMPLERS = {"cpp": resample_cpp, "soxr": resample_soxr, "scipy": resample_scipy}


@pytest.mark.parametrize("impl", list(RESAMPLERS))
@pytest.mark.parametrize("rate", [48000, 44100])
def test_resample(benchmark, impl, rate):
    if impl != "cpp":
        pytest.importorskip({"soxr": "soxr", "scipy": "scipy"}[impl])
    benchmark.group = f"resample-{rate // 1000}k"
    x = _source(rate)
    fn = RESAMPLERS[impl]
    assert abs(fn(x, rate).size - 6 * RATE) <= 1
    benchmark.pedantic(fn, args=(x, rate), rounds=50, iterations=1, warmup_rounds=3)

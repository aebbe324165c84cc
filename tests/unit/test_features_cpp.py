"""The C++ kernels (every instruction-set variant) against the float64 NumPy reference.

Tolerances (float32 kernels vs float64 reference):
- complex_powerlaw / magnitude_powerlaw: after undoing the power law, max |S - S_ref| <=
  LINEAR_TOL * max |S_ref| (float32 FFT rounding); on the compressed output, max abs error
  <= COMPRESSED_TOL wherever |S_ref| >= 1e-3 (near 0 the slope of |x|^0.3 is unbounded).
- logmel: max abs error of log(mel + 1e-6) <= LOGMEL_TOL.
- The power law alone: relative error <= 1e-5 for |x| > 1e-3 against float64, exact 0 at 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from speech2face.engine.features import _kernels
from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.engine.features.kernels import _feature_params, compute_features
from speech2face.engine.contract.audio_rules import AudioError
from speech2face.engine.features.resampling import validate_audio
from speech2face.engine.features.reference import reference_features, stft_frames

from signals import SIGNALS, linear_error, make_signal, reference_resample

LINEAR_TOL = 2e-6
COMPRESSED_TOL = 2e-4
LOGMEL_TOL = 2e-3
ISAS = _kernels.available_isas()
LENGTHS = (1000, 40000, 96000, 150000)  # shorter than a window's hop multiple .. longer than 6 s


def _kernel(clips, spec, isa, threads=1):
    return _kernels.features_batch(clips, _feature_params(spec), num_threads=threads, isa=isa)


def check_parity(out: np.ndarray, audio: np.ndarray, spec: FeatureSpec) -> None:
    ref = reference_features(audio, spec)
    assert out.shape == ref.shape == spec.shape
    assert out.dtype == np.float32
    if spec.kind == "logmel":
        assert np.abs(out - ref).max() <= LOGMEL_TOL
        return
    stft = stft_frames(audio, spec)
    if spec.kind == "complex_powerlaw":
        linear = np.stack([stft.real, stft.imag], axis=-1)
    else:
        linear = np.abs(stft)[..., None]
    assert linear_error(out, linear, spec.power) <= LINEAR_TOL
    big = np.abs(linear) >= 1e-3
    assert np.abs(out - ref)[big].max(initial=0.0) <= COMPRESSED_TOL
    assert np.all(out[linear == 0] == 0)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("kind", ["complex_powerlaw", "magnitude_powerlaw", "logmel"])
def test_parity_all_signals_and_lengths(isa, kind):
    spec = FeatureSpec(kind=kind)
    clips = [make_signal(name, n, seed=i) for i, name in enumerate(SIGNALS) for n in LENGTHS[1::2]]
    clips += [make_signal("speech", n, seed=7) for n in (LENGTHS[0], LENGTHS[2])]
    out = _kernel(clips, spec, isa, threads=2)
    for i, clip in enumerate(clips):
        check_parity(out[i], clip, spec)


@pytest.mark.parametrize("kind", ["complex_powerlaw", "magnitude_powerlaw", "logmel"])
def test_trim_silence_and_other_clip_lengths(kind):
    for clip_seconds in (6.0, 2.5, 8.0):
        spec = FeatureSpec(kind=kind, trim_silence=True, clip_seconds=clip_seconds)
        clips = [make_signal("padded", n, seed=3) for n in (30000, 96000, 150000)] + [make_signal("silence", 5000)]
        out = compute_features(clips, spec)
        for i, clip in enumerate(clips):
            check_parity(out[i], clip, spec)


def test_trim_region_matches_reference():
    from speech2face.engine.features.reference import trim_region

    x = make_signal("padded", 50000, seed=5)
    assert _kernels.trim_region(x, 400, 160, 50.0) == trim_region(x, 400, 160, 50.0)
    begin, end = trim_region(x, 400, 160, 50.0)
    assert 12000 <= begin <= 12500 and 39500 <= end <= 40500
    assert _kernels.trim_region(np.zeros(1000, np.float32), 400, 160, 50.0) == (0, 1000)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_parity_after_resampling(rate):
    spec = FeatureSpec(resampler="kernel")  # the soxr_hq path: tests/unit/test_features_resample.py
    raw = make_signal("speech", int(rate * 3.2), rate=rate, seed=1)
    audio = validate_audio(raw, rate, spec)
    expected_16k = reference_resample(raw, rate, 16000)
    assert audio.shape == expected_16k.shape
    assert np.abs(audio - expected_16k).max() < 1e-5
    check_parity(compute_features([audio], spec)[0], expected_16k, spec)


def test_batch_threads_and_isas_agree():
    spec = FeatureSpec()
    clips = [make_signal("noise", 96000 + 37 * i, seed=i) for i in range(5)]
    base = compute_features(clips, spec, num_threads=1)
    assert np.array_equal(base, compute_features(clips, spec, num_threads=2))
    assert np.array_equal(base[3], compute_features([clips[3]], spec, num_threads=2)[0])
    for isa in ISAS:
        assert np.abs(_kernel(clips, spec, isa) - base).max() < 2e-3


def test_non_default_fft_sizes():
    for n_fft, win, hop in ((256, 200, 80), (1024, 1024, 256), (128, 100, 50)):
        for kind in ("complex_powerlaw", "magnitude_powerlaw"):
            spec = FeatureSpec(n_fft=n_fft, win_length=win, hop_length=hop, kind=kind, power=0.5)
            x = make_signal("speech", 20000, seed=2)
            check_parity(compute_features([x], spec)[0], x, spec)


@pytest.mark.parametrize("isa", ISAS)
def test_power_law_accuracy(isa):
    mags = np.geomspace(1e-3, 1e4, 400_001)
    x = np.concatenate([mags, -mags]).astype(np.float32)
    exact = np.sign(x.astype(np.float64)) * np.abs(x.astype(np.float64)) ** 0.3
    got = _kernels.signed_power(x, 0.3, isa=isa).astype(np.float64)
    assert np.abs(got / exact - 1).max() <= 1e-5
    specials = np.array([0.0, -0.0, 1e-40, 1e-30, 3e38], np.float32)
    got = _kernels.signed_power(specials, 0.3, isa=isa)
    assert got[0] == 0 and got[1] == 0 and got[2] == 0
    assert abs(got[3] / 1e-9 - 1) < 1e-5 and abs(got[4] / 3e38**0.3 - 1) < 1e-5


def test_kernel_rejects_bad_clips():
    with pytest.raises(ValueError, match="NaN or Inf"):
        compute_features([np.array([0.0, np.nan] * 500, np.float32)])
    with pytest.raises(ValueError, match="empty"):
        compute_features([np.zeros(0, np.float32)])
    with pytest.raises(ValueError, match="1-D"):
        compute_features([np.zeros((10, 2), np.float32)])


def test_feature_params_mirror_the_spec():
    for spec in (FeatureSpec(), FeatureSpec(kind="magnitude_powerlaw", power=0.5),
                 FeatureSpec(kind="logmel", trim_silence=True, clip_seconds=2.5, n_fft=1024)):
        params = _feature_params(spec)
        assert params is _feature_params(spec)  # built once per spec
        assert params.shape == spec.shape
        assert params.kind.name == spec.kind
        assert (params.clip_samples, params.win_length, params.hop_length, params.n_fft) == (
            spec.clip_samples, spec.win_length, spec.hop_length, spec.n_fft)
        assert np.float32(params.power) == np.float32(spec.power)
        assert params.trim == spec.trim_silence
        assert params.n_mels == (spec.n_mels if spec.kind == "logmel" else 0)
    with pytest.raises(AttributeError):
        _feature_params(FeatureSpec()).n_fft = 1024  # shared by every caller: immutable


def test_feature_params_are_validated_when_built():
    assert _kernels.FeatureParams().shape == FeatureSpec().shape  # the same defaults
    with pytest.raises(ValueError, match="mel_fb"):
        _kernels.FeatureParams(kind=_kernels.Kind.logmel)
    with pytest.raises(ValueError, match="mel_fb"):
        _kernels.FeatureParams(kind=_kernels.Kind.logmel, mel_fb=np.ones((80, 256), np.float32))
    with pytest.raises(ValueError, match="n_fft"):
        _kernels.FeatureParams(n_fft=500)
    with pytest.raises(ValueError, match="power"):
        _kernels.FeatureParams(power=0.0)


# ---- FeatureSpec -----------------------------------------------------------------------

def test_feature_spec_shapes_and_round_trip():
    assert FeatureSpec().shape == (598, 257, 2)
    assert FeatureSpec(kind="magnitude_powerlaw").shape == (598, 257, 1)
    assert FeatureSpec(kind="logmel").shape == (598, 80, 1)
    assert FeatureSpec(clip_seconds=3.0).shape == (298, 257, 2)
    spec = FeatureSpec(kind="logmel", trim_silence=True, mel_fmax=7600.0)
    assert FeatureSpec.from_json(spec.to_json()) == spec
    old = {"sample_rate": 16000, "clip_seconds": 6.0, "win_length": 400, "hop_length": 160,
           "n_fft": 512, "power": 0.3, "kind": "complex_powerlaw"}
    assert FeatureSpec.from_dict(old) == FeatureSpec(resampler="kernel")  # saved before the field
    for bad in ({"kind": "mfcc"}, {"n_fft": 500}, {"win_length": 600}, {"clip_seconds": 0.01},
                {"mel_fmax": 9000.0}, {"n_mels": 0}):
        with pytest.raises(ValueError):
            FeatureSpec(**bad)
    with pytest.raises(ValueError, match="unknown FeatureSpec fields"):
        FeatureSpec.from_dict({"hop": 1})


def test_mel_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    from speech2face.engine.features.reference import mel_filterbank

    spec = FeatureSpec(kind="logmel", mel_fmin=20.0, mel_fmax=7600.0)
    expected = librosa.filters.mel(sr=16000, n_fft=512, n_mels=80, fmin=20.0, fmax=7600.0)
    assert np.abs(mel_filterbank(spec) - expected).max() < 1e-6


# ---- validate_audio --------------------------------------------------------------------

SPEC = FeatureSpec()


def test_validate_accepts_dtypes_channels_and_rates():
    x = make_signal("speech", 16000)
    assert validate_audio(x, 16000, SPEC).dtype == np.float32
    np.testing.assert_allclose(validate_audio(x.astype(np.float64), 16000, SPEC), x)
    as_int16 = np.round(x * 32767).astype(np.int16)
    np.testing.assert_allclose(validate_audio(as_int16, 16000, SPEC), as_int16 / 32768.0, atol=1e-7)
    as_int32 = (x.astype(np.float64) * 2**31 * 0.99).astype(np.int32)
    np.testing.assert_allclose(validate_audio(as_int32, 16000, SPEC), x * 0.99, atol=1e-6)
    stereo = np.stack([x, 0.5 * x], axis=1)
    np.testing.assert_allclose(validate_audio(stereo, 16000, SPEC), 0.75 * x, atol=1e-7)
    assert validate_audio(x[:, None], 16000, SPEC).shape == x.shape
    for rate in (8000, 11025, 44100, 48000, 96000, 192000):
        out = validate_audio(np.zeros(rate // 10, np.float32), rate, SPEC)
        expected = int(np.floor(rate // 10 * 16000 / rate + 0.5))  # soxr's length rule (11025 Hz: 1599)
        assert out.shape == (expected,) and out.dtype == np.float32


@pytest.mark.parametrize(
    "audio, rate, message",
    [
        (np.zeros(0, np.float32), 16000, "empty"),
        (np.zeros((0, 2), np.float32), 16000, "empty"),
        (np.array([0.0, np.nan], np.float32), 16000, "NaN or Inf"),
        (np.array([0.0, np.inf]), 16000, "NaN or Inf"),
        (np.array([1e39, 0.0]), 16000, "too large"),
        (np.zeros((2, 3, 4), np.float32), 16000, "1-D mono or 2-D"),
        (np.zeros((2, 400), np.float32), 16000, "samples, channels"),
        (np.zeros(100, np.uint8), 16000, "dtype"),
        (np.zeros(100, np.complex64), 16000, "dtype"),
        (np.zeros(100, np.float32), 0, "positive"),
        (np.zeros(100, np.float32), -16000, "positive"),
        (np.zeros(100, np.float32), 16000.5, "whole number"),
        (np.zeros(100, np.float32), 4000, "not supported"),
        (np.zeros(100, np.float32), 10_000_000, "not supported"),
        (np.zeros(100, np.float32), "fast", "not a number"),
        (np.zeros(601 * 8000, np.int16), 8000, "limit is 600 s"),
    ],
)
def test_validate_rejects(audio, rate, message):
    with pytest.raises(AudioError, match=message):
        validate_audio(audio, rate, SPEC)


def test_out_buffer_is_written_in_place_and_reused():
    spec = FeatureSpec()
    clips = [make_signal("speech", 96000, seed=i) for i in range(3)]
    expected = compute_features(clips, spec)
    buf = np.full((3, *spec.shape), np.nan, np.float32)
    for _ in range(2):  # reuse: every element is overwritten each time
        got = compute_features(clips, spec, out=buf)
        assert got is buf
        assert np.array_equal(buf, expected)
    # streaming (non-temporal) stores and plain stores give the same bits, with any alignment
    raw = np.empty(buf.size + 1, np.float32)
    shifted = raw[1:].reshape(buf.shape)  # 4-byte, not 64-byte, aligned
    for stream in (True, False):
        shifted[...] = np.nan
        _kernels.features_batch(clips, _feature_params(spec), num_threads=2, out=shifted, stream=stream)
        assert np.array_equal(shifted, expected)


def test_out_buffer_is_checked():
    spec = FeatureSpec()
    clips = [make_signal("noise", 20000)]
    with pytest.raises(ValueError, match="shape"):
        compute_features(clips, spec, out=np.empty((2, *spec.shape), np.float32))
    with pytest.raises(ValueError, match="float32"):
        compute_features(clips, spec, out=np.empty((1, *spec.shape), np.float64))
    with pytest.raises(ValueError, match="contiguous"):
        compute_features(clips, spec, out=np.empty((1, *spec.shape[:-1], 4), np.float32)[..., :2])
    ro = np.empty((1, *spec.shape), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        compute_features(clips, spec, out=ro)


def test_fresh_outputs_are_independent():
    """Fresh (pooled) outputs never share memory with one another while alive."""
    spec = FeatureSpec()
    a_clips = [make_signal("noise", 96000, seed=i) for i in range(4)]  # 4.9 MB: pooled
    b_clips = [make_signal("tones", 96000, seed=i) for i in range(4)]
    a = compute_features(a_clips, spec)
    a_copy = a.copy()
    b = compute_features(b_clips, spec)
    assert not np.shares_memory(a, b)
    assert np.array_equal(a, a_copy)
    del a
    c = compute_features(a_clips, spec)  # may reuse a's memory
    assert np.array_equal(c, a_copy) and not np.shares_memory(b, c)

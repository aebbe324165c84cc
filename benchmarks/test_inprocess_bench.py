"""In-process engines on the same clips (pytest-benchmark): `pytest benchmarks --benchmark-only`.

Groups: e2e-b1 (one 6 s 16 kHz clip: validation, C++ features, voice encoder, face decoder) and
e2e-b8 (eight clips in one call). Implementations, named in brackets: ort (LocalRuntime, ONNX
Runtime with 2 intra-op threads) and torch (PyTorch eager on the bundle's checkpoint, 2 threads).
The served paths are measured under load by `s2f bench` (speech2face.benchmarks.loadgen). That torch and ort
give the same answers is tested in tests/served/test_loadgen.py; here only their speed is measured.
"""

from __future__ import annotations

import pytest

from speech2face.benchmarks.loadgen.clips import make_clips

CLIPS = make_clips(8, seconds=6.0)


@pytest.fixture(scope="module")
def bundle():
    from speech2face.engine.runtime.builtin import default_bundle

    return default_bundle()


@pytest.fixture(scope="module")
def ort_runtime(bundle):
    from speech2face.engine.runtime.local_runtime import LocalRuntime

    return LocalRuntime(bundle, intra_op_threads=2)


@pytest.fixture(scope="module")
def torch_run(bundle):
    pytest.importorskip("torch")
    from speech2face.benchmarks.loadgen.targets import torch_function

    run, _source = torch_function(bundle, threads=2)
    return run


@pytest.mark.benchmark(group="e2e-b1")
def test_e2e_b1_ort(benchmark, ort_runtime):
    audio, rate = CLIPS[0]
    result = benchmark(ort_runtime.infer, audio, rate)
    assert result.feature.shape[0] > 0


@pytest.mark.benchmark(group="e2e-b1")
def test_e2e_b1_torch(benchmark, torch_run, ort_runtime):
    audio, rate = CLIPS[0]
    feature = benchmark(torch_run, audio, rate)
    assert feature.shape == ort_runtime.infer(audio, rate).feature.shape


@pytest.mark.benchmark(group="e2e-b8")
def test_e2e_b8_ort(benchmark, ort_runtime):
    results = benchmark(ort_runtime.infer_batch, CLIPS)
    assert len(results) == 8


@pytest.mark.benchmark(group="e2e-b8")
def test_e2e_b8_torch(benchmark, bundle, torch_run, ort_runtime):
    import torch
    import torch.nn.functional as F

    from speech2face.engine.features.kernels import compute_features
    from speech2face.engine.features.resampling import validate_audio
    from speech2face.training.checkpoint import load_checkpoint

    torch_run(*CLIPS[0])   # sets the thread count; the batch path reuses the same checkpoint
    checkpoint_path = bundle.directory / "checkpoint.pt"
    if not checkpoint_path.exists():
        pytest.skip("the bundle carries no checkpoint.pt")
    checkpoint = load_checkpoint(checkpoint_path)
    spec = bundle.feature_spec

    def run():
        features = compute_features([validate_audio(a, r, spec) for a, r in CLIPS], spec, 2)
        with torch.inference_mode():
            raw = checkpoint.voice_encoder(torch.from_numpy(features))
            checkpoint.face_decoder(raw)
            return F.normalize(raw, dim=1).numpy()

    features = benchmark(run)
    assert features.shape == (len(CLIPS), bundle.feature_dim)

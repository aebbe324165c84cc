"""GPU benchmark of the waveform engine on the `paper` preset: TensorRT FP16/FP32, ONNX Runtime CUDA,
PyTorch CUDA graphs, at batch 1/8/32 (clips/s in each result's extra_info).

    make test-gpu          # or: python -m pytest benchmarks/test_gpu_bench.py -m gpu --benchmark-only

One graph for every runtime: export/frontend.WaveformToFace (conv-STFT front end + voice encoder
+ face decoder) with the paper presets' random weights (seed 0), from the 6 s clip to the face.
Inputs and outputs stay in device memory (PyTorch tensors) for every runtime, so the numbers are
the engines', not PCIe's. Each runtime skips with its reason where it is missing. Parity is
asserted (cosine of the face feature against PyTorch FP32, TF32 off): FP32 >= 0.99999,
FP16 >= 0.999; speed is reported, never asserted (the goal, TensorRT FP16 >= 3x ONNX Runtime
CUDA clips/s at batch 32, is read from the report).
"""

from __future__ import annotations

import functools
import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to PyTorch")]

BATCHES = (1, 8, 32)


def _ort_cuda() -> bool:
    if importlib.util.find_spec("onnxruntime") is None:
        return False
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


# Decided before any fixture runs: a missing runtime must not cost the paper model's ONNX export.
needs_ort_cuda = pytest.mark.skipif(not _ort_cuda(), reason="ONNX Runtime has no CUDAExecutionProvider here")
needs_tensorrt = pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None,
                                    reason="TensorRT's Python bindings are not importable")
MIN_COSINE = {"fp32": 0.99999, "fp16": 0.999}


@functools.lru_cache(maxsize=1)
def paper_graph():
    from speech2face.engine.contract.feature_spec import FeatureSpec
    from speech2face.export.frontend import WaveformToFace
    from speech2face.training.networks import face_decoder
    from speech2face.training.networks import voice_encoder

    torch.manual_seed(0)
    spec = FeatureSpec()
    model = WaveformToFace(spec, voice_encoder.VoiceEncoder(voice_encoder.PRESETS["paper"]),
                           face_decoder.FaceDecoder(face_decoder.PRESETS["paper"])).eval()
    return spec, model


def clips(batch: int) -> "torch.Tensor":
    spec, _ = paper_graph()
    rng = np.random.default_rng(batch)
    return torch.from_numpy((0.1 * rng.standard_normal((batch, spec.clip_samples))).astype(np.float32)).cuda()


@functools.lru_cache(maxsize=4)
def reference(batch: int) -> "torch.Tensor":
    _, model = paper_graph()
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.no_grad():
            return model.cuda()(clips(batch))[1]
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def check_and_report(benchmark, run, batch: int, precision: str) -> None:
    feature = run()
    cosine = torch.nn.functional.cosine_similarity(feature.float(), reference(batch), dim=1).min().item()
    assert cosine >= MIN_COSINE[precision], cosine
    benchmark.pedantic(lambda: (run(), torch.cuda.synchronize()), rounds=20, warmup_rounds=3)
    benchmark.extra_info.update(batch=batch, precision=precision, min_cosine=cosine,
                                clips_per_s=batch / benchmark.stats.stats.median)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_pytorch_cuda_graphs(benchmark, batch, precision):
    import copy

    _, model = paper_graph()
    model = copy.deepcopy(model).cuda()
    x = clips(batch)
    if precision == "fp16":
        model, x = model.half(), x.half()
    with torch.no_grad():
        for _ in range(3):
            model(x)  # warm up (cuDNN picks its algorithms) outside the capture
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = model(x)[1]
    check_and_report(benchmark, lambda: (graph.replay(), out)[1], batch, precision)


@functools.lru_cache(maxsize=1)
def paper_onnx(tmp_dir: str) -> str:
    spec, model = paper_graph()
    path = f"{tmp_dir}/paper_waveform.onnx"
    torch.onnx.export(model.cpu(), (torch.zeros(2, spec.clip_samples),), path, dynamo=False, opset_version=18,
                      input_names=["clip"], output_names=["feature", "feature_normalized", "image", "landmarks"],
                      dynamic_axes={n: {0: "batch"} for n in ("clip", "feature", "feature_normalized", "image",
                                                              "landmarks")})
    return path


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    return paper_onnx(str(tmp_path_factory.mktemp("gpu-bench")))


@needs_ort_cuda
@pytest.mark.parametrize("batch", BATCHES)
def test_onnxruntime_cuda(benchmark, onnx_path, batch):
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_path, providers=["CUDAExecutionProvider"])
    x = clips(batch)
    out = torch.empty(batch, paper_graph()[1].encoder.config.feature_dim, device="cuda")
    binding = session.io_binding()
    binding.bind_input("clip", "cuda", 0, np.float32, list(x.shape), x.data_ptr())
    binding.bind_output("feature_normalized", "cuda", 0, np.float32, list(out.shape), out.data_ptr())
    for name in ("feature", "image", "landmarks"):
        binding.bind_output(name, "cuda", 0)
    check_and_report(benchmark, lambda: (session.run_with_iobinding(binding), out)[1], batch, "fp32")


@needs_tensorrt
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt(benchmark, onnx_path, batch, precision):
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    explicit = int(trt.__version__.split(".")[0]) < 10  # explicit batch is the only mode from 10 on
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) if explicit else 0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(onnx_path), [str(parser.get_error(i)) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    config.clear_flag(trt.BuilderFlag.TF32)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        named = [i for i in range(network.num_layers) if "front_end" in network.get_layer(i).name]
        for i in range(named[0], named[-1] + 1):  # the STFT front end stays FP32 (docs/GPU.md)
            network.get_layer(i).precision = trt.float32
    profile = builder.create_optimization_profile()
    samples = paper_graph()[0].clip_samples
    profile.set_shape("clip", (batch, samples), (batch, samples), (batch, samples))
    config.add_optimization_profile(profile)
    engine = trt.Runtime(logger).deserialize_cuda_engine(builder.build_serialized_network(network, config))
    context = engine.create_execution_context()
    x = clips(batch)
    context.set_input_shape("clip", tuple(x.shape))
    buffers = {"clip": x}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if name != "clip":
            dtype = {trt.float32: torch.float32, trt.uint8: torch.uint8}[engine.get_tensor_dtype(name)]
            buffers[name] = torch.empty(tuple(context.get_tensor_shape(name)), dtype=dtype, device="cuda")
        context.set_tensor_address(name, buffers[name].data_ptr())
    stream = torch.cuda.current_stream().cuda_stream
    check_and_report(benchmark, lambda: (context.execute_async_v3(stream), buffers["feature_normalized"])[1],
                     batch, precision)

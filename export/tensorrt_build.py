"""ONNX -> TensorRT plan, on the host that will serve it (plans are specific to GPU and TensorRT).

`tensorrt` is imported lazily: this module imports (and its contract checks run) on any machine;
building needs TensorRT's Python bindings and a CUDA GPU, e.g. inside the NGC TensorRT container
of the same release as the Triton container that serves the plan (same TensorRT version).

    python -m speech2face.export.tensorrt_build --config REPO/voice_encoder/config.pbtxt \\
        --onnx REPO/voice_encoder/1/model.onnx --onnx-fp16 REPO/voice_encoder/1/model_fp16.onnx \\
        --plan REPO/voice_encoder/1/model.plan --min-batch 1 --opt-batch 8 --max-batch 32 \\
        --precision fp16 --timing-cache REPO/speech2face/trt_timing.cache --skip-if-current

The expected tensors come from the model's generated `config.pbtxt` (itself generated from
engine/contract/tensors.py), so the plan is checked against exactly what Triton will ask of it. Every plan
is written atomically with a JSON build record beside it (`model.plan.json`).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from speech2face.engine.contract.tensors import Tensor
from speech2face.engine.contract.fileio import atomic_write_bytes, sha256_file

PRECISIONS = ("fp32", "fp16")


class ContractError(ValueError):
    """A model file's tensors differ from the serving contract."""


class BuildError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class ShapeProfile:
    """The batch sizes one TensorRT optimization profile covers (non-batch dims are fixed)."""

    min_batch: int = 1
    opt_batch: int = 8
    max_batch: int = 32

    def __post_init__(self) -> None:
        for name in ("min_batch", "opt_batch", "max_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.min_batch <= self.opt_batch <= self.max_batch:
            raise ValueError(f"need min_batch <= opt_batch <= max_batch, got "
                             f"{self.min_batch}/{self.opt_batch}/{self.max_batch}")

    def shapes(self, dims: Sequence[int]) -> tuple[tuple[int, ...], ...]:
        """(min, opt, max) full shapes of an input whose per-request shape is `dims`."""
        if any(d < 1 for d in dims):
            raise ValueError(f"non-batch dims must be static for a plan, got {tuple(dims)}")
        return tuple((batch, *dims) for batch in (self.min_batch, self.opt_batch, self.max_batch))


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    precision: str = "fp16"                  # "fp32" (TF32 off) or "fp16"
    strongly_typed: bool | None = None       # None: weak typing + FP16 flag where TensorRT has it
    workspace_bytes: int = 2 << 30
    optimization_level: int | None = None    # builder optimization level (TensorRT default: 3)
    timing_cache: Path | None = None
    fp32_layer_prefixes: tuple[str, ...] = ()  # layers kept FP32 in an FP16-flag build

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")


# ---------------------------------------------------------------------------------------------
# The contract check (ONNX side; runs without TensorRT)

def _onnx_elem_type(tensor: Tensor) -> int:
    import onnx

    return onnx.helper.np_dtype_to_tensor_dtype(tensor.numpy_dtype)


def _value_info_shape(value_info) -> list[int | str]:
    dims = []
    for dim in value_info.type.tensor_type.shape.dim:
        dims.append(dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "?"))
    return dims


def _check_values(kind: str, found, expected: Sequence[Tensor]) -> None:
    import onnx

    names = [v.name for v in found]
    if names != [t.name for t in expected]:
        raise ContractError(f"{kind}s are {names}, the contract says {[t.name for t in expected]}")
    for value, tensor in zip(found, expected):
        elem = value.type.tensor_type.elem_type
        if elem != _onnx_elem_type(tensor):
            raise ContractError(f"{kind} {tensor.name!r} is {onnx.TensorProto.DataType.Name(elem)}, "
                                f"the contract says {tensor.dtype}")
        shape = _value_info_shape(value)
        if len(shape) != 1 + len(tensor.dims):
            raise ContractError(f"{kind} {tensor.name!r} has shape {shape}, the contract says "
                                f"[batch, {', '.join(map(str, tensor.dims))}]")
        if isinstance(shape[0], int) and shape[0] > 0:
            raise ContractError(f"{kind} {tensor.name!r} has a fixed batch axis ({shape[0]}); "
                                f"it must be dynamic")
        if list(shape[1:]) != list(tensor.dims):
            raise ContractError(f"{kind} {tensor.name!r} has per-request shape {shape[1:]}, "
                                f"the contract says {list(tensor.dims)}")


def check_onnx_contract(model, inputs: Sequence[Tensor], outputs: Sequence[Tensor]) -> None:
    """Raises ContractError unless the graph's inputs and outputs are exactly `inputs`/`outputs`
    (same order, names, dtypes; a dynamic batch axis, then the contract's static dims)."""
    import onnx

    if isinstance(model, (str, Path)):
        model = onnx.load(str(model), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    _check_values("input", [i for i in model.graph.input if i.name not in initializers], inputs)
    _check_values("output", list(model.graph.output), outputs)


def contract_from_config(config_path: str | Path) -> tuple[list[Tensor], list[Tensor], int]:
    """Inputs, outputs and max_batch_size of a generated Triton config.pbtxt."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as pb

    config = text_format.Parse(Path(config_path).read_text(), pb.ModelConfig())
    dtypes = {"TYPE_FP32": "float32", "TYPE_INT32": "int32", "TYPE_UINT8": "uint8"}

    def tensors(items) -> list[Tensor]:
        return [Tensor(t.name, dtypes[pb.DataType.Name(t.data_type)], tuple(t.dims)) for t in items]

    return tensors(config.input), tensors(config.output), config.max_batch_size


# ---------------------------------------------------------------------------------------------
# The machine

@dataclasses.dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: tuple[int, int]

    @property
    def sm(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"


def cuda_device(index: int = 0) -> GpuInfo | None:
    """The CUDA device through the driver API (honours CUDA_VISIBLE_DEVICES); None without one."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    count, device = ctypes.c_int(0), ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value <= index:
        return None
    if cuda.cuDeviceGet(ctypes.byref(device), index) != 0:
        return None
    name = ctypes.create_string_buffer(256)
    major, minor = ctypes.c_int(0), ctypes.c_int(0)
    cuda.cuDeviceGetName(name, 256, device)
    cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, device)  # COMPUTE_CAPABILITY_MAJOR
    cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, device)  # COMPUTE_CAPABILITY_MINOR
    return GpuInfo(name.value.decode(errors="replace"), (major.value, minor.value))


def tensorrt_available() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def can_build_plans() -> bool:
    """True where this process can build plans: TensorRT importable and a CUDA GPU present."""
    return tensorrt_available() and cuda_device() is not None


# ---------------------------------------------------------------------------------------------
# The build

def _write_atomic(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)


def record_path(plan_path: str | Path) -> Path:
    plan_path = Path(plan_path)
    return plan_path.with_name(plan_path.name + ".json")


def _trt_dtype_name(trt, dtype) -> str:
    return np.dtype(trt.nptype(dtype)).name


def _check_network(trt, network, inputs: Sequence[Tensor], outputs: Sequence[Tensor]) -> None:
    """The parsed network must expose the contract (names, dtypes, ranks) too."""
    found_in = [network.get_input(i) for i in range(network.num_inputs)]
    found_out = [network.get_output(i) for i in range(network.num_outputs)]
    for kind, found, expected in (("input", found_in, inputs), ("output", found_out, outputs)):
        if [t.name for t in found] != [t.name for t in expected]:
            raise ContractError(f"TensorRT network {kind}s are {[t.name for t in found]}, "
                                f"the contract says {[t.name for t in expected]}")
        for tensor, want in zip(found, expected):
            dtype = _trt_dtype_name(trt, tensor.dtype)
            if dtype != want.dtype:
                raise ContractError(f"TensorRT network {kind} {want.name!r} is {dtype}, "
                                    f"the contract says {want.dtype}")
            if len(tensor.shape) != 1 + len(want.dims):
                raise ContractError(f"TensorRT network {kind} {want.name!r} has shape {tuple(tensor.shape)}")


def _is_current(plan_path: Path, expected: dict) -> bool:
    path = record_path(plan_path)
    if not (plan_path.exists() and path.exists()):
        return False
    try:
        record = json.loads(path.read_text())
    except ValueError:
        return False
    keys = ("onnx_sha256", "tensorrt_version", "compute_capability", "flags", "profile")
    return (all(record.get(k) == expected[k] for k in keys)
            and record.get("plan_sha256") == sha256_file(plan_path))


def _import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as error:
        raise BuildError("TensorRT's Python bindings are not importable here; run this inside the "
                         "NGC TensorRT container (or pip install tensorrt) on the serving GPU") from error
    return trt


def _resolve_precision(trt, options: BuildOptions, onnx_path: Path,
                       fp16_onnx_path: str | Path | None) -> tuple[Path, dict]:
    """Which ONNX to parse and the builder flags (see build_engine)."""
    has_fp16_flag = hasattr(trt.BuilderFlag, "FP16")
    strongly_typed = options.strongly_typed
    if strongly_typed is None:
        strongly_typed = options.precision == "fp16" and not has_fp16_flag
    source = onnx_path
    if options.precision == "fp16" and strongly_typed:
        if fp16_onnx_path is None:
            raise BuildError("a strongly typed fp16 build needs the fp16 ONNX (--onnx-fp16)")
        source = Path(fp16_onnx_path)
    elif options.precision == "fp16" and not has_fp16_flag:
        raise BuildError("this TensorRT has no FP16 builder flag; build strongly typed from the fp16 ONNX")
    fp16_flag = options.precision == "fp16" and not strongly_typed
    flags = {"precision": options.precision, "strongly_typed": bool(strongly_typed),
             "fp16_builder_flag": fp16_flag, "tf32": False, "workspace_bytes": options.workspace_bytes,
             "optimization_level": options.optimization_level,
             "fp32_layer_prefixes": list(options.fp32_layer_prefixes) if fp16_flag else []}
    return source, flags


def _parse_and_check(trt, logger, builder, source: Path, strongly_typed: bool,
                     inputs: Sequence[Tensor], outputs: Sequence[Tensor]):
    """(network, parser): the ONNX parsed into a network that exposes the contract."""
    creation = 0
    if int(trt.__version__.split(".")[0]) < 10:
        creation |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if strongly_typed:
        creation |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(creation)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(source)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BuildError(f"TensorRT could not parse {source}: {errors}")
    _check_network(trt, network, inputs, outputs)
    return network, parser


def _keep_fp32(trt, network, prefixes: Sequence[str]) -> int:
    """Pins the layers from the first to the last one named with one of `prefixes` (the waveform
    graph's STFT front end) to FP32 in an FP16-flag build; returns how many. The whole index range,
    not only the named layers: the parser adds helper layers (the shuffles around a 1-D
    convolution) under names of its own while it imports a node, and an FP16 shuffle of the
    waveform would round the audio before the FP32 convolution."""
    named = [i for i in range(network.num_layers)
             if any(network.get_layer(i).name.startswith(p) for p in prefixes)]
    if not named:
        return 0
    for i in range(named[0], named[-1] + 1):
        layer = network.get_layer(i)
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            if layer.get_output(j).dtype in (trt.float16, trt.float32):  # not shape tensors
                layer.set_output_type(j, trt.float32)
    return named[-1] + 1 - named[0]


def _configure(trt, builder, network, options: BuildOptions, flags: dict, profile: ShapeProfile,
               inputs: Sequence[Tensor]):
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_bytes)
    if options.optimization_level is not None:
        config.builder_optimization_level = options.optimization_level
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32; fp16 is asked for explicitly
    if flags["fp16_builder_flag"]:
        config.set_flag(trt.BuilderFlag.FP16)
        if _keep_fp32(trt, network, flags["fp32_layer_prefixes"]):
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    trt_profile = builder.create_optimization_profile()
    for tensor in inputs:
        trt_profile.set_shape(tensor.name, *profile.shapes(tensor.dims))
    config.add_optimization_profile(trt_profile)
    cache_path = Path(options.timing_cache) if options.timing_cache else None
    cache_bytes = cache_path.read_bytes() if cache_path and cache_path.exists() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False)
    return config


def _build_and_verify(trt, logger, builder, network, config, source: Path,
                      names: Sequence[str]) -> tuple[bytes, float]:
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildError(f"TensorRT failed to build {source} (see the log above)")
    plan = bytes(serialized)
    build_seconds = time.perf_counter() - start
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    if engine is None:
        raise BuildError("the built plan does not deserialize")
    found = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    if sorted(found) != sorted(names):
        raise ContractError(f"the plan's tensors are {found}")
    return plan, build_seconds


def _write_record(plan_path: Path, plan: bytes, expected: dict, source: Path, gpu: GpuInfo,
                  inputs: Sequence[Tensor], outputs: Sequence[Tensor], cache_path: Path | None,
                  build_seconds: float) -> dict:
    record = {
        **expected,
        "onnx": source.name,
        "plan": plan_path.name,
        "plan_sha256": hashlib.sha256(plan).hexdigest(),
        "plan_bytes": len(plan),
        "gpu": gpu.name,
        "inputs": [dataclasses.asdict(t) for t in inputs],
        "outputs": [dataclasses.asdict(t) for t in outputs],
        "timing_cache": str(cache_path) if cache_path else None,
        "build_seconds": round(build_seconds, 2),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _write_atomic(record_path(plan_path), (json.dumps(record, indent=2) + "\n").encode())
    return record


def build_engine(onnx_path: str | Path, plan_path: str | Path, inputs: Sequence[Tensor],
                 outputs: Sequence[Tensor], profile: ShapeProfile = ShapeProfile(),
                 options: BuildOptions = BuildOptions(), fp16_onnx_path: str | Path | None = None,
                 skip_if_current: bool = False, verbose: bool = False) -> dict:
    """Builds `plan_path` from the ONNX, checked against the contract; returns the build record.

    fp16: where TensorRT still has `BuilderFlag.FP16` (<= 10.x) and `strongly_typed` is not set,
    the fp32 ONNX is built with that flag (TensorRT picks per layer, except the layers named with
    `options.fp32_layer_prefixes`, pinned to FP32); otherwise (TensorRT 11 removed the flag, strong
    typing is the rule) the network is strongly typed and built from the fp16 ONNX
    (`fp16_onnx_path`, written by the gpu repository writer), whose types decide.
    """
    trt = _import_tensorrt()
    gpu = cuda_device()
    if gpu is None:
        raise BuildError("no CUDA device visible: TensorRT plans are built on the GPU that serves them")
    plan_path = Path(plan_path)
    source, flags = _resolve_precision(trt, options, Path(onnx_path), fp16_onnx_path)
    check_onnx_contract(source, inputs, outputs)
    expected = {"onnx_sha256": sha256_file(source), "tensorrt_version": trt.__version__,
                "compute_capability": gpu.sm, "flags": flags, "profile": dataclasses.asdict(profile)}
    if skip_if_current and _is_current(plan_path, expected):
        record = json.loads(record_path(plan_path).read_text())
        record["skipped"] = True
        return record
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse_and_check(trt, logger, builder, source, flags["strongly_typed"], inputs, outputs)
    config = _configure(trt, builder, network, options, flags, profile, inputs)
    names = [t.name for t in (*inputs, *outputs)]
    plan, build_seconds = _build_and_verify(trt, logger, builder, network, config, source, names)
    _write_atomic(plan_path, plan)
    cache_path = Path(options.timing_cache) if options.timing_cache else None
    if cache_path is not None:
        _write_atomic(cache_path, bytes(config.get_timing_cache().serialize()))
    return _write_record(plan_path, plan, expected, source, gpu, inputs, outputs, cache_path, build_seconds)


# ---------------------------------------------------------------------------------------------
# Running a plan (GPU tests and parity checks): CUDA driver API through ctypes, no extra package

class PlanRunner:
    """Runs a built plan on device 0 with host numpy arrays in and out (synchronous, simple)."""

    def __init__(self, plan_path: str | Path):
        import tensorrt as trt

        self._trt = trt
        self._cuda = ctypes.CDLL("libcuda.so.1")
        self._check(self._cuda.cuInit(0), "cuInit")
        device, self._ctx = ctypes.c_int(0), ctypes.c_void_p()
        self._check(self._cuda.cuDeviceGet(ctypes.byref(device), 0), "cuDeviceGet")
        self._check(self._cuda.cuDevicePrimaryCtxRetain(ctypes.byref(self._ctx), device), "retain context")
        self._device = device
        self._check(self._cuda.cuCtxSetCurrent(self._ctx), "cuCtxSetCurrent")
        self._logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(self._logger).deserialize_cuda_engine(Path(plan_path).read_bytes())
        if self.engine is None:
            raise BuildError(f"{plan_path} does not deserialize with TensorRT {trt.__version__}")
        self.context = self.engine.create_execution_context()
        self.names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]

    @staticmethod
    def _check(code: int, what: str) -> None:
        if code != 0:
            raise BuildError(f"CUDA driver call {what} failed with code {code}")

    def _alloc(self, nbytes: int) -> ctypes.c_uint64:
        ptr = ctypes.c_uint64(0)
        self._check(self._cuda.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(max(nbytes, 1))), "cuMemAlloc")
        return ptr

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        trt, cuda = self._trt, self._cuda
        self._check(cuda.cuCtxSetCurrent(self._ctx), "cuCtxSetCurrent")
        allocations = []
        try:
            for name, array in feeds.items():
                array = np.ascontiguousarray(array)
                self.context.set_input_shape(name, array.shape)
                ptr = self._alloc(array.nbytes)
                allocations.append(ptr)
                self._check(cuda.cuMemcpyHtoD_v2(ptr, array.ctypes.data_as(ctypes.c_void_p),
                                                 ctypes.c_size_t(array.nbytes)), "HtoD")
                self.context.set_tensor_address(name, ptr.value)
            results = {}
            for name in self.names:
                if self.engine.get_tensor_mode(name) != trt.TensorIOMode.OUTPUT:
                    continue
                shape = tuple(self.context.get_tensor_shape(name))
                out = np.empty(shape, dtype=trt.nptype(self.engine.get_tensor_dtype(name)))
                ptr = self._alloc(out.nbytes)
                allocations.append(ptr)
                self.context.set_tensor_address(name, ptr.value)
                results[name] = (out, ptr)
            if not self.context.execute_async_v3(0):
                raise BuildError("TensorRT execution failed")
            self._check(cuda.cuCtxSynchronize(), "cuCtxSynchronize")
            for out, ptr in results.values():
                self._check(cuda.cuMemcpyDtoH_v2(out.ctypes.data_as(ctypes.c_void_p), ptr,
                                                 ctypes.c_size_t(out.nbytes)), "DtoH")
            return {name: out for name, (out, _) in results.items()}
        finally:
            for ptr in allocations:
                cuda.cuMemFree_v2(ptr)


# ---------------------------------------------------------------------------------------------
# CLI

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m speech2face.export.tensorrt_build",
        description="Build a TensorRT plan from an ONNX file, checked against a generated Triton config.")
    parser.add_argument("--config", required=True, help="the model's config.pbtxt (the tensor contract)")
    parser.add_argument("--onnx", required=True, help="fp32 ONNX")
    parser.add_argument("--onnx-fp16", help="fp16 ONNX (used for strongly typed fp16 builds)")
    parser.add_argument("--plan", required=True, help="where to write the plan (atomically)")
    parser.add_argument("--min-batch", type=int, default=1)
    parser.add_argument("--opt-batch", type=int, default=8)
    parser.add_argument("--max-batch", type=int, help="default: the config's max_batch_size")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp16")
    parser.add_argument("--strongly-typed", action="store_true", default=None,
                        help="force a strongly typed network (fp16 from the fp16 ONNX)")
    parser.add_argument("--workspace-mib", type=int, default=2048)
    parser.add_argument("--optimization-level", type=int)
    parser.add_argument("--timing-cache", help="timing cache file, read and updated")
    parser.add_argument("--fp32-layer-prefix", action="append", default=[],
                        help="keep layers whose names start with this FP32 in an FP16-flag build (repeatable)")
    parser.add_argument("--skip-if-current", action="store_true",
                        help="keep an existing plan built from the same ONNX, TensorRT, GPU and flags")
    parser.add_argument("--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        inputs, outputs, max_batch_size = contract_from_config(args.config)
        max_batch = args.max_batch or max_batch_size
        if max_batch < max_batch_size:
            raise ValueError(f"--max-batch {max_batch} is below the config's max_batch_size {max_batch_size}")
        profile = ShapeProfile(args.min_batch, min(args.opt_batch, max_batch), max_batch)
        options = BuildOptions(precision=args.precision, strongly_typed=args.strongly_typed,
                               workspace_bytes=args.workspace_mib << 20,
                               optimization_level=args.optimization_level,
                               timing_cache=Path(args.timing_cache) if args.timing_cache else None,
                               fp32_layer_prefixes=tuple(args.fp32_layer_prefix))
        record = build_engine(args.onnx, args.plan, inputs, outputs, profile, options,
                              fp16_onnx_path=args.onnx_fp16, skip_if_current=args.skip_if_current,
                              verbose=args.verbose)
    except (ContractError, BuildError, ValueError, FileNotFoundError) as error:
        print(f"tensorrt_build: error: {error}", file=sys.stderr)
        return 2
    state = "up to date" if record.get("skipped") else f"built in {record['build_seconds']} s"
    print(f"{args.plan}: {state} (TensorRT {record['tensorrt_version']}, {record['gpu']}, "
          f"sm {record['compute_capability']}, {record['flags']['precision']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

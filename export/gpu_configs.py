"""Triton `config.pbtxt` messages for the gpu target (NGC Triton containers), built as protobufs.

Tensor names, dtypes and shapes come from engine/contract/tensors.py through model_configs (the same
helpers the cpu target uses); the ensemble is model_configs.ensemble_config itself, so clients
see one contract whichever target serves them. The knobs are documented in docs/GPU.md.
"""

from __future__ import annotations

import dataclasses

from tritonclient.grpc import model_config_pb2 as pb

from speech2face.engine import contract
from speech2face.engine.contract.tensors import Tensor
from speech2face.engine.repository import model_configs
from speech2face.engine.repository.model_configs import BatchingPolicy, ServingShapes

BACKENDS = ("tensorrt", "onnxruntime")
PREPROCESS_BACKENDS = ("auto", "python", "dali")


@dataclasses.dataclass(frozen=True)
class GpuPolicy:
    """How the gpu repository batches, places and optimises the models."""

    backend: str = "tensorrt"            # "tensorrt": tensorrt_plan; "onnxruntime": ORT + TensorRT EP
    precision: str = "fp16"              # "fp16" or "fp32" (plans and the ORT TensorRT EP)
    max_batch_size: int = 32             # also the TensorRT profile's max batch
    opt_batch_size: int = 8              # the TensorRT profile's optimum
    max_queue_delay_us: int = 1000       # dynamic batcher: longest wait to grow a batch
    encoder_instances: int = 2           # per GPU: overlap copies and compute of two batches
    decoder_instances: int = 1
    cuda_graphs: bool = True             # tensorrt_plan only
    warmup_count: int = 2                # runs per warmup batch size at load (0: none)
    preprocess: str = "auto"             # "auto": DALI where the FeatureSpec allows, else python
    features_in_graph: bool = True       # kinds the conv-STFT front end computes: DALI audio stage +
                                         # one waveform_to_face engine (no preprocess network split)
    preprocess_instances: int = 2        # python preprocess: CPU instances
    preprocess_threads: int = 4          # python preprocess: kernel threads per instance

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.precision not in ("fp16", "fp32"):
            raise ValueError(f"precision must be fp16 or fp32, got {self.precision!r}")
        if self.preprocess not in PREPROCESS_BACKENDS:
            raise ValueError(f"preprocess must be one of {PREPROCESS_BACKENDS}, got {self.preprocess!r}")
        if not 1 <= self.opt_batch_size <= self.max_batch_size:
            raise ValueError("need 1 <= opt_batch_size <= max_batch_size")
        if min(self.encoder_instances, self.decoder_instances, self.preprocess_instances) < 1:
            raise ValueError("instance counts must be >= 1")

    @property
    def cpu_policy(self) -> BatchingPolicy:
        """The same numbers in the cpu target's terms (python preprocess and the ensemble); no
        preferred batch size, so that the preprocess batches whatever queued for the GPU stages."""
        return BatchingPolicy(max_batch_size=self.max_batch_size, max_queue_delay_us=self.max_queue_delay_us,
                              preferred_batch_size=0, instances=self.preprocess_instances,
                              intra_op_threads=self.preprocess_threads)

    def graph_batch_sizes(self) -> list[int]:
        """CUDA graphs captured per instance: powers of two up to max_batch_size, and the max."""
        sizes, size = [], 1
        while size < self.max_batch_size:
            sizes.append(size)
            size *= 2
        return sizes + [self.max_batch_size]

    def warmup_batch_sizes(self) -> list[int]:
        return sorted({1, self.opt_batch_size, self.max_batch_size})


def _gpu_group(count: int) -> pb.ModelInstanceGroup:
    return pb.ModelInstanceGroup(kind=pb.ModelInstanceGroup.KIND_GPU, count=count)


def _warmup(inputs: list[Tensor], policy: GpuPolicy) -> list[pb.ModelWarmup]:
    if policy.warmup_count <= 0:
        return []
    warmups = []
    for batch in policy.warmup_batch_sizes():
        warmup = pb.ModelWarmup(name=f"random_batch_{batch}", batch_size=batch, count=policy.warmup_count)
        for tensor in inputs:
            warmup.inputs[tensor.name].CopyFrom(pb.ModelWarmup.Input(
                data_type=model_configs.tensor_input(tensor).data_type, dims=list(tensor.dims),
                random_data=True))
        warmups.append(warmup)
    return warmups


def _cuda_graphs(inputs: list[Tensor], policy: GpuPolicy) -> pb.ModelOptimizationPolicy:
    """One graph per batch size in graph_batch_sizes(); each also serves the smaller batches down to
    the previous size (graph_lower_bound), so every batch 1..max replays a captured graph."""
    Cuda = pb.ModelOptimizationPolicy.Cuda
    specs, lower = [], 1
    for batch in policy.graph_batch_sizes():
        spec = Cuda.GraphSpec(batch_size=batch)
        for tensor in inputs:
            spec.input[tensor.name].dim.extend(tensor.dims)
        if lower < batch:
            spec.graph_lower_bound.batch_size = lower
            for tensor in inputs:
                spec.graph_lower_bound.input[tensor.name].dim.extend(tensor.dims)
        specs.append(spec)
        lower = batch + 1
    return pb.ModelOptimizationPolicy(cuda=Cuda(graphs=True, graph_spec=specs))


def _ort_tensorrt_accelerator(policy: GpuPolicy) -> pb.ModelOptimizationPolicy:
    accelerator = pb.ModelOptimizationPolicy.ExecutionAccelerators.Accelerator(name="tensorrt")
    accelerator.parameters["precision_mode"] = policy.precision.upper()
    accelerator.parameters["max_workspace_size_bytes"] = str(2 << 30)
    return pb.ModelOptimizationPolicy(execution_accelerators=pb.ModelOptimizationPolicy.ExecutionAccelerators(
        gpu_execution_accelerator=[accelerator]))


def _network_model(name: str, io: tuple[list[Tensor], list[Tensor]], instances: int,
                   policy: GpuPolicy) -> pb.ModelConfig:
    inputs, outputs = io
    config = pb.ModelConfig(
        name=name, max_batch_size=policy.max_batch_size,
        input=[model_configs.tensor_input(t) for t in inputs],
        output=[model_configs.tensor_output(t) for t in outputs],
        dynamic_batching=pb.ModelDynamicBatching(max_queue_delay_microseconds=policy.max_queue_delay_us),
        instance_group=[_gpu_group(instances)],
        model_warmup=_warmup(inputs, policy),
    )
    if policy.backend == "tensorrt":
        config.platform = "tensorrt_plan"
        config.default_model_filename = contract.PLAN_FILE
        if policy.cuda_graphs:
            config.optimization.CopyFrom(_cuda_graphs(inputs, policy))
    else:
        config.platform = "onnxruntime_onnx"
        config.default_model_filename = contract.ONNX_FILE
        config.optimization.CopyFrom(_ort_tensorrt_accelerator(policy))
    return config


def voice_encoder_config(shapes: ServingShapes, policy: GpuPolicy) -> pb.ModelConfig:
    return _network_model(contract.VOICE_ENCODER, model_configs.voice_encoder_io(shapes),
                          policy.encoder_instances, policy)


def face_decoder_config(shapes: ServingShapes, policy: GpuPolicy) -> pb.ModelConfig:
    return _network_model(contract.FACE_DECODER, model_configs.face_decoder_io(shapes),
                          policy.decoder_instances, policy)


def python_preprocess_config(shapes: ServingShapes, policy: GpuPolicy) -> pb.ModelConfig:
    """The cpu target's preprocess (Python backend, C++ kernels, KIND_CPU) with gpu-target numbers."""
    return model_configs.preprocess_config(shapes, policy.cpu_policy)


def dali_preprocess_config(shapes: ServingShapes, policy: GpuPolicy) -> pb.ModelConfig:
    """preprocess on the DALI backend (`1/model.dali`); same inputs and output as the Python one."""
    config = pb.ModelConfig(
        name=contract.PREPROCESS, backend="dali", max_batch_size=policy.max_batch_size,
        input=[model_configs.tensor_input(contract.AUDIO, ragged=True),
               model_configs.tensor_input(contract.SAMPLE_RATE)],
        output=[model_configs.tensor_output(contract.spectrogram(shapes.feature_spec.shape))],
        dynamic_batching=pb.ModelDynamicBatching(max_queue_delay_microseconds=policy.max_queue_delay_us),
        instance_group=[_gpu_group(1)],
    )
    return config


def ensemble_config(shapes: ServingShapes, policy: GpuPolicy, audio_file: bool = True) -> pb.ModelConfig:
    """The cpu target's ensemble (same function), with the gpu target's max batch. Without
    `audio_file` (a DALI preprocess: DALI takes no BYTES) AUDIO_FILE is neither an input nor mapped."""
    config = model_configs.ensemble_config(shapes, policy.cpu_policy)
    if not audio_file:
        kept = [i for i in config.input if i.name != contract.AUDIO_FILE.name]
        del config.input[:]
        config.input.extend(kept)
        for step in config.ensemble_scheduling.step:
            step.input_map.pop(contract.AUDIO_FILE.name, None)
    return config


# ---------------------------------------------------------------------------------------------
# The waveform layout: DALI audio stage -> one engine from the 16 kHz clip to the face

def waveform_io(shapes: ServingShapes) -> tuple[list[Tensor], list[Tensor]]:
    """The waveform_to_face engine's tensors: the clip in, the ensemble's outputs out."""
    return ([contract.clip(shapes.feature_spec.clip_samples)],
            [contract.face_feature(shapes.feature_dim), contract.face_image(shapes.image_size)])


WAVEFORM_INPUTS = (contract.AUDIO, contract.SAMPLE_RATE)  # DALI takes no BYTES: no AUDIO_FILE here


def waveform_engine_config(shapes: ServingShapes, policy: GpuPolicy) -> pb.ModelConfig:
    return _network_model(contract.WAVEFORM_ENGINE, waveform_io(shapes), policy.encoder_instances, policy)


def dali_audio_config(shapes: ServingShapes, policy: GpuPolicy) -> pb.ModelConfig:
    """preprocess on the DALI backend: AUDIO + SAMPLE_RATE -> the 16 kHz CLIP (engine/features/dali_audio.py)."""
    return pb.ModelConfig(
        name=contract.PREPROCESS, backend="dali", max_batch_size=policy.max_batch_size,
        input=[model_configs.tensor_input(t, ragged=t is contract.AUDIO) for t in WAVEFORM_INPUTS],
        output=[model_configs.tensor_output(contract.clip(shapes.feature_spec.clip_samples))],
        dynamic_batching=pb.ModelDynamicBatching(max_queue_delay_microseconds=policy.max_queue_delay_us),
        instance_group=[_gpu_group(1)],
    )


def waveform_ensemble_config(shapes: ServingShapes, policy: GpuPolicy) -> pb.ModelConfig:
    """speech2face = preprocess (DALI) -> waveform_to_face (TensorRT): no Python, no host hop."""
    clip = contract.clip(shapes.feature_spec.clip_samples)
    _, outputs = waveform_io(shapes)
    Step = pb.ModelEnsembling.Step
    steps = [Step(model_name=contract.PREPROCESS, model_version=-1,
                  input_map={t.name: t.name for t in WAVEFORM_INPUTS}, output_map={clip.name: clip.name}),
             Step(model_name=contract.WAVEFORM_ENGINE, model_version=-1,
                  input_map={clip.name: clip.name}, output_map={t.name: t.name for t in outputs})]
    return pb.ModelConfig(
        name=contract.ENSEMBLE, platform="ensemble", max_batch_size=policy.max_batch_size,
        input=[model_configs.tensor_input(t) for t in WAVEFORM_INPUTS],
        output=[model_configs.tensor_output(t) for t in outputs],
        ensemble_scheduling=pb.ModelEnsembling(step=steps))

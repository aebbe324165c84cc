"""Triton `config.pbtxt` messages for the cpu target, built as protobufs from the contract."""

from __future__ import annotations

import dataclasses

from tritonclient.grpc import model_config_pb2 as pb

from speech2face.engine import contract
from speech2face.engine.contract import Tensor
from speech2face.engine.feature_spec import FeatureSpec


@dataclasses.dataclass(frozen=True)
class ServingShapes:
    """The model-dependent sizes of the contract, read from the checkpoint."""

    feature_spec: FeatureSpec
    feature_dim: int
    image_size: int


@dataclasses.dataclass(frozen=True)
class BatchingPolicy:
    max_batch_size: int = 32
    # On CPU an instance runs one batch at a time, so requests that arrive meanwhile queue and are
    # batched anyway; waiting for more only adds latency. Measured on 2 cores, fused layout, in one
    # interleaved run: c=1 p50 2.5 ms lower at 0 us than at 2000 us, the same req/s at c=8
    # (benchmarks/LOAD.md, "default queue delay"). `s2f tune` sweeps it per machine.
    max_queue_delay_us: int = 0
    # One instance of 2 threads: a lone request (c=1) gets both cores. 2 instances of 1 thread
    # serve c=8 best (93-97 req/s) but take 20-21 ms at c=1 against 13.4; 2 instances of 2
    # threads oversubscribe the cores (74-78 req/s at c=8). Measured with `s2f bench --targets
    # triton,triton-2x1,... --levels 1,8 --rounds 2` on 2 cores (benchmarks/LOAD.md).
    instances: int = 1
    intra_op_threads: int = 2
    # Fused layout only (engine/local_runtime.RuntimeOptions).
    # Spinning workers save ~0.7 ms at c=1 on an idle machine but cost a 33 ms p90 whenever
    # anything else needs a core (benchmarks/thread_placement.py): off.
    allow_spinning: bool = False
    # A batch of several clips (c >= 2) runs on 2 single-thread lanes side by side instead of one
    # 2-thread run that waits at every operator's barrier: 81-85 req/s at c=8 against 73-78,
    # with c=1 unchanged (a lone clip still gets both threads).
    concurrent_runs: int = 2
    # Pinning the caller and the worker to their own CPUs changed nothing at c=1 when idle, and
    # pinned spinning doubled latency (benchmarks/thread_placement.py): off.
    pin_threads: bool = False


def _dtype(tensor: Tensor) -> int:
    # The wire protocol says BYTES; config.pbtxt calls the same type TYPE_STRING.
    return pb.DataType.Value("TYPE_" + {"BYTES": "STRING"}.get(tensor.triton_dtype, tensor.triton_dtype))


def _input(tensor: Tensor, ragged: bool = False, optional: bool = False) -> pb.ModelInput:
    return pb.ModelInput(name=tensor.name, data_type=_dtype(tensor), dims=list(tensor.dims),
                         allow_ragged_batch=ragged, optional=optional)


AUDIO_INPUTS = (contract.AUDIO, contract.SAMPLE_RATE, contract.AUDIO_FILE)


def audio_inputs(ragged: bool = True) -> list[pb.ModelInput]:
    """The client contract's inputs: AUDIO + SAMPLE_RATE, or AUDIO_FILE (so each is optional).

    Raw audio has any length: ragged batching lets the batcher merge requests of different
    lengths into one execute() call, which computes all their features in one kernel call.
    """
    return [_input(t, ragged=ragged and t is contract.AUDIO, optional=True) for t in AUDIO_INPUTS]


def _output(tensor: Tensor) -> pb.ModelOutput:
    return pb.ModelOutput(name=tensor.name, data_type=_dtype(tensor), dims=list(tensor.dims))


# Public names for the helpers above (the gpu target's configs reuse them).
tensor_input = _input
tensor_output = _output


def voice_encoder_io(shapes: ServingShapes) -> tuple[list[Tensor], list[Tensor]]:
    """The voice_encoder model's inputs and outputs, for every target."""
    return ([contract.spectrogram(shapes.feature_spec.shape)],
            [contract.raw_feature(shapes.feature_dim), contract.face_feature(shapes.feature_dim)])


def face_decoder_io(shapes: ServingShapes) -> tuple[list[Tensor], list[Tensor]]:
    """The face_decoder model's inputs and outputs, for every target."""
    return [contract.raw_feature(shapes.feature_dim)], [contract.face_image(shapes.image_size)]


def _python_model(name: str, inputs: list[pb.ModelInput], outputs: list[Tensor],
                  policy: BatchingPolicy, parameters: dict[str, str]) -> pb.ModelConfig:
    config = pb.ModelConfig(
        name=name, backend="python", max_batch_size=policy.max_batch_size,
        input=inputs, output=[_output(t) for t in outputs],
        dynamic_batching=pb.ModelDynamicBatching(max_queue_delay_microseconds=policy.max_queue_delay_us),
        instance_group=[pb.ModelInstanceGroup(kind=pb.ModelInstanceGroup.KIND_CPU, count=policy.instances)],
    )
    for key, value in parameters.items():
        config.parameters[key].string_value = value
    return config


def preprocess_config(shapes: ServingShapes, policy: BatchingPolicy) -> pb.ModelConfig:
    return _python_model(
        contract.PREPROCESS, audio_inputs(), [contract.spectrogram(shapes.feature_spec.shape)], policy,
        {"feature_spec": shapes.feature_spec.to_json(), contract.THREADS_PARAMETER: str(policy.intra_op_threads)},
    )


def voice_encoder_config(shapes: ServingShapes, policy: BatchingPolicy) -> pb.ModelConfig:
    inputs, outputs = voice_encoder_io(shapes)
    return _python_model(contract.VOICE_ENCODER, [_input(t) for t in inputs], outputs, policy,
                         {contract.THREADS_PARAMETER: str(policy.intra_op_threads)})


def face_decoder_config(shapes: ServingShapes, policy: BatchingPolicy) -> pb.ModelConfig:
    inputs, outputs = face_decoder_io(shapes)
    return _python_model(contract.FACE_DECODER, [_input(t) for t in inputs], outputs, policy,
                         {contract.THREADS_PARAMETER: str(policy.intra_op_threads)})


def fused_config(shapes: ServingShapes, policy: BatchingPolicy) -> pb.ModelConfig:
    """The whole pipeline as one Python model named like the ensemble, with the ensemble's contract."""
    return _python_model(
        contract.ENSEMBLE, audio_inputs(),
        [contract.face_feature(shapes.feature_dim), contract.face_image(shapes.image_size)], policy,
        {contract.THREADS_PARAMETER: str(policy.intra_op_threads),
         contract.SPINNING_PARAMETER: str(int(policy.allow_spinning)),
         contract.CONCURRENT_RUNS_PARAMETER: str(policy.concurrent_runs),
         contract.PIN_THREADS_PARAMETER: str(int(policy.pin_threads))},
    )


def ensemble_config(shapes: ServingShapes, policy: BatchingPolicy) -> pb.ModelConfig:
    spectrogram = contract.spectrogram(shapes.feature_spec.shape)
    raw = contract.raw_feature(shapes.feature_dim)
    feature = contract.face_feature(shapes.feature_dim)
    image = contract.face_image(shapes.image_size)
    Step = pb.ModelEnsembling.Step

    def identity(*tensors: Tensor) -> dict[str, str]:
        return {t.name: t.name for t in tensors}

    steps = [
        Step(model_name=contract.PREPROCESS, model_version=-1,
             input_map=identity(*AUDIO_INPUTS), output_map=identity(spectrogram)),
        Step(model_name=contract.VOICE_ENCODER, model_version=-1,
             input_map=identity(spectrogram), output_map=identity(raw, feature)),
        Step(model_name=contract.FACE_DECODER, model_version=-1,
             input_map=identity(raw), output_map=identity(image)),
    ]
    return pb.ModelConfig(
        name=contract.ENSEMBLE, platform="ensemble", max_batch_size=policy.max_batch_size,
        input=audio_inputs(ragged=False),
        output=[_output(feature), _output(image)],
        ensemble_scheduling=pb.ModelEnsembling(step=steps),
    )

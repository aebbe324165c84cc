"""Triton `config.pbtxt` messages for the cpu target, built as protobufs from the contract."""

from __future__ import annotations

import dataclasses

from tritonclient.grpc import model_config_pb2 as pb

from speech2face.engine import contract
from speech2face.engine.contract.tensors import Tensor
from speech2face.engine.contract.feature_spec import FeatureSpec


@dataclasses.dataclass(frozen=True)
class ServingShapes:
    """The model-dependent sizes of the contract, read from the checkpoint."""

    feature_spec: FeatureSpec
    feature_dim: int
    image_size: int


@dataclasses.dataclass(frozen=True)
class BatchingPolicy:
    """How the cpu target batches and uses the cores. Each default was chosen by measurement on 2
    cores; the figures and the commands that reproduce them are in benchmarks/LOAD.md ("How the
    default was chosen", "Why c=1 latency was bimodal"), and `s2f tune` re-measures them per machine."""

    # Batching does not lower this model's cost per clip on CPU; 32 only bounds one execute()'s
    # memory (32 spectrograms of 1.2 MB). The gpu target sets its own.
    max_batch_size: int = 32
    # Waiting for a batch to grow only adds latency when batches do not lower the cost per clip.
    max_queue_delay_us: int = 0
    # The batch the dynamic batcher forms from queued requests (0: as many as are queued). One
    # keeps the queue first in, first out: an instance that took the whole queue made every request
    # in it wait for all of it. A client's own batch of N clips still runs as one execute().
    preferred_batch_size: int = 1
    # Two instances of 2 threads that adapt (below): a lone request gets both cores, a loaded
    # server one barrier-free run per core.
    instances: int = 2
    intra_op_threads: int = 2
    # Fused layout only (engine/runtime/local_runtime.RuntimeOptions). An instance runs
    # single-threaded while another instance computes, and on all its threads when alone
    # (engine/runtime/peer_activity.py).
    adaptive_threads: bool = True
    # Alone with a batch of several clips: 2 single-thread lanes side by side, not one 2-thread run.
    concurrent_runs: int = 2
    # Spinning workers save a little at c=1 on an idle machine but cost a long tail whenever
    # anything else needs a core: off.
    allow_spinning: bool = False
    # A lone request's 2-thread run keeps its caller and its worker on CPUs of their own, where the
    # server may use exactly 2 CPUs (a small VM, a pod with exclusive CPUs; elsewhere nothing is
    # pinned). On a host where other work sits on those two CPUs, turn it off (`s2f tune --pin 0,1`).
    pin_threads: bool = True

    def runtime_options(self):
        """The RuntimeOptions the fused model runs with under this policy (peers aside: each
        served instance adds its lock file)."""
        from speech2face.engine.runtime.local_runtime import RuntimeOptions

        return RuntimeOptions(threads=self.intra_op_threads, spinning=self.allow_spinning,
                              concurrent_runs=self.concurrent_runs, pin_threads=self.pin_threads)


def _dtype(tensor: Tensor) -> int:
    # The wire protocol says BYTES; config.pbtxt calls the same type TYPE_STRING.
    return pb.DataType.Value("TYPE_" + {"BYTES": "STRING"}.get(tensor.triton_dtype, tensor.triton_dtype))


def _input(tensor: Tensor, ragged: bool = False, optional: bool = False) -> pb.ModelInput:
    return pb.ModelInput(name=tensor.name, data_type=_dtype(tensor), dims=list(tensor.dims),
                         allow_ragged_batch=ragged, optional=optional)


AUDIO_INPUTS = contract.MODEL_INPUTS[contract.ENSEMBLE]


def audio_inputs(ragged: bool = True, model: str = contract.ENSEMBLE) -> list[pb.ModelInput]:
    """A served model's inputs: the either/or model's are optional (AUDIO + SAMPLE_RATE, or
    AUDIO_FILE); a per-form model's are required.

    Raw audio has any length: ragged batching lets the batcher merge requests of different
    lengths into one execute() call, which computes all their features in one kernel call.
    """
    optional = model == contract.ENSEMBLE
    return [_input(t, ragged=ragged and t is contract.AUDIO, optional=optional) for t in contract.MODEL_INPUTS[model]]


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
        dynamic_batching=pb.ModelDynamicBatching(
            max_queue_delay_microseconds=policy.max_queue_delay_us,
            preferred_batch_size=[policy.preferred_batch_size] if policy.preferred_batch_size else []),
        instance_group=[pb.ModelInstanceGroup(kind=pb.ModelInstanceGroup.KIND_CPU, count=policy.instances)],
    )
    for key, value in parameters.items():
        config.parameters[key].string_value = value
    return config


def preprocess_config(shapes: ServingShapes, policy: BatchingPolicy) -> pb.ModelConfig:
    return _python_model(
        contract.PREPROCESS, audio_inputs(), [contract.spectrogram(shapes.feature_spec.shape)], policy,
        {contract.FEATURE_SPEC_PARAMETER: shapes.feature_spec.to_json(),
         contract.THREADS_PARAMETER: str(policy.intra_op_threads)},
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
        {**policy.runtime_options().parameters(),
         contract.ADAPTIVE_THREADS_PARAMETER: str(int(policy.adaptive_threads))},
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


def form_config(model: str, shapes: ServingShapes, policy: BatchingPolicy) -> pb.ModelConfig:
    """A per-form model (contract.SAMPLES_MODEL or FILE_MODEL): an ensemble of one step that
    forwards its required inputs to the either/or `speech2face` model, whose batcher then merges
    requests of both forms."""
    inputs = contract.MODEL_INPUTS[model]
    outputs = (contract.face_feature(shapes.feature_dim), contract.face_image(shapes.image_size))
    step = pb.ModelEnsembling.Step(model_name=contract.ENSEMBLE, model_version=-1,
                                   input_map={t.name: t.name for t in inputs},
                                   output_map={t.name: t.name for t in outputs})
    return pb.ModelConfig(name=model, platform="ensemble", max_batch_size=policy.max_batch_size,
                          input=audio_inputs(ragged=False, model=model), output=[_output(t) for t in outputs],
                          ensemble_scheduling=pb.ModelEnsembling(step=[step]))

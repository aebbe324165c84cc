"""The serving contract: every tensor name, dtype and shape, defined once.

The repository writer (both targets), the Python models, the client and the tests read
these definitions; nothing else spells a tensor name.
"""

from __future__ import annotations

import dataclasses

ENSEMBLE = "speech2face"           # takes either input form (each input optional)
# One model per input form, every input required: what Triton's own tools (perf_analyzer, Model
# Analyzer) and a generic client built from metadata need. Each forwards to the same pipeline.
SAMPLES_MODEL = "speech2face_samples"
FILE_MODEL = "speech2face_file"
PREPROCESS = "preprocess"
VOICE_ENCODER = "voice_encoder"
FACE_DECODER = "face_decoder"


@dataclasses.dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str              # numpy dtype name
    dims: tuple[int, ...]   # per-request shape, without the batch axis; -1 = variable

    @property
    def triton_dtype(self) -> str:
        return {"float32": "FP32", "int32": "INT32", "uint8": "UINT8", "object": "BYTES"}[self.dtype]

    @property
    def numpy_dtype(self):
        import numpy as np   # here, so that reading the contract (the s2f parser) loads no NumPy

        return np.dtype(self.dtype)


# Ensemble inputs and outputs: what clients see.
# A request carries either AUDIO + SAMPLE_RATE, or AUDIO_FILE; all three are optional inputs.
AUDIO = Tensor("AUDIO", "float32", (-1,))              # mono samples in [-1, 1]
SAMPLE_RATE = Tensor("SAMPLE_RATE", "int32", (1,))
AUDIO_FILE = Tensor("AUDIO_FILE", "object", (1,))      # one whole WAV/FLAC/OGG file per batch item
AUDIO_FILE_FORMATS = ("WAV", "FLAC", "OGG")            # decoded on the server with libsndfile
# Each served model's inputs (the ensemble's are optional: a request fills one form).
MODEL_INPUTS = {ENSEMBLE: (AUDIO, SAMPLE_RATE, AUDIO_FILE), SAMPLES_MODEL: (AUDIO, SAMPLE_RATE),
                FILE_MODEL: (AUDIO_FILE,)}
# The largest request accepted, in bytes: the HTTP body or gRPC message of one request (10 minutes
# at 48 kHz is 115 MB of float32). The client refuses larger audio before sending; the deployment's
# proxy refuses larger bodies (tritonserver 2.51 itself has no body or message limit: docs/SECURITY.md).
MAX_REQUEST_BYTES = 128 * 1024 * 1024
# tritonserver 2.51 dies (SIGSEGV) on an HTTP request that uses the binary-data extension with a
# body of 4,184,768 bytes or more, whatever its tensors (docs/SECURITY.md, Triton defects). Over
# HTTP the client keeps binary requests below this, and the proxy refuses larger ones (413);
# gRPC and JSON bodies are not affected.
MAX_HTTP_BINARY_BODY_BYTES = 4_184_767


# Two answers for the same clip are "the same" when their L2-normalised features differ by at most
# this much in every component: served vs in-process, ONNX Runtime vs PyTorch, a batch vs one clip.
# The same graphs and kernels agree to ~1e-6; a wrong answer (another clip's) differs by ~1e-1.
FEATURE_ATOL = 1e-4


SPECTROGRAM_NAME = "SPECTROGRAM"
FEATURE_RAW_NAME = "FEATURE_RAW"
FACE_FEATURE_NAME = "FACE_FEATURE"
FACE_IMAGE_NAME = "FACE_IMAGE"


def spectrogram(shape: tuple[int, ...]) -> Tensor:
    return Tensor(SPECTROGRAM_NAME, "float32", tuple(shape))


# The gpu target for in-graph features: DALI's audio stage gives the 16 kHz clip (repeated,
# then cropped to the FeatureSpec's clip_samples) to one engine from waveform to face.
CLIP_NAME = "CLIP"
WAVEFORM_ENGINE = "waveform_to_face"


def clip(samples: int) -> Tensor:
    return Tensor(CLIP_NAME, "float32", (samples,))


def face_feature(dim: int) -> Tensor:
    """The L2-normalised face feature (cosine retrieval uses it as is)."""
    return Tensor(FACE_FEATURE_NAME, "float32", (dim,))


def raw_feature(dim: int) -> Tensor:
    """The unnormalised feature the face decoder consumes."""
    return Tensor(FEATURE_RAW_NAME, "float32", (dim,))


def face_image(size: int) -> Tensor:
    return Tensor(FACE_IMAGE_NAME, "uint8", (size, size, 3))


# The Python models' config parameters. Every model has THREADS_PARAMETER (ONNX Runtime and the
# feature kernel); the fused model's runtime options (engine/runtime/local_runtime.RuntimeOptions) map
# field -> parameter here, and nowhere else; preprocess reads its FeatureSpec from FEATURE_SPEC_PARAMETER.
THREADS_PARAMETER = "intra_op_threads"
RUNTIME_PARAMETERS = {"threads": THREADS_PARAMETER, "spinning": "allow_spinning",
                      "concurrent_runs": "concurrent_runs", "pin_threads": "pin_threads"}
ADAPTIVE_THREADS_PARAMETER = "adaptive_threads"
FEATURE_SPEC_PARAMETER = "feature_spec"
PEERS_LOCK_FILE = ".instances.lock"   # written at run time beside config.pbtxt (engine/runtime/peer_activity.py)


# The repository layout: <repository>/<model>/CONFIG_FILE and <repository>/<model>/1/<model file>.
CONFIG_FILE = "config.pbtxt"
PYTHON_MODEL_FILE = "model.py"      # python backend
ONNX_FILE = "model.onnx"            # onnxruntime_onnx, and the ONNX a Python model opens
PLAN_FILE = "model.plan"            # tensorrt_plan
ONNX_FP16_FILE = "model_fp16.onnx"  # gpu target: the fp16 twin of ONNX_FILE (strongly typed plan builds)
DALI_FILE = "model.dali"            # dali backend: a serialized pipeline
BUILD_PLANS_FILE = "build_plans.sh"       # gpu target: the plan build step, run on the serving host
TIMING_CACHE_FILE = "trt_timing.cache"    # gpu target: TensorRT's timing cache, beside the build record
BUILD_RECORD_FILE = "build_record.json"   # beside the speech2face model's config: how the repository was built


# Names inside the ONNX graphs (lower case: they belong to the model files, not to Triton).
ONNX_ENCODER_INPUT = "spectrogram"
ONNX_ENCODER_OUTPUTS = ("feature", "feature_normalized")
ONNX_DECODER_INPUT = "feature"
ONNX_DECODER_OUTPUTS = ("image", "landmarks")
ONNX_CLIP_INPUT = "clip"

"""What the sync and asyncio clients share: options, input preparation, the request's tensors,
the answer's parsing and the retry decision. The two clients differ only in how they wait.

A request is either a file (sent whole as AUDIO_FILE and decoded on the server) or samples with
their rate (AUDIO + SAMPLE_RATE; optionally through system shared memory, see client_shm.py).
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from speech2face.engine.contract import audio_rules
from speech2face.engine import contract
from speech2face.engine.client.errors import InferenceError, InvalidInput, RequestTimeout, ServerUnavailable
from speech2face.engine.contract.results import FaceResult
from speech2face.engine.client.retries import RetryPolicy
from speech2face.engine.contract.admin_key import GRPC_METADATA_PREFIX

MAX_SECONDS = audio_rules.MAX_SECONDS
MAX_REQUEST_BYTES = contract.MAX_REQUEST_BYTES
SEND_FILES = ("auto", "file", "samples")

AudioSource = Union[str, os.PathLike, bytes, np.ndarray, Sequence[float]]


@dataclasses.dataclass(frozen=True)
class Request:
    """One clip ready to send: `file` bytes (AUDIO_FILE), or `samples` at `rate` (AUDIO)."""

    file: bytes | None = None
    samples: np.ndarray | None = None
    rate: int = 0


# ---------------------------------------------------------------------------------------- inputs
def prepare_audio(audio, sample_rate, *, max_seconds: float = MAX_SECONDS,
                  max_request_bytes: int = MAX_REQUEST_BYTES) -> tuple[np.ndarray, int]:
    """Client-side checks (engine/contract/audio_rules.py's rules, the server's own) and conversion to the
    contract: mono float32 samples and an int rate. Raises InvalidInput naming the problem."""
    audio = np.asarray(audio)
    try:
        audio_rules.check_layout(audio)
        rate = audio_rules.check_rate(sample_rate)
        audio_rules.check_length(audio.shape[0], rate, max_seconds)
        if audio.shape[0] * 4 > max_request_bytes:
            raise InvalidInput(f"audio of {audio.shape[0]} samples is {audio.shape[0] * 4 / 2**20:.0f} MiB as "
                               f"float32; the request limit is {max_request_bytes / 2**20:.0f} MiB "
                               f"(resample to 16 kHz before sending)")
        audio_rules.check_values(audio)
    except audio_rules.AudioError as error:
        raise InvalidInput(str(error)) from None
    return audio_rules.to_mono_float32(audio), rate


def check_audio_file(data: bytes, name: str, *, max_seconds: float = MAX_SECONDS,
                     max_request_bytes: int = MAX_REQUEST_BYTES) -> None:
    """Reads the file's header only (soundfile): a format the server decodes, a rate and a
    length within the limits. Raises InvalidInput naming the file and the problem."""
    import soundfile

    if len(data) > max_request_bytes:
        raise InvalidInput(f"{name}: {len(data) / 2**20:.0f} MiB; the request limit is "
                           f"{max_request_bytes / 2**20:.0f} MiB")
    try:
        info = soundfile.info(io.BytesIO(data))
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise InvalidInput(f"{name}: not a readable audio file ({error})") from None
    if info.format not in contract.AUDIO_FILE_FORMATS:
        raise InvalidInput(f"{name}: {info.format} files are not served; send "
                           f"{', '.join(contract.AUDIO_FILE_FORMATS)} or decoded samples")
    if info.frames <= 0:
        raise InvalidInput(f"{name}: the file holds no audio samples")
    try:
        audio_rules.check_length(info.frames, audio_rules.check_rate(info.samplerate), max_seconds)
    except audio_rules.AudioError as error:
        raise InvalidInput(f"{name}: {error}") from None


def read_file(source: str | os.PathLike | bytes) -> tuple[bytes, str]:
    """(the file's bytes, a name for messages) of a path or of bytes already read."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "audio file bytes"
    path = Path(source)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    try:
        return path.read_bytes(), str(path)
    except OSError as error:
        raise InvalidInput(f"{path}: cannot be read ({error.strerror})") from None


def decode_file(data: bytes, name: str = "audio file") -> tuple[None, np.ndarray, int]:
    """A file's bytes as (None, mono float32 samples, rate), for a model without AUDIO_FILE: the
    server's own decoder (engine/contract/audio_files.py), with the same checks."""
    from speech2face.engine.contract.audio_files import decode_audio

    try:
        samples, rate = decode_audio(data, name)
    except audio_rules.AudioError as error:
        raise InvalidInput(str(error)) from None
    return None, samples, rate


def build_inputs(triton, request: Request, shm=None) -> tuple[list, list]:
    """tritonclient InferInput / InferRequestedOutput lists (`triton`: the grpc or http module).

    `shm`: a shared-memory slot (client_shm.Slot) large enough for the samples and the rate, or None.
    """
    outputs = [triton.InferRequestedOutput(n) for n in (contract.FACE_FEATURE_NAME, contract.FACE_IMAGE_NAME)]
    if request.file is not None:
        tensor = triton.InferInput(contract.AUDIO_FILE.name, [1, 1], contract.AUDIO_FILE.triton_dtype)
        tensor.set_data_from_numpy(np.array([[request.file]], dtype=object))
        return [tensor], outputs
    samples = np.ascontiguousarray(request.samples, dtype=np.float32).reshape(1, -1)
    rate = np.array([[request.rate]], dtype=np.int32)
    inputs = [triton.InferInput(contract.AUDIO.name, list(samples.shape), contract.AUDIO.triton_dtype),
              triton.InferInput(contract.SAMPLE_RATE.name, [1, 1], contract.SAMPLE_RATE.triton_dtype)]
    if shm is None:
        inputs[0].set_data_from_numpy(samples)
        inputs[1].set_data_from_numpy(rate)
    else:
        shm.write([samples, rate])
        inputs[0].set_shared_memory(shm.name, samples.nbytes, offset=0)
        inputs[1].set_shared_memory(shm.name, rate.nbytes, offset=samples.nbytes)
    return inputs, outputs


def request_bytes(request: Request) -> int:
    """Bytes a request's inputs occupy in shared memory (samples, then the rate)."""
    return 0 if request.samples is None else request.samples.size * 4 + 4


def parse_result(result, latency_s: float, attempts: int, where: str) -> FaceResult:
    feature = result.as_numpy(contract.FACE_FEATURE_NAME)
    image = result.as_numpy(contract.FACE_IMAGE_NAME)
    if feature is None or image is None:
        raise InferenceError(f"{where}: the response lacks {contract.FACE_FEATURE_NAME} or {contract.FACE_IMAGE_NAME}")
    return FaceResult(feature[0], image[0], latency_s, attempts)


def metadata_inputs(metadata) -> set[str]:
    """Input names from get_model_metadata (a dict, or gRPC's JSON-as-dict)."""
    return {entry["name"] for entry in (metadata or {}).get("inputs", [])}


# ---------------------------------------------------------------------------------------- shared
@dataclasses.dataclass
class ClientOptions:
    """Everything a client is configured with (both clients take the same keywords).

    timeout_s: per attempt. retry: how `ServerUnavailable` is retried (NO_RETRY turns it off).
    validate: the client-side checks; False sends arrays as float32 and files as they are,
    unchecked, to exercise the server's own checks. send_files: "file" sends files whole as
    AUDIO_FILE, "samples" decodes them here and sends AUDIO, "auto" sends AUDIO_FILE when the
    model's metadata lists it (a repository written before it existed does not).
    shared_memory: send samples through system shared memory (a co-located server only).
    headers: HTTP headers / gRPC metadata for the server's restricted APIs (shared memory, model
    control); None: the project's admin key (engine/contract/admin_key.py), which `s2f serve` requires.
    """

    url: str
    protocol: str = "grpc"
    timeout_s: float = 60.0
    retry: RetryPolicy = RetryPolicy()
    model: str = contract.ENSEMBLE
    validate: bool = True
    max_seconds: float = MAX_SECONDS
    max_request_bytes: int = MAX_REQUEST_BYTES
    send_files: str = "auto"
    shared_memory: bool = False
    headers: dict | None = None

    def __post_init__(self):
        if self.protocol not in ("grpc", "http"):
            raise ValueError(f"protocol must be 'grpc' or 'http', got {self.protocol!r}")
        if self.send_files not in SEND_FILES:
            raise ValueError(f"send_files must be one of {SEND_FILES}, got {self.send_files!r}")
        if self.url.startswith(("http://", "https://", "grpc://")):
            self.url = self.url.split("://", 1)[1]


class ClientCore:
    """Options, input preparation and the retry decision, shared by both clients."""

    def __init__(self, options: ClientOptions):
        self.options = options
        self._file_models: dict[str, bool] = {}    # model -> it takes AUDIO_FILE (from its metadata)
        self._closed = False

    # The options most callers read, as attributes (tests and tools set timeout_s on a live client).
    url = property(lambda self: self.options.url)
    protocol = property(lambda self: self.options.protocol)
    model = property(lambda self: self.options.model)
    retry = property(lambda self: self.options.retry)
    timeout_s = property(lambda self: self.options.timeout_s,
                         lambda self, value: setattr(self.options, "timeout_s", value))

    def _where(self) -> str:
        return f"{self.protocol} server at {self.url}"

    def _prepare(self, audio: AudioSource, sample_rate) -> Request:
        """A Request from a path/bytes (a file) or from samples and their rate; InvalidInput when wrong."""
        if isinstance(audio, (str, os.PathLike, bytes, bytearray, memoryview)):
            if sample_rate is not None:
                raise InvalidInput("a file carries its own sample rate: infer(path) without one")
            data, name = read_file(audio)
            if self.options.validate:
                check_audio_file(data, name, max_seconds=self.options.max_seconds,
                                 max_request_bytes=self.options.max_request_bytes)
            return Request(file=data)
        if sample_rate is None:
            raise InvalidInput("an audio array needs its sample rate: infer(samples, sample_rate)")
        if not self.options.validate:
            return Request(samples=np.asarray(audio, dtype=np.float32).reshape(-1), rate=int(sample_rate))
        samples, rate = prepare_audio(audio, sample_rate, max_seconds=self.options.max_seconds,
                                      max_request_bytes=self.options.max_request_bytes)
        return Request(samples=samples, rate=rate)

    def _as_sent(self, request: Request, takes_files: bool) -> Request:
        """The request as this model takes it: a file is decoded here when AUDIO_FILE is not served."""
        if request.file is None or takes_files:
            return request
        return Request(*decode_file(request.file))

    def _needs_metadata(self, request: Request, model: str) -> bool:
        return request.file is not None and self.options.send_files == "auto" and model not in self._file_models

    def _takes_files(self, model: str) -> bool:
        return self.options.send_files == "file" or self._file_models.get(model, False)

    def _failed(self, raw: BaseException, attempt: int,
                policy: RetryPolicy | None) -> tuple[InferenceError, float | None]:
        """The typed error, and the seconds to wait before retrying (None: raise it)."""
        from speech2face.engine.client.errors import classify_error

        error = classify_error(raw, self.url, self.protocol)
        if self.protocol == "http" and isinstance(error, (ServerUnavailable, RequestTimeout)):
            # A broken or timed-out HTTP connection may still hold a stale response: never reuse it.
            self._reset_connection()
        return error, (policy or self.retry).after_failure(error, attempt, self._closed)

    def _reset_connection(self) -> None:
        """Drops the HTTP connection pool; the sync and asyncio clients each define how."""
        raise NotImplementedError

    def _restricted_headers(self) -> dict[str, str]:
        """Headers for the restricted APIs. Triton reads a gRPC restriction key from the metadata
        key prefixed with `triton-grpc-protocol-`; both spellings are sent."""
        if self.options.headers is None:
            from speech2face.engine.contract.admin_key import admin_headers

            self.options.headers = admin_headers()
        headers = dict(self.options.headers)
        if self.protocol == "grpc":
            headers.update({f"{GRPC_METADATA_PREFIX}{k}": v for k, v in self.options.headers.items()
                            if not k.startswith(GRPC_METADATA_PREFIX)})
        return headers

"""The one client core: everything the blocking and the asyncio client do, as plans that never wait.

A plan is a generator. It yields what it needs done, and is sent back the result (or thrown the
exception):

    Call(method, args, kwargs)   a tritonclient call, on the client's connection
    Sleep(seconds)               a pause (the retry backoff, polling for readiness)
    Work(fn)                     CPU-bound work (decoding a file), off the event loop for asyncio
    Reset()                      drop the HTTP connection (it may hold a stale response)

and returns the answer. The plans hold every decision once: which form a clip is sent in (a file
whole or samples, after the model's metadata, cached per model), the request's tensors, shared
memory slots, the answer's parsing, the typed errors and the retry decision, statistics. The clients
(sync_client.py, async_client.py) are drivers: each performs these four operations its own way.

A request is either a file (sent whole as AUDIO_FILE and decoded on the server) or samples with
their rate (AUDIO + SAMPLE_RATE; optionally through system shared memory, see shm.py); what a
caller's audio becomes is engine/client/audio_inputs.py.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable, Generator, Iterable

import numpy as np

from speech2face.engine import contract
from speech2face.engine.client import audio_inputs
from speech2face.engine.client.audio_inputs import MAX_REQUEST_BYTES, MAX_SECONDS, AudioSource, Request
from speech2face.engine.client.errors import (InferenceError, InvalidInput, RequestTimeout, ServerUnavailable,
                                              classify_error)
from speech2face.engine.client.retries import NO_RETRY, RetryPolicy
from speech2face.engine.client.shm import SharedMemoryPool
from speech2face.engine.client.stats import parse_statistics
from speech2face.engine.contract.admin_key import GRPC_METADATA_PREFIX
from speech2face.engine.contract.results import FaceResult

SEND_FILES = ("auto", "file", "samples")


# ---------------------------------------------------------------------------- what a plan yields
@dataclasses.dataclass(frozen=True)
class Call:
    """`client.<method>(*args, **kwargs)` on the tritonclient client (awaited by the asyncio one)."""

    method: str
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclasses.dataclass(frozen=True)
class Work:
    """`fn()`: CPU-bound, so the asyncio client runs it in a thread."""

    fn: Callable[[], Any]


@dataclasses.dataclass(frozen=True)
class Reset:
    """Drop the HTTP connection: a broken or timed-out one may still hold a stale response."""


Op = Call | Sleep | Work | Reset
Plan = Generator[Op, Any, Any]


@dataclasses.dataclass(frozen=True)
class Step:
    """Where a plan stands: its next operation, or (op None) its answer."""

    op: Any = None
    value: Any = None


def advance(plan: Plan, outcome: tuple[Any, BaseException | None] = (None, None)) -> Step:
    """Hands the last operation's (reply, error) to the plan; its next operation, or its answer."""
    reply, error = outcome
    try:
        return Step(plan.send(reply) if error is None else plan.throw(error))
    except StopIteration as done:
        return Step(None, done.value)


# ------------------------------------------------------------------------------- tensors, answers
def build_inputs(triton, request: Request, shm=None) -> tuple[list, list]:
    """tritonclient InferInput / InferRequestedOutput lists (`triton`: the grpc or http module).

    `shm`: a shared-memory slot (shm.Slot) large enough for the samples and the rate, or None.
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


def batch_items(clips: Iterable) -> list[tuple[Any, int | None]]:
    """infer_batch's clips as (audio, rate) pairs: a file alone, or samples with their rate."""
    return [c if isinstance(c, tuple) else (c, None) for c in clips]


def first_failure(outcomes: list) -> list:
    """infer_batch's answers in input order, or the first failure raised (after all have finished)."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes


# ---------------------------------------------------------------------------------------- options
@dataclasses.dataclass
class ClientOptions:
    """Everything a client is configured with (both clients take the same keywords).

    timeout_s: per attempt. retry: how `ServerUnavailable` is retried (NO_RETRY turns it off).
    validate: the client-side checks; False sends arrays as float32 and files as they are,
    unchecked, to exercise the server's own checks. send_files (WAV/FLAC/OGG files; any other
    format FFmpeg reads is always decoded here and sent as samples): "file" sends them whole as
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
        if self.protocol == "http" and not self.shared_memory:   # tritonserver 2.51 crashes on larger HTTP bodies
            self.max_request_bytes = min(self.max_request_bytes, audio_inputs.HTTP_MAX_PAYLOAD_BYTES)


# ------------------------------------------------------------------------------------------ core
class ClientCore:
    """State and plans shared by both clients; a client adds only how it performs the operations."""

    def __init__(self, options: ClientOptions):
        self.options = options
        if options.protocol == "grpc":
            import tritonclient.grpc as triton
        else:
            import tritonclient.http as triton
        self._triton = triton    # InferInput & co. (the asyncio client's are the same classes)
        self._file_models: dict[str, bool] = {}    # model -> it takes AUDIO_FILE (from its metadata)
        self._pool = SharedMemoryPool() if options.shared_memory else None
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

    def _json(self) -> dict:
        """gRPC answers metadata and statistics as protobuf unless asked for JSON; HTTP always JSON."""
        return {"as_json": True} if self.protocol == "grpc" else {}

    # -- calls, retried
    def _attempts(self, call: Call, retry: RetryPolicy | None = None) -> Plan:
        """(the call's answer, attempts, seconds of the successful attempt); retried per the policy."""
        attempt = 0
        while True:
            attempt += 1
            if self._closed:
                raise InferenceError("the client is closed")
            start = time.perf_counter()
            try:
                answer = yield call
                return answer, attempt, time.perf_counter() - start
            except Exception as raw:  # noqa: BLE001 - every failure is classified, then raised or retried
                error = classify_error(raw, self.url, self.protocol)
            if self.protocol == "http" and isinstance(error, (ServerUnavailable, RequestTimeout)):
                yield Reset()
            wait = (retry or self.retry).after_failure(error, attempt, self._closed)
            if wait is None:
                raise error
            yield Sleep(wait)

    # -- inputs
    def _plan_prepare(self, audio: AudioSource, sample_rate) -> Plan:
        """A Request from a path/bytes (a file) or from samples and their rate; InvalidInput when wrong,
        an AudioWarning for a clip served with a caveat (audio_rules.audio_warnings)."""
        options = self.options
        limits = {"max_seconds": options.max_seconds, "max_request_bytes": options.max_request_bytes}
        if isinstance(audio, audio_inputs.FILE_SOURCES):
            if sample_rate is not None:
                raise InvalidInput("a file carries its own sample rate: infer(path) without one")
            if not options.validate:
                return Request(file=audio_inputs.read_file(audio)[0])
            found = audio_inputs.inspect_file(audio, **limits)
            if found.whole:
                data = audio_inputs.file_bytes(found)
                peak = None
                if found.kind in audio_inputs.FLOAT_SUBTYPES:
                    peak = yield Work(functools.partial(audio_inputs.file_peak, data, found.name))
                audio_inputs.warn(found.name, found.frames, found.rate, peak)
                return Request(file=data)
            from speech2face.engine.client import ffmpeg_decode

            decoded, rate = yield Work(functools.partial(ffmpeg_decode.decode, found.source, found.name, **limits))
            samples, rate = audio_inputs.prepare_audio(decoded, rate, name=found.name, **limits)
            audio_inputs.warn(found.name, samples.size, rate, audio_inputs.peak_of(samples))
            return Request(samples=samples, rate=rate)
        if sample_rate is None:
            raise InvalidInput("an audio array needs its sample rate: infer(samples, sample_rate)")
        if not options.validate:
            return Request(samples=np.asarray(audio, dtype=np.float32).reshape(-1), rate=int(sample_rate))
        samples, rate = audio_inputs.prepare_audio(audio, sample_rate, **limits)
        audio_inputs.warn(None, samples.size, rate, audio_inputs.peak_of(samples))
        return Request(samples=samples, rate=rate)

    # -- inference
    def _plan_infer(self, audio: AudioSource, sample_rate, model: str | None) -> Plan:
        request = yield from self._plan_prepare(audio, sample_rate)
        return (yield from self._plan_send(request, model))

    def _plan_send(self, request: Request, model: str | None) -> Plan:
        name = model or self.model
        if request.file is not None:
            if self.options.send_files == "auto" and name not in self._file_models:
                metadata = yield from self._plan_metadata(name)
                self._file_models[name] = contract.AUDIO_FILE.name in metadata_inputs(metadata)
            if not (self.options.send_files == "file" or self._file_models.get(name, False)):
                request = yield Work(functools.partial(audio_inputs.decode_file, request.file))
        slot = None
        try:
            if self._pool is not None and request.samples is not None:
                slot = self._pool.acquire(request_bytes(request))
                if not slot.registered:
                    yield from self._attempts(Call("register_system_shared_memory", (slot.name, slot.key, slot.size),
                                                   {"headers": self._restricted_headers()}), NO_RETRY)
                    slot.registered = True
            inputs, outputs = build_inputs(self._triton, request, slot)
            timeout = {"client_timeout": self.timeout_s} if self.protocol == "grpc" else {}
            result, attempts, latency = yield from self._attempts(
                Call("infer", (name, inputs), {"outputs": outputs, **timeout}))
        finally:
            if slot is not None:
                self._pool.release(slot)
        return parse_result(result, latency, attempts, self._where())

    # -- server state
    def _plan_metadata(self, model: str | None) -> Plan:
        answer, _, _ = yield from self._attempts(Call("get_model_metadata", (model or self.model,), self._json()))
        return answer

    def _plan_is_ready(self, model: str | None) -> Plan:
        try:
            return bool((yield Call("is_model_ready", (model or self.model,))))
        except Exception:  # noqa: BLE001 - not ready is the answer
            return False

    def _plan_is_server_live(self) -> Plan:
        try:
            return bool((yield Call("is_server_live")))
        except Exception:  # noqa: BLE001 - not live is the answer
            return False

    def _plan_wait_until_ready(self, timeout_s: float, model: str | None) -> Plan:
        deadline = time.monotonic() + timeout_s
        while not (yield from self._plan_is_ready(model)):
            if time.monotonic() > deadline:
                raise ServerUnavailable(f"{self._where()}: model {model or self.model!r} "
                                        f"not ready after {timeout_s:.0f} s")
            yield Sleep(0.1)

    def _plan_statistics(self, model: str) -> Plan:
        answer, _, _ = yield from self._attempts(Call("get_inference_statistics", (model,), self._json()))
        return parse_statistics(answer)

    def _plan_load_model(self, name: str, config: str | None) -> Plan:
        yield from self._attempts(Call("load_model", (name,), {"config": config,
                                                               "headers": self._restricted_headers()}), NO_RETRY)

    def _plan_unload_model(self, name: str) -> Plan:
        yield from self._attempts(Call("unload_model", (name,), {"headers": self._restricted_headers()}), NO_RETRY)

    def _plan_release_shared_memory(self) -> Plan:
        """Unregisters every shared-memory region (best effort: the server may be gone), then frees them."""
        if self._pool is None:
            return
        for slot in self._pool.drain():
            if slot.registered:
                try:
                    yield Call("unregister_system_shared_memory", (slot.name,), {"headers": self._restricted_headers()})
                except Exception:  # noqa: BLE001 - the server may be gone; the region is freed below
                    pass
        self._pool.destroy()

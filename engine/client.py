"""Client of the speech2face ensemble over gRPC or HTTP: tritonclient, NumPy and soundfile only.

    with Speech2FaceClient("127.0.0.1:8001") as client:          # gRPC; protocol="http" for HTTP
        result = client.infer("voice.flac")                        # a file (WAV/FLAC/OGG) ...
        result = client.infer(samples, 16000)                      # ... or an array and its rate
        results = client.infer_batch(["a.wav", "b.wav"], max_in_flight=8)

Every failure is an `InferenceError`; the subclasses say what kind:

- `InvalidInput`: the audio or the request is wrong (the client's own checks, or the server's
  refusal); fixing the input is the only remedy. Also a `ValueError`.
- `ModelNotFound`: the server does not serve that model (or that model is not loaded).
- `ServerUnavailable`: nothing answers at the URL, or the connection broke; retried with
  exponential backoff (bounded by `RetryPolicy`) before it is raised. Only this kind is retried.
- `RequestTimeout`: no answer within `timeout_s` (per attempt; never retried).
- `ModelControlDisabled`: load/unload asked of a server started without model control.

The asyncio twin is `speech2face.engine.async_client.AsyncSpeech2FaceClient`.

Server timings: the ensemble returns no per-request timing, so results carry the client-measured
latency only; `statistics()` reads Triton's per-model counters (cumulative queue and compute
time, batch sizes), and `ModelStatistics.delta` turns two snapshots into per-request averages.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar, Union

import numpy as np

from speech2face.engine import contract

# The server refuses longer clips (engine/features.py MAX_SECONDS); checking here saves sending
# up to hundreds of MB only to be refused.
MAX_SECONDS = 600.0
# A transport limit, independent of the rate: 10 minutes at 48 kHz fits (115 MB of float32).
MAX_REQUEST_BYTES = 128 * 1024 * 1024
_INT32_MAX = 2**31 - 1
_INT_SCALES = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}
MAX_CHANNELS = 16

AudioSource = Union[str, os.PathLike, np.ndarray, Sequence[float]]
T = TypeVar("T")


# --------------------------------------------------------------------------------------- errors
class InferenceError(RuntimeError):
    """The request failed; the message says why. `status` is the server's code when it sent one."""

    def __init__(self, message: str, *, status: str | None = None, attempts: int = 1):
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class InvalidInput(InferenceError, ValueError):
    """The audio or request is wrong (empty, NaN/Inf, wrong shape or type, bad sample rate, too long)."""


class ModelNotFound(InferenceError):
    """The server has no such model, or it is not loaded."""


class ServerUnavailable(InferenceError):
    """Nothing answers at the URL, or the connection broke (after the retries)."""


class RequestTimeout(InferenceError):
    """No answer within the client's timeout."""


class ModelControlDisabled(InferenceError):
    """Load/unload asked of a server started without model control (the default)."""


_REQUEST_ID_PREFIX = re.compile(r"^\[request id: [^\]]*\]\s*")


def classify_error(error: BaseException, url: str, protocol: str) -> InferenceError:
    """Maps a tritonclient / transport exception to the typed error, with a clear message."""
    from tritonclient.utils import InferenceServerException

    where = f"{protocol} server at {url}"
    if isinstance(error, InferenceError):
        return error
    if isinstance(error, InferenceServerException):
        status = str(error.status() or "")
        message = _REQUEST_ID_PREFIX.sub("", str(error.message() or "")).strip()
        if "not allowed" in message and ("load" in message or "unload" in message):
            return ModelControlDisabled(
                f"{where} refuses model load/unload: its model control API is off "
                f"(start it with model_control='explicit'); server said: {message}", status=status)
        if "DEADLINE_EXCEEDED" in status or status == "504":
            return RequestTimeout(f"{where} did not answer in time ({message})", status=status)
        if "UNAVAILABLE" in status or status == "503":
            return ServerUnavailable(f"{where} is unavailable: {message}", status=status)
        if "NOT_FOUND" in status or status == "404" or "unknown model" in message:
            return ModelNotFound(f"{where}: {message}", status=status)
        if "INVALID_ARGUMENT" in status or status == "400":
            return InvalidInput(f"{where} refused the request: {message}", status=status)
        if not status and not message:
            return ServerUnavailable(f"{where} closed the connection without an answer", status=status)
        return InferenceError(f"{where} failed the request: {message} [{status or 'no status'}]", status=status)
    if isinstance(error, TimeoutError) or type(error).__name__ in ("Timeout", "timeout", "ServerTimeoutError"):
        return RequestTimeout(f"{where} did not answer in time ({type(error).__name__})")
    if isinstance(error, (ConnectionError, OSError, EOFError)) or _is_transport_error(error):
        return ServerUnavailable(f"{where} is unavailable: {type(error).__name__}: {error}")
    return InferenceError(f"{where}: unexpected {type(error).__name__}: {error}")


def _is_transport_error(error: BaseException) -> bool:
    """aiohttp connection errors and geventhttpclient parse errors on a dropped connection."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"ClientConnectionError", "ServerDisconnectedError", "ClientPayloadError",
                         "HTTPParseError", "HTTPConnectionClosed", "IncompleteRead", "RemoteProtocolError"})


# ---------------------------------------------------------------------------------- retry policy
@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for `ServerUnavailable` only; everything else fails at once.

    The default gives up after 4 attempts and about 0.35 s of waiting (0.05, 0.1, 0.2 s, each
    +-20 % jitter), so a dead server is reported in well under a second.
    """

    max_attempts: int = 4
    initial_backoff_s: float = 0.05
    multiplier: float = 2.0
    max_backoff_s: float = 1.0
    jitter: float = 0.2

    def __post_init__(self):
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        base = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))
        return max(0.0, base * (1.0 + self.jitter * (2.0 * random.random() - 1.0)))


NO_RETRY = RetryPolicy(max_attempts=1)


# --------------------------------------------------------------------------------------- results
@dataclasses.dataclass
class FaceResult:
    feature: np.ndarray      # (D,) float32, L2-normalised
    image: np.ndarray        # (H, W, 3) uint8
    latency_s: float         # client-measured, the successful attempt only
    attempts: int = 1        # 1 unless ServerUnavailable retries happened


@dataclasses.dataclass(frozen=True)
class ModelStatistics:
    """Triton's cumulative per-model counters (see the statistics extension); `delta` subtracts."""

    model: str
    version: str
    inference_count: int = 0     # requests' batch rows
    execution_count: int = 0     # model executions (a dynamic batch is one)
    success_count: int = 0
    fail_count: int = 0
    success_ns: int = 0          # end-to-end time inside the server, successful requests
    queue_ns: int = 0
    compute_input_ns: int = 0
    compute_infer_ns: int = 0
    compute_output_ns: int = 0

    @classmethod
    def from_json(cls, entry: dict) -> "ModelStatistics":
        stats = entry.get("inference_stats", {})

        def field(name: str, key: str) -> int:
            return int(stats.get(name, {}).get(key, 0) or 0)

        return cls(model=entry["name"], version=str(entry.get("version", "")),
                   inference_count=int(entry.get("inference_count", 0) or 0),
                   execution_count=int(entry.get("execution_count", 0) or 0),
                   success_count=field("success", "count"), fail_count=field("fail", "count"),
                   success_ns=field("success", "ns"), queue_ns=field("queue", "ns"),
                   compute_input_ns=field("compute_input", "ns"),
                   compute_infer_ns=field("compute_infer", "ns"),
                   compute_output_ns=field("compute_output", "ns"))

    def delta(self, earlier: "ModelStatistics") -> "ModelStatistics":
        return dataclasses.replace(self, **{f.name: getattr(self, f.name) - getattr(earlier, f.name)
                                            for f in dataclasses.fields(self)
                                            if f.name not in ("model", "version")})

    def _per_request_ms(self, ns: int) -> float:
        return ns / self.success_count / 1e6 if self.success_count else float("nan")

    @property
    def avg_request_ms(self) -> float:
        return self._per_request_ms(self.success_ns)

    @property
    def avg_queue_ms(self) -> float:
        return self._per_request_ms(self.queue_ns)

    @property
    def avg_compute_ms(self) -> float:
        return self._per_request_ms(self.compute_input_ns + self.compute_infer_ns + self.compute_output_ns)

    @property
    def avg_batch_size(self) -> float:
        return self.inference_count / self.execution_count if self.execution_count else float("nan")

    def summary(self) -> dict:
        return {"model": self.model, "requests": self.success_count, "failed": self.fail_count,
                "executions": self.execution_count, "avg_batch": self.avg_batch_size,
                "avg_request_ms": self.avg_request_ms, "avg_queue_ms": self.avg_queue_ms,
                "avg_compute_ms": self.avg_compute_ms}


def parse_statistics(payload: dict) -> dict[str, ModelStatistics]:
    """{model name: statistics} from get_inference_statistics(as_json=True) (gRPC or HTTP)."""
    return {entry["name"]: ModelStatistics.from_json(entry) for entry in payload.get("model_stats", [])}


# ---------------------------------------------------------------------------------------- inputs
def load_audio(source: AudioSource, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """(samples, rate) from a file path (WAV/FLAC/OGG, mixed to mono) or an array with its rate."""
    if isinstance(source, (str, os.PathLike)):
        from speech2face.engine.audio_io import AudioFileError, read_audio

        try:
            samples, file_rate = read_audio(Path(source))
        except AudioFileError as error:
            raise InvalidInput(str(error)) from None
        if sample_rate is not None and int(sample_rate) != file_rate:
            raise InvalidInput(f"{source}: the file is at {file_rate} Hz, not the {sample_rate} Hz given")
        return samples, file_rate
    if sample_rate is None:
        raise InvalidInput("an audio array needs its sample rate: infer(samples, sample_rate)")
    return np.asarray(source), sample_rate


def prepare_audio(audio: np.ndarray, sample_rate, *, max_seconds: float = MAX_SECONDS,
                  max_request_bytes: int = MAX_REQUEST_BYTES) -> tuple[np.ndarray, int]:
    """Client-side checks and conversion to the contract: mono float32 samples and an int rate.

    int16/int32 samples are scaled to [-1, 1); (samples, channels) arrays are mixed down.
    Raises InvalidInput naming the problem (the server checks the same, and more).
    """
    audio = np.asarray(audio)
    if audio.dtype.kind == "b" or audio.dtype.kind not in "iuf" or (
            audio.dtype.kind in "iu" and audio.dtype not in _INT_SCALES):
        raise InvalidInput(f"audio dtype {audio.dtype} is not supported; send int16, int32, float32 or float64")
    if audio.ndim == 2:
        if audio.shape[1] > MAX_CHANNELS:
            raise InvalidInput(f"2-D audio must be (samples, channels) with at most {MAX_CHANNELS} "
                               f"channels, got shape {audio.shape}")
    elif audio.ndim != 1:
        raise InvalidInput(f"audio must be 1-D mono or 2-D (samples, channels), got shape {audio.shape}")
    if audio.size == 0:
        raise InvalidInput("audio is empty")
    if isinstance(sample_rate, (bool, np.bool_)) or not isinstance(sample_rate, (int, np.integer, float, np.floating)):
        raise InvalidInput(f"sample rate must be a positive whole number of Hz, got {sample_rate!r}")
    if not np.isfinite(sample_rate) or int(sample_rate) != sample_rate or not 0 < sample_rate <= _INT32_MAX:
        raise InvalidInput(f"sample rate must be a positive whole number of Hz, got {sample_rate!r}")
    rate = int(sample_rate)
    seconds = audio.shape[0] / rate
    if seconds > max_seconds:
        raise InvalidInput(f"audio is {seconds:.0f} s long; the limit is {max_seconds:.0f} s")
    if audio.shape[0] * 4 > max_request_bytes:
        raise InvalidInput(f"audio of {audio.shape[0]} samples is {audio.shape[0] * 4 / 2**20:.0f} MiB as "
                           f"float32; the request limit is {max_request_bytes / 2**20:.0f} MiB "
                           f"(resample to 16 kHz before sending)")
    if audio.dtype in _INT_SCALES:
        audio = audio.astype(np.float32) * np.float32(1.0 / _INT_SCALES[audio.dtype])
    else:
        with np.errstate(over="ignore"):   # float64 beyond float32's range becomes Inf: refused below
            audio = audio.astype(np.float32, copy=False)
        if not np.isfinite(audio).all():
            first = int(np.flatnonzero(~np.isfinite(audio.reshape(audio.shape[0], -1)).any(axis=1))[0])
            raise InvalidInput(f"audio contains NaN or Inf samples (first at sample {first}), "
                               f"or values too large for float32")
    if audio.ndim == 2:
        audio = audio.mean(axis=1, dtype=np.float32) if audio.shape[1] > 1 else audio[:, 0]
    return np.ascontiguousarray(audio, dtype=np.float32), rate


def build_inputs(triton, audio: np.ndarray, rate: int) -> tuple[list, list]:
    """tritonclient InferInput / InferRequestedOutput lists for one clip (`triton`: grpc or http module)."""
    samples = np.ascontiguousarray(audio, dtype=np.float32).reshape(1, -1)
    rate_tensor = np.array([[rate]], dtype=np.int32)
    inputs = [triton.InferInput(contract.AUDIO.name, list(samples.shape), contract.AUDIO.triton_dtype),
              triton.InferInput(contract.SAMPLE_RATE.name, [1, 1], contract.SAMPLE_RATE.triton_dtype)]
    inputs[0].set_data_from_numpy(samples)
    inputs[1].set_data_from_numpy(rate_tensor)
    outputs = [triton.InferRequestedOutput(n) for n in (contract.FACE_FEATURE_NAME, contract.FACE_IMAGE_NAME)]
    return inputs, outputs


def parse_result(result, latency_s: float, attempts: int, where: str) -> FaceResult:
    feature = result.as_numpy(contract.FACE_FEATURE_NAME)
    image = result.as_numpy(contract.FACE_IMAGE_NAME)
    if feature is None or image is None:
        raise InferenceError(f"{where}: the response lacks {contract.FACE_FEATURE_NAME} or {contract.FACE_IMAGE_NAME}")
    return FaceResult(feature[0], image[0], latency_s, attempts)


def _check_protocol(protocol: str) -> None:
    if protocol not in ("grpc", "http"):
        raise ValueError(f"protocol must be 'grpc' or 'http', got {protocol!r}")


# ---------------------------------------------------------------------------------------- client
class Speech2FaceClient:
    """Blocking client; safe to share between threads (HTTP gets one connection per thread).

    timeout_s: per attempt. retry: how `ServerUnavailable` is retried (NO_RETRY turns it off).
    validate: run the client-side checks (`prepare_audio`); False sends the array as float32
    unchecked, to exercise the server's own checks.
    """

    def __init__(self, url: str, protocol: str = "grpc", timeout_s: float = 60.0,
                 retry: RetryPolicy = RetryPolicy(), *, model: str = contract.ENSEMBLE,
                 validate: bool = True, max_seconds: float = MAX_SECONDS,
                 max_request_bytes: int = MAX_REQUEST_BYTES):
        _check_protocol(protocol)
        if protocol == "grpc":
            import tritonclient.grpc as triton
        else:
            import tritonclient.http as triton
        if url.startswith(("http://", "https://", "grpc://")):
            url = url.split("://", 1)[1]
        self._triton = triton
        self.url = url
        self.protocol = protocol
        self.timeout_s = timeout_s
        self.retry = retry
        self.model = model
        self.validate = validate
        self.max_seconds = max_seconds
        self.max_request_bytes = max_request_bytes
        self._local = threading.local()
        self._clients: list = []
        self._lock = threading.Lock()
        self._closed = False
        self._shared = self._new_client() if protocol == "grpc" else None  # gRPC clients are thread-safe

    # -- connections
    def _new_client(self):
        if self.protocol == "grpc":
            client = self._triton.InferenceServerClient(url=self.url)
        else:
            client = self._triton.InferenceServerClient(url=self.url, connection_timeout=self.timeout_s,
                                                        network_timeout=self.timeout_s)
        with self._lock:
            self._clients.append(client)
        return client

    @property
    def _client(self):
        """The underlying tritonclient client for this thread."""
        if self._closed:
            raise InferenceError("the client is closed")
        if self._shared is not None:
            return self._shared
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._new_client()
        return client

    def _where(self) -> str:
        return f"{self.protocol} server at {self.url}"

    def _call(self, fn: Callable[[], T], retry: RetryPolicy | None = None) -> tuple[T, int]:
        policy = retry or self.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(), attempt
            except Exception as raw:  # noqa: BLE001 - classified below
                error = classify_error(raw, self.url, self.protocol)
                if self.protocol == "http" and isinstance(error, (ServerUnavailable, RequestTimeout)):
                    # A broken or timed-out HTTP connection may still hold a stale response: never reuse it.
                    self._reset_thread_client()
                if isinstance(error, ServerUnavailable) and attempt < policy.max_attempts and not self._closed:
                    time.sleep(policy.backoff(attempt))
                    continue
                error.attempts = attempt
                if isinstance(error, ServerUnavailable) and attempt > 1:
                    error.args = (f"{error.args[0]} (gave up after {attempt} attempts)",)
                raise error from None

    def _reset_thread_client(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            self._local.client = None
            try:
                client.close()
            except Exception:  # noqa: BLE001 - it is broken already
                pass

    # -- inference
    def _prepare(self, audio: AudioSource, sample_rate) -> tuple[np.ndarray, int]:
        samples, rate = load_audio(audio, sample_rate)
        if self.validate:
            return prepare_audio(samples, rate, max_seconds=self.max_seconds,
                                 max_request_bytes=self.max_request_bytes)
        return np.asarray(samples, dtype=np.float32).reshape(-1), int(rate)

    def infer(self, audio: AudioSource, sample_rate: int | None = None, model: str | None = None) -> FaceResult:
        """One clip -> FaceResult. `audio`: a file path, or samples with their `sample_rate`."""
        samples, rate = self._prepare(audio, sample_rate)
        inputs, outputs = build_inputs(self._triton, samples, rate)
        name = model or self.model

        def attempt():
            start = time.perf_counter()
            if self.protocol == "grpc":
                result = self._client.infer(name, inputs, outputs=outputs, client_timeout=self.timeout_s)
            else:
                result = self._client.infer(name, inputs, outputs=outputs)
            return result, time.perf_counter() - start

        (result, latency), attempts = self._call(attempt)
        return parse_result(result, latency, attempts, self._where())

    def infer_batch(self, clips: Iterable[AudioSource | tuple[np.ndarray, int]], max_in_flight: int = 8,
                    model: str | None = None) -> list[FaceResult]:
        """Many clips, up to `max_in_flight` requests at once (the server's dynamic batcher merges
        them); results in input order. The first failure is raised after the others finish."""
        items = [c if isinstance(c, tuple) else (c, None) for c in clips]
        prepared = [self._prepare(a, r) for a, r in items]   # input errors before anything is sent
        if not prepared:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(max_in_flight, len(prepared)))) as pool:
            futures = [pool.submit(self.infer, a, r, model) for a, r in prepared]
            errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        return [f.result() for f in futures]

    # -- server state
    def is_ready(self, model: str | None = None) -> bool:
        try:
            return bool(self._client.is_model_ready(model or self.model))
        except Exception:  # noqa: BLE001 - not ready is the answer
            return False

    def is_server_live(self) -> bool:
        try:
            return bool(self._client.is_server_live())
        except Exception:  # noqa: BLE001
            return False

    def wait_until_ready(self, timeout_s: float = 60.0, model: str | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.is_ready(model):
            if time.monotonic() > deadline:
                raise ServerUnavailable(f"{self._where()}: model {model or self.model!r} "
                                        f"not ready after {timeout_s:.0f} s")
            time.sleep(0.1)

    def statistics(self, model: str = "") -> dict[str, ModelStatistics]:
        """Triton's per-model counters ('' = every model). Cumulative; use `.delta()` on two snapshots."""
        if self.protocol == "grpc":
            payload, _ = self._call(lambda: self._client.get_inference_statistics(model, as_json=True))
        else:
            payload, _ = self._call(lambda: self._client.get_inference_statistics(model))
        return parse_statistics(payload)

    def load_model(self, name: str, config: str | None = None) -> None:
        """Loads or reloads a model (needs a server started with model_control='explicit');
        `config`: a JSON model config that overrides the repository's config.pbtxt."""
        self._call(lambda: self._client.load_model(name, config=config), retry=NO_RETRY)

    def unload_model(self, name: str) -> None:
        self._call(lambda: self._client.unload_model(name), retry=NO_RETRY)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass

    def __enter__(self) -> "Speech2FaceClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

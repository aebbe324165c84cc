"""Client of the speech2face model over gRPC or HTTP: tritonclient, NumPy and soundfile only.

    with Speech2FaceClient("127.0.0.1:8001") as client:          # gRPC; protocol="http" for HTTP
        result = client.infer("voice.flac")                        # a file, sent whole as AUDIO_FILE
        result = client.infer(samples, 16000)                      # an array and its rate (AUDIO)
        results = client.infer_batch(["a.wav", "b.wav"], max_in_flight=8)

    Speech2FaceClient(url, shared_memory=True)   # same host: samples through /dev/shm (admin key)
    Speech2FaceClient(url, send_files="samples") # decode files here and send AUDIO instead

Errors are `InferenceError`s (engine/client/errors.py), retries follow a `RetryPolicy`
(engine/client/retries.py), `statistics()` reads Triton's per-model counters (engine/client/stats.py).
The asyncio client (engine/client/async_client.py) shares this client's core (engine/client/core.py):
options, checks, tensors and the retry decision; each only waits its own way.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

import numpy as np

from speech2face.engine import contract
# Re-exported: callers import the client's whole vocabulary from here.
from speech2face.engine.client.core import (MAX_REQUEST_BYTES, MAX_SECONDS, AudioSource,  # noqa: F401
                                            ClientCore, ClientOptions, Request, build_inputs, check_audio_file,
                                            metadata_inputs, parse_result, prepare_audio, request_bytes)
from speech2face.engine.client.errors import (InferenceError, InvalidInput, ModelControlDisabled,  # noqa: F401
                                              ModelNotFound, RequestTimeout, ServerUnavailable, classify_error)
from speech2face.engine.client.shm import SharedMemoryPool
from speech2face.engine.client.stats import ModelStatistics, parse_statistics
from speech2face.engine.contract.results import FaceResult
from speech2face.engine.client.retries import NO_RETRY, RetryPolicy

T = TypeVar("T")


class Speech2FaceClient(ClientCore):
    """Blocking client; safe to share between threads (HTTP gets one connection per thread).

    Keywords: see `ClientOptions` (timeout_s per attempt, retry, validate, send_files,
    shared_memory, headers).
    """

    def __init__(self, url: str, protocol: str = "grpc", timeout_s: float = 60.0,
                 retry: RetryPolicy = RetryPolicy(), **options):
        super().__init__(ClientOptions(url, protocol, timeout_s, retry, **options))
        if self.protocol == "grpc":
            import tritonclient.grpc as triton
        else:
            import tritonclient.http as triton
        self._triton = triton
        self._local = threading.local()
        self._clients: list = []
        self._lock = threading.Lock()
        self._pool = SharedMemoryPool() if self.options.shared_memory else None
        self._shared = self._new_client() if self.protocol == "grpc" else None  # gRPC clients are thread-safe

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

    def _reset_connection(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            self._local.client = None
            try:
                client.close()
            except Exception:  # noqa: BLE001 - it is broken already
                pass

    def _call(self, fn: Callable[[], T], retry: RetryPolicy | None = None) -> tuple[T, int]:
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(), attempt
            except Exception as raw:  # noqa: BLE001 - classified by the core
                error, wait = self._failed(raw, attempt, retry)
                if wait is None:
                    raise error from None
                time.sleep(wait)

    def _timeout_kwargs(self) -> dict:
        return {"client_timeout": self.timeout_s} if self.protocol == "grpc" else {}

    # -- inference
    def _sendable(self, request: Request, model: str) -> Request:
        if self._needs_metadata(request, model):
            self._file_models[model] = contract.AUDIO_FILE.name in metadata_inputs(self.metadata(model))
        return self._as_sent(request, self._takes_files(model))

    def _shm_slot(self, request: Request):
        if self._pool is None or request.samples is None:
            return None
        slot = self._pool.acquire(request_bytes(request))
        if not slot.registered:
            self._call(lambda: self._client.register_system_shared_memory(
                slot.name, slot.key, slot.size, headers=self._restricted_headers()), retry=NO_RETRY)
            slot.registered = True
        return slot

    def _infer_request(self, request: Request, model: str | None) -> FaceResult:
        name = model or self.model
        request = self._sendable(request, name)
        slot = self._shm_slot(request)
        try:
            inputs, outputs = build_inputs(self._triton, request, slot)

            def attempt():
                start = time.perf_counter()
                result = self._client.infer(name, inputs, outputs=outputs, **self._timeout_kwargs())
                return result, time.perf_counter() - start

            (result, latency), attempts = self._call(attempt)
        finally:
            if slot is not None:
                self._pool.release(slot)
        return parse_result(result, latency, attempts, self._where())

    def infer(self, audio: AudioSource, sample_rate: int | None = None, model: str | None = None) -> FaceResult:
        """One clip -> FaceResult. `audio`: a file path or its bytes (sent as AUDIO_FILE), or
        samples with their `sample_rate`."""
        return self._infer_request(self._prepare(audio, sample_rate), model)

    def infer_file(self, source, model: str | None = None) -> FaceResult:
        """A WAV/FLAC/OGG file (a path or its bytes), decoded on the server."""
        return self.infer(source, None, model)

    def infer_batch(self, clips: Iterable[AudioSource | tuple[np.ndarray, int]], max_in_flight: int = 8,
                    model: str | None = None) -> list[FaceResult]:
        """Many clips, up to `max_in_flight` requests at once (the server's dynamic batcher merges
        them); results in input order. The first failure is raised after the others finish."""
        items = [c if isinstance(c, tuple) else (c, None) for c in clips]
        prepared = [self._prepare(a, r) for a, r in items]   # input errors before anything is sent
        if not prepared:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(max_in_flight, len(prepared)))) as pool:
            futures = [pool.submit(self._infer_request, request, model) for request in prepared]
            errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        return [f.result() for f in futures]

    # -- server state
    def metadata(self, model: str | None = None) -> dict:
        """The model's metadata (inputs, outputs) as a dict."""
        name = model or self.model
        if self.protocol == "grpc":
            return self._call(lambda: self._client.get_model_metadata(name, as_json=True))[0]
        return self._call(lambda: self._client.get_model_metadata(name))[0]

    def is_ready(self, model: str | None = None) -> bool:
        try:
            return bool(self._client.is_model_ready(model or self.model))
        except Exception:  # noqa: BLE001 - not ready is the answer
            return False

    def is_server_live(self) -> bool:
        try:
            return bool(self._client.is_server_live())
        except Exception:  # noqa: BLE001 - not live is the answer
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
        self._call(lambda: self._client.load_model(name, config=config, headers=self._restricted_headers()),
                   retry=NO_RETRY)

    def unload_model(self, name: str) -> None:
        self._call(lambda: self._client.unload_model(name, headers=self._restricted_headers()), retry=NO_RETRY)

    def _release_shared_memory(self) -> None:
        if self._pool is None:
            return
        for slot in self._pool.drain():
            if slot.registered:
                try:
                    self._client.unregister_system_shared_memory(slot.name, headers=self._restricted_headers())
                except Exception:  # noqa: BLE001 - the server may be gone; the region is freed below
                    pass
        self._pool.destroy()

    def close(self) -> None:
        if not self._closed:
            self._release_shared_memory()
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

"""Blocking client of the speech2face model over gRPC or HTTP.

    with Speech2FaceClient("127.0.0.1:8001") as client:          # gRPC; protocol="http" for HTTP
        result = client.infer("voice.m4a")                         # any file FFmpeg reads; WAV/FLAC/OGG go whole
        result = client.infer(samples, 16000)                      # an array and its rate (AUDIO)
        results = client.infer_batch(["a.wav", "b.mp3"], max_in_flight=8)

    Speech2FaceClient(url, shared_memory=True)   # same host: samples through /dev/shm (admin key)
    Speech2FaceClient(url, send_files="samples") # decode WAV/FLAC/OGG here too and send AUDIO

Everything but the waiting is the core's (engine/client/core.py: inputs, tensors, answers, errors,
retries, metadata, statistics); this client performs its operations by blocking: calls on a
tritonclient client (one gRPC channel; one HTTP connection per thread), time.sleep, work in line.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

import numpy as np

from speech2face.engine.client.core import Call, ClientCore, ClientOptions, Plan, Reset, Sleep, Work, advance, \
    batch_items, first_failure
from speech2face.engine.client.audio_inputs import AudioSource
from speech2face.engine.client.errors import InferenceError
from speech2face.engine.client.retries import RetryPolicy
from speech2face.engine.client.stats import ModelStatistics
from speech2face.engine.contract.results import FaceResult


class Speech2FaceClient(ClientCore):
    """Blocking client; safe to share between threads (HTTP gets one connection per thread).

    Keywords: see `ClientOptions` (timeout_s per attempt, retry, validate, send_files,
    shared_memory, headers).
    """

    def __init__(self, url: str, protocol: str = "grpc", timeout_s: float = 60.0,
                 retry: RetryPolicy = RetryPolicy(), **options):
        super().__init__(ClientOptions(url, protocol, timeout_s, retry, **options))
        self._local = threading.local()
        self._clients: list = []
        self._lock = threading.Lock()
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

    # -- the driver
    def _perform(self, op):
        if isinstance(op, Call):
            return getattr(self._client, op.method)(*op.args, **op.kwargs)
        if isinstance(op, Sleep):
            return time.sleep(op.seconds)
        if isinstance(op, Work):
            return op.fn()
        if isinstance(op, Reset):
            return self._reset_connection()
        raise TypeError(f"unknown operation {op!r}")

    def _run(self, plan: Plan):
        """Drives a core plan to its answer, blocking on each operation."""
        step = advance(plan)
        while step.op is not None:
            step = advance(plan, self._attempt(step.op))
        return step.value

    def _attempt(self, op) -> tuple:
        try:
            return self._perform(op), None
        except Exception as raw:  # noqa: BLE001 - handed to the plan, which classifies it
            return None, raw

    # -- inference
    def infer(self, audio: AudioSource, sample_rate: int | None = None, model: str | None = None) -> FaceResult:
        """One clip -> FaceResult. `audio`: a file path or its bytes (WAV/FLAC/OGG sent whole as
        AUDIO_FILE, any other format FFmpeg reads decoded here), or samples with their `sample_rate`."""
        return self._run(self._plan_infer(audio, sample_rate, model))

    def infer_file(self, source, model: str | None = None) -> FaceResult:
        """A file (a path or its bytes): WAV/FLAC/OGG decoded on the server, anything else here."""
        return self.infer(source, None, model)

    def infer_batch(self, clips: Iterable[AudioSource | tuple[np.ndarray, int]], max_in_flight: int = 8,
                    model: str | None = None) -> list[FaceResult]:
        """Many clips, up to `max_in_flight` requests at once (the server's dynamic batcher merges
        them); results in input order. The first failure is raised after the others finish."""
        prepared = [self._run(self._plan_prepare(a, r)) for a, r in batch_items(clips)]   # input errors first
        if not prepared:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(max_in_flight, len(prepared)))) as pool:
            futures = [pool.submit(lambda r: self._run(self._plan_send(r, model)), request) for request in prepared]
            return first_failure([f.exception() or f.result() for f in futures])

    # -- server state
    def metadata(self, model: str | None = None) -> dict:
        """The model's metadata (inputs, outputs) as a dict."""
        return self._run(self._plan_metadata(model))

    def is_ready(self, model: str | None = None) -> bool:
        return self._run(self._plan_is_ready(model))

    def is_server_live(self) -> bool:
        return self._run(self._plan_is_server_live())

    def wait_until_ready(self, timeout_s: float = 60.0, model: str | None = None) -> None:
        self._run(self._plan_wait_until_ready(timeout_s, model))

    def statistics(self, model: str = "") -> dict[str, ModelStatistics]:
        """Triton's per-model counters ('' = every model). Cumulative; use `.delta()` on two snapshots."""
        return self._run(self._plan_statistics(model))

    def load_model(self, name: str, config: str | None = None) -> None:
        """Loads or reloads a model (needs a server started with model_control='explicit');
        `config`: a JSON model config that overrides the repository's config.pbtxt."""
        self._run(self._plan_load_model(name, config))

    def unload_model(self, name: str) -> None:
        self._run(self._plan_unload_model(name))

    def close(self) -> None:
        if not self._closed:
            self._run(self._plan_release_shared_memory())
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

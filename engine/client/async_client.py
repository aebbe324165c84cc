"""asyncio client of the speech2face model (tritonclient.grpc.aio / tritonclient.http.aio).

    async with AsyncSpeech2FaceClient("127.0.0.1:8001") as client:
        result = await client.infer("voice.wav")
        results = await client.infer_batch(clips, max_in_flight=16)

Same options, inputs, results, errors and retry decision as the blocking `Speech2FaceClient`
(both are a `ClientCore`); one client serves any number of concurrent coroutines over one
connection (gRPC) or a pool (HTTP).
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Iterable, TypeVar

import numpy as np

from speech2face.engine import contract
from speech2face.engine.client.core import (AudioSource, ClientCore, ClientOptions, Request, build_inputs,
                                            metadata_inputs, parse_result, request_bytes)
from speech2face.engine.client.errors import InferenceError
from speech2face.engine.client.shm import SharedMemoryPool
from speech2face.engine.client.stats import ModelStatistics, parse_statistics
from speech2face.engine.contract.results import FaceResult
from speech2face.engine.client.retries import NO_RETRY, RetryPolicy

T = TypeVar("T")


class AsyncSpeech2FaceClient(ClientCore):
    """asyncio client; keywords as `ClientOptions`, plus `http_connections` (the HTTP pool size)."""

    def __init__(self, url: str, protocol: str = "grpc", timeout_s: float = 60.0,
                 retry: RetryPolicy = RetryPolicy(), *, http_connections: int = 100, **options):
        super().__init__(ClientOptions(url, protocol, timeout_s, retry, **options))
        if self.protocol == "grpc":
            import tritonclient.grpc as triton
        else:
            import tritonclient.http as triton
        self._triton = triton   # the InferInput classes are the same as the blocking client's
        self._http_connections = http_connections
        self._client = self._new_client()
        self._retired: set[asyncio.Task] = set()    # tasks closing replaced HTTP pools
        self._retired_clients: list = []
        self._pool = SharedMemoryPool() if self.options.shared_memory else None

    def _new_client(self):
        if self.protocol == "grpc":
            import tritonclient.grpc.aio as triton_aio

            return triton_aio.InferenceServerClient(url=self.url)
        import tritonclient.http.aio as triton_aio

        # No aiohttp total timeout: _call bounds each attempt by the current timeout_s instead.
        return triton_aio.InferenceServerClient(url=self.url, conn_limit=self._http_connections,
                                                conn_timeout=None)

    def _reset_connection(self) -> None:
        """A fresh HTTP pool for the next requests; the old one closes once its requests have ended."""
        old, self._client = self._client, self._new_client()
        self._retired_clients.append(old)

        async def close_later():
            await asyncio.sleep(self.timeout_s)
            if old in self._retired_clients:
                self._retired_clients.remove(old)
                await old.close()

        task = asyncio.get_running_loop().create_task(close_later())
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    async def _call(self, fn: Callable[[], Awaitable[T]], retry: RetryPolicy | None = None) -> tuple[T, int]:
        attempt = 0
        while True:
            attempt += 1
            try:
                if self._closed:
                    raise InferenceError("the client is closed")
                if self.protocol == "http":
                    return await asyncio.wait_for(fn(), self.timeout_s), attempt
                return await fn(), attempt
            except asyncio.CancelledError:
                raise
            except Exception as raw:  # noqa: BLE001 - classified by the core
                error, wait = self._failed(raw, attempt, retry)
                if wait is None:
                    raise error from None
                await asyncio.sleep(wait)

    # -- inference
    async def _sendable(self, request: Request, model: str) -> Request:
        if self._needs_metadata(request, model):
            self._file_models[model] = contract.AUDIO_FILE.name in metadata_inputs(await self.metadata(model))
        return self._as_sent(request, self._takes_files(model))

    async def _shm_slot(self, request: Request):
        if self._pool is None or request.samples is None:
            return None
        slot = self._pool.acquire(request_bytes(request))
        if not slot.registered:
            await self._call(lambda: self._client.register_system_shared_memory(
                slot.name, slot.key, slot.size, headers=self._restricted_headers()), retry=NO_RETRY)
            slot.registered = True
        return slot

    async def _infer_request(self, request: Request, model: str | None) -> FaceResult:
        name = model or self.model
        request = await self._sendable(request, name)
        slot = await self._shm_slot(request)
        try:
            inputs, outputs = build_inputs(self._triton, request, slot)
            timeout = {"client_timeout": self.timeout_s} if self.protocol == "grpc" else {}

            async def attempt():
                start = time.perf_counter()
                result = await self._client.infer(name, inputs, outputs=outputs, **timeout)
                return result, time.perf_counter() - start

            (result, latency), attempts = await self._call(attempt)
        finally:
            if slot is not None:
                self._pool.release(slot)
        return parse_result(result, latency, attempts, self._where())

    async def infer(self, audio: AudioSource, sample_rate: int | None = None,
                    model: str | None = None) -> FaceResult:
        """One clip: a file path or its bytes (AUDIO_FILE), or samples with their rate (AUDIO)."""
        return await self._infer_request(self._prepare(audio, sample_rate), model)

    async def infer_file(self, source, model: str | None = None) -> FaceResult:
        return await self.infer(source, None, model)

    async def infer_batch(self, clips: Iterable[AudioSource | tuple[np.ndarray, int]], max_in_flight: int = 8,
                          model: str | None = None) -> list[FaceResult]:
        """Many clips, at most `max_in_flight` at once; results in input order; first error raised."""
        items = [c if isinstance(c, tuple) else (c, None) for c in clips]
        prepared = [self._prepare(a, r) for a, r in items]
        gate = asyncio.Semaphore(max(1, max_in_flight))

        async def one(request):
            async with gate:
                return await self._infer_request(request, model)

        outcomes = await asyncio.gather(*(one(r) for r in prepared), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return list(outcomes)

    # -- server state
    async def metadata(self, model: str | None = None) -> dict:
        name = model or self.model
        if self.protocol == "grpc":
            return (await self._call(lambda: self._client.get_model_metadata(name, as_json=True)))[0]
        return (await self._call(lambda: self._client.get_model_metadata(name)))[0]

    async def is_ready(self, model: str | None = None) -> bool:
        try:
            return bool(await self._client.is_model_ready(model or self.model))
        except Exception:  # noqa: BLE001 - not ready is the answer
            return False

    async def statistics(self, model: str = "") -> dict[str, ModelStatistics]:
        if self.protocol == "grpc":
            payload, _ = await self._call(lambda: self._client.get_inference_statistics(model, as_json=True))
        else:
            payload, _ = await self._call(lambda: self._client.get_inference_statistics(model))
        return parse_statistics(payload)

    async def load_model(self, name: str, config: str | None = None) -> None:
        """Loads or reloads a model; `config`: a JSON model config overriding config.pbtxt."""
        await self._call(lambda: self._client.load_model(name, config=config, headers=self._restricted_headers()),
                         retry=NO_RETRY)

    async def unload_model(self, name: str) -> None:
        await self._call(lambda: self._client.unload_model(name, headers=self._restricted_headers()), retry=NO_RETRY)

    async def _release_shared_memory(self) -> None:
        if self._pool is None:
            return
        for slot in self._pool.drain():
            if slot.registered:
                try:
                    await self._client.unregister_system_shared_memory(slot.name, headers=self._restricted_headers())
                except Exception:  # noqa: BLE001 - the server may be gone; the region is freed below
                    pass
        self._pool.destroy()

    async def close(self) -> None:
        if self._closed:
            return
        await self._release_shared_memory()
        self._closed = True
        for task in list(self._retired):
            task.cancel()
        for client in [*self._retired_clients, self._client]:
            await client.close()
        self._retired_clients.clear()

    async def __aenter__(self) -> "AsyncSpeech2FaceClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

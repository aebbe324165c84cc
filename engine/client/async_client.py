"""asyncio client of the speech2face model (tritonclient.grpc.aio / tritonclient.http.aio).

    async with AsyncSpeech2FaceClient("127.0.0.1:8001") as client:
        result = await client.infer("voice.webm")
        results = await client.infer_batch(clips, max_in_flight=16)

Same options, inputs, results, errors and retry decision as the blocking `Speech2FaceClient`: both
drive the same core plans (engine/client/core.py). This one performs their operations by awaiting:
calls on one connection (gRPC) or a pool (HTTP, each attempt bounded by timeout_s), asyncio.sleep,
and CPU-bound work (decoding a file) in a thread, so the event loop keeps serving other coroutines.
"""

from __future__ import annotations

import asyncio
from typing import Iterable

import numpy as np

from speech2face.engine.client.audio_inputs import AudioSource
from speech2face.engine.client.core import Call, ClientCore, ClientOptions, Plan, Reset, Sleep, Work, advance, \
    batch_items, first_failure
from speech2face.engine.client.retries import RetryPolicy
from speech2face.engine.client.stats import ModelStatistics
from speech2face.engine.contract.results import FaceResult


class AsyncSpeech2FaceClient(ClientCore):
    """asyncio client; keywords as `ClientOptions`, plus `http_connections` (the HTTP pool size)."""

    def __init__(self, url: str, protocol: str = "grpc", timeout_s: float = 60.0,
                 retry: RetryPolicy = RetryPolicy(), *, http_connections: int = 100, **options):
        super().__init__(ClientOptions(url, protocol, timeout_s, retry, **options))
        self._http_connections = http_connections
        self._client = self._new_client()
        self._retired: set[asyncio.Task] = set()    # tasks closing replaced HTTP pools
        self._retired_clients: list = []

    def _new_client(self):
        if self.protocol == "grpc":
            import tritonclient.grpc.aio as triton_aio

            return triton_aio.InferenceServerClient(url=self.url)
        import tritonclient.http.aio as triton_aio

        # No aiohttp total timeout: _perform bounds each call by the current timeout_s instead.
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

    # -- the driver
    async def _perform(self, op):
        if isinstance(op, Call):
            call = getattr(self._client, op.method)(*op.args, **op.kwargs)
            return await (asyncio.wait_for(call, self.timeout_s) if self.protocol == "http" else call)
        if isinstance(op, Sleep):
            return await asyncio.sleep(op.seconds)
        if isinstance(op, Work):
            return await asyncio.to_thread(op.fn)
        if isinstance(op, Reset):
            return self._reset_connection()
        raise TypeError(f"unknown operation {op!r}")

    async def _run(self, plan: Plan):
        """Drives a core plan to its answer, awaiting each operation."""
        step = advance(plan)
        while step.op is not None:
            step = advance(plan, await self._attempt(step.op))
        return step.value

    async def _attempt(self, op) -> tuple:
        try:
            return await self._perform(op), None
        except Exception as raw:  # noqa: BLE001 - handed to the plan, which classifies it
            return None, raw

    # -- inference
    async def infer(self, audio: AudioSource, sample_rate: int | None = None,
                    model: str | None = None) -> FaceResult:
        """One clip: a file path or its bytes (WAV/FLAC/OGG as AUDIO_FILE, any other format FFmpeg reads
        decoded here), or samples with their rate (AUDIO)."""
        return await self._run(self._plan_infer(audio, sample_rate, model))

    async def infer_file(self, source, model: str | None = None) -> FaceResult:
        return await self.infer(source, None, model)

    async def infer_batch(self, clips: Iterable[AudioSource | tuple[np.ndarray, int]], max_in_flight: int = 8,
                          model: str | None = None) -> list[FaceResult]:
        """Many clips, at most `max_in_flight` at once; results in input order; first error raised."""
        prepared = [await self._run(self._plan_prepare(a, r)) for a, r in batch_items(clips)]  # input errors first
        gate = asyncio.Semaphore(max(1, max_in_flight))

        async def one(request):
            async with gate:
                return await self._run(self._plan_send(request, model))

        return first_failure(list(await asyncio.gather(*(one(r) for r in prepared), return_exceptions=True)))

    # -- server state
    async def metadata(self, model: str | None = None) -> dict:
        return await self._run(self._plan_metadata(model))

    async def is_ready(self, model: str | None = None) -> bool:
        return await self._run(self._plan_is_ready(model))

    async def is_server_live(self) -> bool:
        return await self._run(self._plan_is_server_live())

    async def wait_until_ready(self, timeout_s: float = 60.0, model: str | None = None) -> None:
        await self._run(self._plan_wait_until_ready(timeout_s, model))

    async def statistics(self, model: str = "") -> dict[str, ModelStatistics]:
        return await self._run(self._plan_statistics(model))

    async def load_model(self, name: str, config: str | None = None) -> None:
        """Loads or reloads a model; `config`: a JSON model config overriding config.pbtxt."""
        await self._run(self._plan_load_model(name, config))

    async def unload_model(self, name: str) -> None:
        await self._run(self._plan_unload_model(name))

    async def close(self) -> None:
        if self._closed:
            return
        await self._run(self._plan_release_shared_memory())
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

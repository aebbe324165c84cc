"""asyncio client of the speech2face ensemble (tritonclient.grpc.aio / tritonclient.http.aio).

    async with AsyncSpeech2FaceClient("127.0.0.1:8001") as client:
        result = await client.infer("voice.wav")
        results = await client.infer_batch(clips, max_in_flight=16)

Same inputs, results, errors and retry policy as the blocking `Speech2FaceClient`; one client
serves any number of concurrent coroutines over one connection (gRPC) or a pool (HTTP).
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Iterable, TypeVar

import numpy as np

from speech2face.engine import contract
from speech2face.engine.client import (MAX_REQUEST_BYTES, MAX_SECONDS, NO_RETRY, AudioSource, FaceResult,
                                       InferenceError, ModelStatistics, RetryPolicy, ServerUnavailable,
                                       _check_protocol, build_inputs, classify_error, load_audio,
                                       parse_result, parse_statistics, prepare_audio)

T = TypeVar("T")


class AsyncSpeech2FaceClient:
    """asyncio client; timeout_s is per attempt, `retry` retries ServerUnavailable only."""

    def __init__(self, url: str, protocol: str = "grpc", timeout_s: float = 60.0,
                 retry: RetryPolicy = RetryPolicy(), *, model: str = contract.ENSEMBLE,
                 validate: bool = True, max_seconds: float = MAX_SECONDS,
                 max_request_bytes: int = MAX_REQUEST_BYTES, http_connections: int = 100):
        _check_protocol(protocol)
        if url.startswith(("http://", "https://", "grpc://")):
            url = url.split("://", 1)[1]
        if protocol == "grpc":
            import tritonclient.grpc as triton
            import tritonclient.grpc.aio as triton_aio

            self._client = triton_aio.InferenceServerClient(url=url)
        else:
            import tritonclient.http as triton
            import tritonclient.http.aio as triton_aio

            self._client = triton_aio.InferenceServerClient(url=url, conn_limit=http_connections,
                                                            conn_timeout=timeout_s)
        self._triton = triton   # the InferInput classes are the same as the blocking client's
        self.url = url
        self.protocol = protocol
        self.timeout_s = timeout_s
        self.retry = retry
        self.model = model
        self.validate = validate
        self.max_seconds = max_seconds
        self.max_request_bytes = max_request_bytes
        self._closed = False

    def _where(self) -> str:
        return f"{self.protocol} server at {self.url}"

    async def _call(self, fn: Callable[[], Awaitable[T]], retry: RetryPolicy | None = None) -> tuple[T, int]:
        policy = retry or self.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                if self._closed:
                    raise InferenceError("the client is closed")
                if self.protocol == "http":
                    # aiohttp's own total timeout is conn_timeout; this bounds the coroutine too.
                    return await asyncio.wait_for(fn(), self.timeout_s), attempt
                return await fn(), attempt
            except asyncio.CancelledError:
                raise
            except Exception as raw:  # noqa: BLE001 - classified below
                error = classify_error(raw, self.url, self.protocol)
                if isinstance(error, ServerUnavailable) and attempt < policy.max_attempts and not self._closed:
                    await asyncio.sleep(policy.backoff(attempt))
                    continue
                error.attempts = attempt
                if isinstance(error, ServerUnavailable) and attempt > 1:
                    error.args = (f"{error.args[0]} (gave up after {attempt} attempts)",)
                raise error from None

    def _prepare(self, audio: AudioSource, sample_rate) -> tuple[np.ndarray, int]:
        samples, rate = load_audio(audio, sample_rate)
        if self.validate:
            return prepare_audio(samples, rate, max_seconds=self.max_seconds,
                                 max_request_bytes=self.max_request_bytes)
        return np.asarray(samples, dtype=np.float32).reshape(-1), int(rate)

    async def infer(self, audio: AudioSource, sample_rate: int | None = None,
                    model: str | None = None) -> FaceResult:
        samples, rate = self._prepare(audio, sample_rate)
        inputs, outputs = build_inputs(self._triton, samples, rate)
        name = model or self.model

        async def attempt():
            start = time.perf_counter()
            if self.protocol == "grpc":
                result = await self._client.infer(name, inputs, outputs=outputs, client_timeout=self.timeout_s)
            else:
                result = await self._client.infer(name, inputs, outputs=outputs)
            return result, time.perf_counter() - start

        (result, latency), attempts = await self._call(attempt)
        return parse_result(result, latency, attempts, self._where())

    async def infer_batch(self, clips: Iterable[AudioSource | tuple[np.ndarray, int]], max_in_flight: int = 8,
                          model: str | None = None) -> list[FaceResult]:
        """Many clips, at most `max_in_flight` at once; results in input order; first error raised."""
        items = [c if isinstance(c, tuple) else (c, None) for c in clips]
        prepared = [self._prepare(a, r) for a, r in items]
        gate = asyncio.Semaphore(max(1, max_in_flight))

        async def one(audio, rate):
            async with gate:
                return await self.infer(audio, rate, model)

        outcomes = await asyncio.gather(*(one(a, r) for a, r in prepared), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return list(outcomes)

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
        await self._call(lambda: self._client.load_model(name, config=config), retry=NO_RETRY)

    async def unload_model(self, name: str) -> None:
        await self._call(lambda: self._client.unload_model(name), retry=NO_RETRY)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.close()

    async def __aenter__(self) -> "AsyncSpeech2FaceClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

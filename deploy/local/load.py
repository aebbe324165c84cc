"""Closed-loop load at a fixed concurrency through the project's client (engine/client/sync_client.py), which
retries UNAVAILABLE with backoff. Counts what the caller of the client sees: successes, failures,
and requests that needed a retry."""

from __future__ import annotations

import collections
import threading
import time

import numpy as np

from speech2face.engine.client import Speech2FaceClient


class Load:
    def __init__(self, url: str, audio: np.ndarray, rate: int, concurrency: int = 16):
        self.url, self.audio, self.rate, self.concurrency = url, audio, rate, concurrency
        self.ok = 0
        self.failed: list[str] = []
        self.retried = 0
        self.latencies: collections.deque[float] = collections.deque(maxlen=100_000)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._client: Speech2FaceClient | None = None

    def _worker(self) -> None:
        while not self._stop.is_set():
            try:
                result = self._client.infer(self.audio, self.rate)
            except Exception as error:  # noqa: BLE001 - every failure the client reports counts
                with self._lock:
                    self.failed.append(f"{type(error).__name__}: {error}")
                continue
            with self._lock:
                self.ok += 1
                self.retried += result.attempts > 1
                self.latencies.append(result.latency_s)

    def start(self) -> "Load":
        self._client = Speech2FaceClient(self.url, "grpc", timeout_s=30.0)
        self._threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.concurrency)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> "Load":
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self._client.close()
        return self

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return self.ok, len(self.failed)

    def __enter__(self) -> "Load":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_requests(load: Load, count: int, timeout_s: float = 120.0) -> None:
    """Until `count` more requests have succeeded."""
    target = load.snapshot()[0] + count
    deadline = time.monotonic() + timeout_s
    while load.snapshot()[0] < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"load: fewer than {count} requests in {timeout_s} s ({load.snapshot()})")
        time.sleep(0.1)

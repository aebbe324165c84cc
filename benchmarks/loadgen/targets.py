"""The engines under load. Each turns one payload into the L2-normalised feature of its clip.

A payload is what the engine is sent for a clip: `(samples, rate)`, or a file's bytes for the
AUDIO_FILE target. `prepare` gives the payloads and the audio a reference should see (a FLAC
file decodes to 16-bit samples, so its reference is the decoded audio, not the float clip).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from speech2face.benchmarks.loadgen.clips import flac_file

Clip = tuple[np.ndarray, int]


class Target:
    """One engine under load."""

    name = "target"
    served = False

    def prepare(self, clips: list[Clip]) -> tuple[list, list[Clip]]:
        """(payloads to send, the clips as the engine sees them)."""
        return list(clips), list(clips)

    async def open(self) -> None: ...

    async def infer(self, payload) -> np.ndarray:
        """The feature for one payload; every engine defines its own."""
        raise NotImplementedError

    async def statistics(self):
        """{model: ModelStatistics} (cumulative), or None when the engine keeps none."""
        return None

    async def stage_totals(self) -> dict:
        """The served model's own stage counters, or {} when the engine has none."""
        return {}

    async def close(self) -> None: ...

    def describe(self) -> dict:
        return {"name": self.name}


class TritonTarget(Target):
    """The Triton server at `url`; `send`: "samples" (AUDIO), "file" (FLAC as AUDIO_FILE) or
    "shm" (AUDIO through system shared memory)."""

    served = True

    def __init__(self, name: str, url: str, protocol: str = "grpc", note: str = "", send: str = "samples",
                 metrics_url: str | None = None):
        if send not in ("samples", "file", "shm"):
            raise ValueError(f"send must be 'samples', 'file' or 'shm', got {send!r}")
        self.name, self.url, self.protocol, self.note, self.send = name, url, protocol, note, send
        self.metrics_url = metrics_url  # the model's stage metrics go into the report when known
        self.client = None

    def prepare(self, clips):
        if self.send != "file":
            return super().prepare(clips)
        files = [flac_file(audio, rate) for audio, rate in clips]
        return [data for data, _ in files], [(decoded, rate) for (_, decoded), (_, rate) in zip(files, clips)]

    async def open(self):
        from speech2face.engine.client.async_client import AsyncSpeech2FaceClient
        from speech2face.engine.client.retries import NO_RETRY

        # No retries under load: a failure must show up as an error, not as a slow success.
        self.client = AsyncSpeech2FaceClient(self.url, self.protocol, timeout_s=120.0, retry=NO_RETRY,
                                             send_files="file", shared_memory=self.send == "shm")

    async def infer(self, payload):
        if isinstance(payload, bytes):
            return (await self.client.infer_file(payload)).feature
        return (await self.client.infer(*payload)).feature

    async def statistics(self):
        return await self.client.statistics()

    async def stage_totals(self) -> dict:
        """The served model's execute() stage counters (engine/runtime/model_metrics.py), or {} unknown."""
        if not self.metrics_url:
            return {}
        from speech2face.engine import contract
        from speech2face.engine.runtime.model_metrics import scrape, stage_totals

        return await asyncio.to_thread(lambda: stage_totals(scrape(self.metrics_url), contract.ENSEMBLE))

    async def close(self):
        if self.client is not None:
            await self.client.close()

    def describe(self):
        return {"name": self.name, "url": self.url, "protocol": self.protocol, "send": self.send, "note": self.note}


class FastAPITarget(Target):
    served = True

    def __init__(self, name: str, url: str):
        self.name, self.url = name, url
        self.session = None

    async def open(self):
        import aiohttp

        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120),
                                             connector=aiohttp.TCPConnector(limit=256))

    async def infer(self, payload):
        audio, rate = payload
        body = np.ascontiguousarray(audio, dtype="<f4").tobytes()
        async with self.session.post(f"http://{self.url}/infer", params={"sample_rate": str(rate)}, data=body,
                                     headers={"Content-Type": "application/octet-stream"}) as response:
            answer = await response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {answer[:200].decode(errors='replace')}")
            dim = int(response.headers["X-Feature-Dim"])
        return np.frombuffer(answer[: 4 * dim], dtype="<f4")

    async def close(self):
        if self.session is not None:
            await self.session.close()

    def describe(self):
        return {"name": self.name, "url": self.url, "note": "FastAPI + uvicorn (1 worker) + ONNX Runtime"}


class InProcessTarget(Target):
    """A blocking callable run on a thread pool: concurrency N = N threads calling it."""

    def __init__(self, name: str, fn: Callable[[np.ndarray, int], np.ndarray], note: str = "", threads: int = 64):
        self.name, self.fn, self.note = name, fn, note
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def infer(self, payload):
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.fn, *payload)

    async def close(self):
        self.pool.shutdown(wait=True)

    def describe(self):
        return {"name": self.name, "note": self.note}


def served_options():
    """The RuntimeOptions the default cpu repository's fused model runs with (its BatchingPolicy),
    so that `ort` is the very runtime `triton` serves, minus the serving path."""
    from speech2face.engine.repository.model_configs import BatchingPolicy

    return BatchingPolicy().runtime_options()


def ort_function(bundle, options=None) -> Callable[[np.ndarray, int], np.ndarray]:
    """LocalRuntime in process; `options`: RuntimeOptions (default: as the default repository serves)."""
    from speech2face.engine.runtime.local_runtime import LocalRuntime

    runtime = LocalRuntime(bundle, options=options or served_options())
    return lambda audio, rate: runtime.infer(audio, rate).feature


def torch_function(bundle, threads: int = 2) -> tuple[Callable[[np.ndarray, int], np.ndarray], str]:
    """PyTorch eager on the bundle's checkpoint (or the fixed-seed untrained default), same features."""
    import torch
    import torch.nn.functional as F

    from speech2face.engine.features.kernels import compute_features
    from speech2face.engine.features.resampling import validate_audio

    checkpoint_path = Path(bundle.directory) / "checkpoint.pt"
    if checkpoint_path.exists():
        from speech2face.training.checkpoint import load_checkpoint

        checkpoint, source = load_checkpoint(checkpoint_path), str(checkpoint_path)
    else:
        from speech2face.training.default_model import untrained_default

        checkpoint, source = untrained_default(), "untrained_default() (no checkpoint.pt in the bundle)"
    from speech2face.training.networks.face_decoder import to_uint8_image

    torch.set_num_threads(threads)
    encoder, decoder = checkpoint.voice_encoder.eval(), checkpoint.face_decoder.eval()
    spec = bundle.feature_spec

    def run(audio, rate):
        features = compute_features([validate_audio(audio, rate, spec)], spec, threads)
        with torch.inference_mode():
            raw = encoder(torch.from_numpy(features))
            _landmarks, image = decoder(raw)
            to_uint8_image(image)
            return F.normalize(raw, dim=1)[0].numpy()

    return run, source

"""`make demo`: a face from a voice through the real Triton server, on the built-in model."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PIL import Image


def main() -> int:
    from speech2face.engine.runtime import builtin
    from speech2face.engine.contract.audio_files import read_audio
    from speech2face.engine.client import Speech2FaceClient
    from speech2face.engine.repository.cpu_repository import write_default_repository
    from speech2face.engine.server.launcher import ServerOptions, TritonServer

    timings: list[tuple[str, float]] = []

    def stage(name: str, start: float) -> float:
        now = time.perf_counter()
        timings.append((name, now - start))
        return now

    t = time.perf_counter()
    bundle = builtin.default_bundle()
    repository = write_default_repository()
    t = stage("prepare model repository", t)
    with TritonServer(ServerOptions(model_repository=repository)) as server:
        t = stage("start tritonserver", t)
        samples, rate = read_audio(builtin.SAMPLE_VOICE)
        with Speech2FaceClient(server.grpc_url) as client:
            client.infer(samples, rate)  # first request pays lazy initialisation
            t = stage("first request (warm-up)", t)
            result = client.infer(samples, rate)
            t = stage("request over gRPC", t)
    t = stage("stop tritonserver", t)

    out = builtin.ARTIFACTS / "demo_face.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(result.image).resize((256, 256), Image.BICUBIC).save(out)
    print(f"\nvoice: {builtin.SAMPLE_VOICE.relative_to(builtin.PROJECT_ROOT)} "
          f"({len(samples) / rate:.1f} s at {rate} Hz)")
    print(f"model: {bundle.directory.relative_to(builtin.PROJECT_ROOT)} "
          f"({bundle.provenance.get('source', 'unknown source')})")
    print(f"server: tritonserver, gRPC {server.grpc_url}, repository {repository}")
    print(f"face feature: {result.feature.shape[0]}-d, first values {result.feature[:4].round(3)}")
    print(f"face image: {result.image.shape} -> {out}\n")
    for name, seconds in timings:
        print(f"  {name:<28} {seconds * 1e3:8.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

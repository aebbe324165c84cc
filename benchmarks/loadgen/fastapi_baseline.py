"""The baseline: what a user would write without Triton. FastAPI + uvicorn + ONNX Runtime.

    python -m speech2face.benchmarks.loadgen.fastapi_baseline --bundle models/default --port 8000

POST /infer?sample_rate=16000 with the float32 little-endian samples as the body; the answer
is the L2-normalised feature (float32) followed by the uint8 H x W x 3 image, as raw bytes
(headers X-Feature-Dim and X-Image-Size give the shapes). Bad audio gets HTTP 400 naming the
problem. Same pipeline and the same code as the served ensemble (validate_audio, the C++ feature
kernel, the two ONNX graphs), same thread counts (2), no batching: one request per session run,
requests handled concurrently on Starlette's thread pool. One uvicorn worker (more workers would
each hold a copy of the models and fight for the same 2 cores).
"""


import argparse
from pathlib import Path

import numpy as np


def create_app(bundle_dir: str | Path, threads: int = 2):
    from fastapi import FastAPI, HTTPException, Request, Response
    from starlette.concurrency import run_in_threadpool

    from speech2face.engine import contract
    from speech2face.engine.contract.bundle import load_bundle
    from speech2face.engine.features.kernels import compute_features
    from speech2face.engine.contract.audio_rules import AudioError
    from speech2face.engine.features.resampling import validate_audio
    from speech2face.engine.runtime.onnx_runner import open_session

    bundle = load_bundle(bundle_dir)
    spec = bundle.feature_spec
    encoder = open_session(bundle.voice_encoder, threads)
    decoder = open_session(bundle.face_decoder, threads)
    app = FastAPI(title="speech2face baseline (FastAPI + ONNX Runtime)")

    def run(samples: np.ndarray, sample_rate: int) -> bytes:
        clip = validate_audio(samples, sample_rate, spec)
        features = compute_features([clip], spec, threads)
        raw, normalized = encoder.run(None, {contract.ONNX_ENCODER_INPUT: features})
        image, _landmarks = decoder.run(None, {contract.ONNX_DECODER_INPUT: raw})
        return normalized[0].astype(np.float32).tobytes() + image[0].astype(np.uint8).tobytes()

    @app.get("/health")
    def health():
        return {"ready": True}

    @app.post("/infer")
    async def infer(request: Request, sample_rate: int):
        body = await request.body()
        if len(body) % 4:
            raise HTTPException(400, "body must be float32 samples (a multiple of 4 bytes)")
        samples = np.frombuffer(body, dtype="<f4")
        try:
            payload = await run_in_threadpool(run, samples, sample_rate)
        except AudioError as error:
            raise HTTPException(400, str(error)) from None
        return Response(payload, media_type="application/octet-stream",
                        headers={"X-Feature-Dim": str(bundle.feature_dim), "X-Image-Size": str(bundle.image_size)})

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="model bundle directory (model.json + two ONNX files)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op and kernel threads")
    args = parser.parse_args(argv)
    import uvicorn

    uvicorn.run(create_app(args.bundle, args.threads), host=args.host, port=args.port,
                log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

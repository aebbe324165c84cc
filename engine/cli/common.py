"""What several commands share: the usage error, server options, the repository argument, the
server a client command talks to, and the extras that install each optional dependency."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path


class UsageError(Exception):
    """A wrong argument: one line, exit 2."""


# The advice for each optional top-level module a command may import: the full package's extra
# that installs it, or, for the client package's own needs, what installs them there.
_FULL_EXTRAS = {"torch": "train", "onnx": "gpu", "onnxscript": "train", "onnxconverter_common": "train",
                "nvidia": "gpu", "pytriton": "serve", "onnxruntime": "serve", "soxr": "serve",
                "matplotlib": "bench", "fastapi": "bench", "uvicorn": "bench",
                "scipy": "train", "tqdm": "train", "dlib": "data", "yt_dlp": "data"}
ADVICE = {**{module: f"the [{extra}] extra: pip install 'speech2face[{extra}]'"
             for module, extra in _FULL_EXTRAS.items()},
          "av": "pip install av (PyAV, which decodes what FFmpeg reads)",
          "gradio": "the [web] extra: pip install 'speech2face-client[web]'",
          "gradio_client": "the [web] extra: pip install 'speech2face-client[web]'"}
# Parts of the project a client-only install lacks: they come with the full package's [serve] extra.
FULL_PACKAGE = ("speech2face.engine.features", "speech2face.engine.runtime", "speech2face.engine.repository",
                "speech2face.engine.server", "speech2face.export", "speech2face.training", "speech2face.benchmarks",
                "speech2face.model_repository")


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """`pip install ...` advice for a missing module, or None when it is no optional dependency."""
    name = error.name or ""
    if name.startswith(FULL_PACKAGE):
        return "the full package: pip install 'speech2face[serve]'"
    return ADVICE.get(name.split(".")[0])


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


# Triton's usual ports: `s2f serve` listens there by default, and `s2f infer` reuses a server found there.
LOCAL_PORTS = {"grpc": 8001, "http": 8000, "metrics": 8002}


def add_server_options(parser: argparse.ArgumentParser, ports: tuple[int, int, int] = (0, 0, 0)) -> None:
    """--host and the ports (gRPC, HTTP, metrics); 0 picks a free port."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--grpc-port", type=int, default=ports[0], help=f"default {ports[0]}; 0 picks a free port")
    parser.add_argument("--http-port", type=int, default=ports[1], help=f"default {ports[1]}")
    parser.add_argument("--metrics-port", type=int, default=ports[2], help=f"default {ports[2]}")
    parser.add_argument("--open-admin-apis", action="store_true",
                        help="serve the shared-memory, model-repository, logging and trace APIs without the "
                             "admin key (docs/SECURITY.md); by default they need it")


def server_options(args, repository: Path):
    from speech2face.engine.server.launcher import ServerOptions

    return ServerOptions(model_repository=repository, host=args.host, grpc_port=args.grpc_port,
                         http_port=args.http_port, metrics_port=args.metrics_port,
                         model_control=getattr(args, "model_control", "none"),
                         open_admin_apis=getattr(args, "open_admin_apis", False),
                         # p50/p99 per model on the metrics port (Prometheus summaries, Triton >= 2.40)
                         extra_args=("--metrics-config=summary_latencies=true",)
                         if getattr(args, "latency_summaries", False) else ())


def repository(args) -> Path:
    """--repository, checked, or a repository of the built-in model written now."""
    if args.repository:
        path = Path(args.repository)
        if not (path.is_dir() and any(path.glob("*/config.pbtxt"))):
            raise UsageError(f"{path}: not a Triton model repository (write one with `s2f export`)")
        return path
    from speech2face.engine.repository.cpu_repository import write_default_repository

    return write_default_repository()


def _local_server(protocol: str) -> str | None:
    """127.0.0.1 at the default port, when a server there serves the speech2face model."""
    from speech2face.engine.client import Speech2FaceClient

    url = f"127.0.0.1:{LOCAL_PORTS[protocol]}"
    with Speech2FaceClient(url, protocol, timeout_s=2.0) as client:
        return url if client.is_ready() else None


@contextlib.contextmanager
def endpoint(args):
    """The server at --url, one already up on the default local port, or a temporary local one."""
    url = args.url or (None if args.repository else _local_server(args.protocol))
    if url:
        yield url
        return
    try:
        from speech2face.engine.server.launcher import TritonServer
    except ModuleNotFoundError:
        raise UsageError(f"no server answers on 127.0.0.1:{LOCAL_PORTS[args.protocol]}; pass --url HOST:PORT of "
                         "a running server (starting one here needs the full package: "
                         "pip install 'speech2face[serve]')") from None
    start = time.perf_counter()
    with TritonServer(server_options(args, repository(args))) as server:
        print(f"started a local server in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        yield server.grpc_url if args.protocol == "grpc" else server.http_url

"""Launches the real `tritonserver` binary shipped in the nvidia-pytriton wheel.

Binds 127.0.0.1 unless told otherwise, finds free ports, waits for readiness, shows the
server log when start-up fails, and stops cleanly (also as a context manager).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


class ServerError(RuntimeError):
    """The server could not start or stopped unexpectedly; the message carries its log tail."""


def _pytriton_dir() -> Path:
    try:
        import pytriton
    except ImportError as error:
        raise ServerError("the tritonserver binary comes with nvidia-pytriton: pip install nvidia-pytriton") from error
    return Path(pytriton.__file__).resolve().parent


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def prepare_backends(directory: Path) -> Path:
    """A backend directory holding the python backend and the stub for the running Python."""
    dist = _pytriton_dir() / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        raise ServerError(f"nvidia-pytriton ships no python backend stub for Python {version}")
    python_dir = directory / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    for source in [stub, *(dist / "backends" / "python").glob("*.*")]:
        target = python_dir / source.name
        if not target.exists():
            shutil.copy2(source, target)
    return directory


@dataclasses.dataclass
class ServerOptions:
    model_repository: Path
    host: str = "127.0.0.1"
    grpc_port: int = 0            # 0: pick a free port
    http_port: int = 0
    metrics_port: int = 0
    model_control: str = "none"   # "explicit" enables the load/unload API
    log_verbose: int = 0
    startup_timeout_s: float = 120.0
    extra_args: tuple[str, ...] = ()
    # With model_control="explicit": the models loaded at start-up ("*": all of them, the default).
    load_models: tuple[str, ...] = ()
    # Refuse HTTP requests larger than this many bytes. Passed as --http-max-input-size where the
    # binary has it; the tritonserver in nvidia-pytriton 0.7 (Triton 2.5x) does not, and asking
    # for a limit it cannot enforce is an error rather than silently ignored. Without the flag the
    # limits are the client's (engine/client.py) and the preprocess model's 10-minute rule.
    http_max_input_bytes: int | None = None

    def __post_init__(self):
        if self.model_control not in ("none", "explicit", "poll"):
            raise ValueError(f"model_control must be 'none', 'explicit' or 'poll', got {self.model_control!r}")
        if self.load_models and self.model_control != "explicit":
            raise ValueError("load_models needs model_control='explicit'")


@functools.lru_cache(maxsize=4)
def supported_flags(binary: str | None = None) -> frozenset[str]:
    """The --flags this tritonserver binary accepts (parsed from its --help)."""
    binary = binary or str(_pytriton_dir() / "tritonserver" / "bin" / "tritonserver")
    env = os.environ.copy()
    libs = _pytriton_dir().parent / "nvidia_pytriton.libs"
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [env.get("LD_LIBRARY_PATH"), str(libs)]))
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(re.findall(r"^\s*(--[a-z0-9-]+)", out.stdout + out.stderr, flags=re.MULTILINE))


class TritonServer:
    def __init__(self, options: ServerOptions):
        self.options = options
        self.grpc_port = options.grpc_port or free_port(options.host)
        self.http_port = options.http_port or free_port(options.host)
        self.metrics_port = options.metrics_port or free_port(options.host)
        self._workdir = Path(tempfile.mkdtemp(prefix="s2f-triton-"))
        self._log_path = self._workdir / "tritonserver.log"
        self._process: subprocess.Popen | None = None

    @property
    def grpc_url(self) -> str:
        return f"{self._client_host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"{self._client_host}:{self.http_port}"

    @property
    def _client_host(self) -> str:
        return "127.0.0.1" if self.options.host in ("0.0.0.0", "") else self.options.host

    def _optional_args(self) -> list[str]:
        o = self.options
        args: list[str] = []
        if o.model_control == "explicit":
            args += [f"--load-model={name}" for name in (o.load_models or ("*",))]
        if o.http_max_input_bytes is not None:
            if "--http-max-input-size" not in supported_flags():
                raise ServerError("this tritonserver has no --http-max-input-size flag; request size is "
                                  "limited by the client and by the preprocess model's 10-minute rule")
            args.append(f"--http-max-input-size={int(o.http_max_input_bytes)}")
        return args

    def command(self) -> list[str]:
        o = self.options
        return [
            str(_pytriton_dir() / "tritonserver" / "bin" / "tritonserver"),
            f"--model-repository={Path(o.model_repository).resolve()}",
            f"--backend-directory={prepare_backends(self._workdir / 'backends')}",
            f"--grpc-address={o.host}", f"--grpc-port={self.grpc_port}",
            f"--http-address={o.host}", f"--http-port={self.http_port}",
            f"--metrics-address={o.host}", f"--metrics-port={self.metrics_port}",
            f"--model-control-mode={o.model_control}",
            f"--log-verbose={o.log_verbose}",
            "--allow-gpu-metrics=false", "--exit-on-error=true", "--strict-readiness=true",
            *self._optional_args(),
            *o.extra_args,
        ]

    def _environment(self) -> dict[str, str]:
        env = os.environ.copy()
        # The Python backend stub takes its environment from the first python on PATH.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        libs = _pytriton_dir().parent / "nvidia_pytriton.libs"
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [env.get("LD_LIBRARY_PATH"), str(libs)]))
        return env

    def log_tail(self, lines: int = 60) -> str:
        if not self._log_path.exists():
            return ""
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> "TritonServer":
        log = open(self._log_path, "wb")
        self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         env=self._environment(), start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.options.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerError(f"tritonserver exited with code {self._process.returncode}:\n{self.log_tail()}")
            if self.is_ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise ServerError(f"tritonserver not ready after {self.options.startup_timeout_s:.0f} s:\n{self.log_tail()}")

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait(self) -> int:
        assert self._process is not None
        return self._process.wait()

    @property
    def log_path(self) -> Path:
        return self._log_path

    def kill(self) -> None:
        """SIGKILL, no draining: what a crash looks like to clients (for reliability tests)."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def stop(self, timeout_s: float = 30.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # tritonserver drains in-flight requests on SIGINT
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(self._workdir / "backends", ignore_errors=True)

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def serve(model_repository: str | Path, **options):
    with TritonServer(ServerOptions(model_repository=Path(model_repository), **options)) as server:
        yield server

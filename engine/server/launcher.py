"""Launches the real `tritonserver` binary shipped in the nvidia-pytriton wheel, safe by default.

- Binds 127.0.0.1 unless told otherwise; refuses a port already in use in one line, and checks
  after readiness that the ports answer from this server's own process.
- Restricts the shared-memory, model-repository, logging and trace APIs behind the admin key
  (engine/contract/admin_key.py) unless `open_admin_apis` is set.
- Runs the server's process tree under umask 077, and makes the Python backend's shared-memory
  regions (which hold request audio) owner-only before reporting ready (the backend itself
  creates them 0644 whatever the umask).
- Removes dead servers' regions and work folders at start (engine/server/leftovers.py) and its own at stop.
- Ties the server's life to the thread that started it (PR_SET_PDEATHSIG): `kill -9` of `s2f serve`
  leaves no server behind, and a new `s2f serve` finds the ports free.
- Reports a model that fails to load as soon as the log says so; a Ctrl-C during start stops the
  server before the KeyboardInterrupt goes on.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import functools
import os
import re
import secrets
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
from typing import Callable

from speech2face.engine.server import leftovers, shim
from speech2face.engine.contract.admin_key import admin_key, restriction_flags


# Log lines that mean a model will not load. The Python backend waits for a stub that failed to
# start (e.g. no model.py) until its timeout, so its own line is the earliest word of the failure.
_LOAD_FAILURE_SIGNS = ("Failed to preinitialize Python stub", "Failed to initialize Python stub", "failed to load '")


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


def client_url(host: str, port: int) -> str:
    """host:port for a client on this machine of a server bound to `host` (any address: loopback)."""
    return f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"


def resolve_ports(host: str, ports: tuple[int, ...]) -> list[int]:
    """The given ports, with each 0 replaced by a distinct free port (all held open while picking)."""
    held: list[socket.socket] = []
    try:
        resolved = []
        for port in ports:
            if not port:
                held.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                held[-1].bind((host, 0))
                port = held[-1].getsockname()[1]
            resolved.append(port)
        return resolved
    finally:
        for s in held:
            s.close()


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
    # Refuse HTTP requests larger than this many bytes: --http-max-input-size, where the binary has
    # it (Triton 2.51 from nvidia-pytriton does not, and asking for a limit it cannot enforce is an
    # error rather than silently ignored). Without it the limits are the client's and the
    # deployment proxy's (docs/SECURITY.md, "Limits").
    http_max_input_bytes: int | None = None
    # The shared-memory, model-repository, logging and trace APIs need the admin key unless this is set.
    open_admin_apis: bool = False
    admin_key: str | None = None   # None: engine/contract/admin_key.py's key (env S2F_ADMIN_KEY or the user's key file)
    stop_timeout_s: float = 30.0   # SIGINT drain bound before SIGKILL of the whole process group

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
        self.grpc_port, self.http_port, self.metrics_port = resolve_ports(
            options.host, (options.grpc_port, options.http_port, options.metrics_port))
        leftovers.clean_stale()
        self._workdir = Path(tempfile.mkdtemp(prefix=leftovers.WORKDIR_PREFIX))
        (self._workdir / leftovers.OWNER_FILE).write_text(f"{os.getpid()}\n")
        atexit.register(self.stop)   # the work folder goes at exit even if the server never started
        self._log_path = self._workdir / "tritonserver.log"
        self._shm_prefix = f"{leftovers.SHM_PREFIX}{self._workdir.name}_"
        self._process: subprocess.Popen | None = None
        self._admin_key = options.admin_key or (None if options.open_admin_apis else _server_admin_key())

    @property
    def grpc_url(self) -> str:
        return client_url(self.options.host, self.grpc_port)

    @property
    def http_url(self) -> str:
        return client_url(self.options.host, self.http_port)

    @property
    def metrics_url(self) -> str:
        return client_url(self.options.host, self.metrics_port)

    @property
    def returncode(self) -> int | None:
        return self._process.poll() if self._process is not None else None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def admin_headers(self) -> dict[str, str]:
        """The headers that open this server's restricted APIs over HTTP and gRPC ({} when they are open)."""
        from speech2face.engine.contract.admin_key import admin_headers

        return admin_headers("grpc", self._admin_key) if self._admin_key and not self.options.open_admin_apis else {}

    def _optional_args(self) -> list[str]:
        o = self.options
        args: list[str] = []
        if o.model_control == "explicit":
            args += [f"--load-model={name}" for name in (o.load_models or ("*",))]
        if o.http_max_input_bytes is not None:
            if "--http-max-input-size" not in supported_flags():
                raise ServerError("this tritonserver has no --http-max-input-size flag; request size is "
                                  "limited by the client and by the deployment's proxy (docs/SECURITY.md)")
            args.append(f"--http-max-input-size={int(o.http_max_input_bytes)}")
        if not o.open_admin_apis:
            args += restriction_flags(shim.key_argument(self._admin_key))
        # Our own region names, so that stop() removes exactly this server's regions.
        args.append(f"--backend-config=python,shm-region-prefix-name={self._shm_prefix}")
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
        # The shim: the admin key off the command line, the backend's regions owner-only (shim.py).
        return shim.preloaded(env, None if self.options.open_admin_apis else self._admin_key)

    def log_tail(self, lines: int = 60) -> str:
        if not self._log_path.exists():
            return ""
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> "TritonServer":
        """Starts the server and waits for readiness; on any failure (Ctrl-C included) nothing is left running."""
        try:
            ensure_ports_free(self.options.host, (self.http_port, self.grpc_port, self.metrics_port))
            self._launch()
            self._wait_ready()
            self._check_ports_are_ours()
        except BaseException:
            self.stop(timeout_s=5.0)
            raise
        return self

    def _launch(self) -> None:
        with open(self._log_path, "wb") as log:
            # umask 077: the Python backend creates its /dev/shm regions (request audio) owner-only.
            self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                             env=self._environment(), start_new_session=True, umask=0o077,
                                             preexec_fn=die_with(os.getpid()))
        with open(self._workdir / leftovers.OWNER_FILE, "a") as owners:
            owners.write(f"{self._process.pid}\n")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.options.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerError(f"tritonserver exited with code {self._process.returncode}:\n{self.log_tail()}")
            self.make_shm_private()
            failures = self.load_failures()
            if failures:
                raise ServerError("a model failed to load:\n" + "\n".join(failures))
            if self.is_ready():
                self.make_shm_private()
                return
            time.sleep(0.2)
        raise ServerError(f"tritonserver not ready after {self.options.startup_timeout_s:.0f} s:\n{self.log_tail()}")

    def make_shm_private(self) -> None:
        """Owner-only mode for this server's Python-backend regions (they hold request audio).

        The backend fchmods them 0644 after creating them; the preloaded shim (shim.py) keeps them
        0600 from the start. This second line of defence runs while the server starts and after
        every restart, before the server is reported ready.
        """
        leftovers.make_private(self._shm_prefix)

    def load_failures(self) -> list[str]:
        """The log's lines saying that a model failed to load (Triton writes them as soon as it knows)."""
        if not self._log_path.exists():
            return []
        return [line.strip() for line in self._log_path.read_text(errors="replace").splitlines()
                if any(sign in line for sign in _LOAD_FAILURE_SIGNS)]

    def _check_ports_are_ours(self) -> None:
        mine = _socket_inodes(self._process.pid)
        for port in (self.http_port, self.grpc_port):
            if not _listening_inodes(port) & mine:
                raise ServerError(f"port {port} answers, but not from this tritonserver (another server "
                                  f"took it); choose another port")

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def resident_bytes(self) -> int:
        """Resident memory of the server and its stubs (0 when it is not running)."""
        return resident_bytes(self._process.pid) if self.is_running() else 0

    def python_stubs(self) -> list[int]:
        """pids of the live Python-backend stubs of this server (one per model instance)."""
        if self._process is None:
            return []
        return [pid for pid, name in live_children(self._process.pid).items() if name.startswith("triton_python_b")]

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        assert self._process is not None
        return self._process.wait(timeout)

    @property
    def log_path(self) -> Path:
        return self._log_path

    def kill(self) -> None:
        """SIGKILL, no draining: what a crash looks like to clients (for reliability tests)."""
        if self._process is not None:
            _kill_group(self._process)

    def stop(self, timeout_s: float | None = None) -> None:
        """SIGINT (Triton drains in-flight requests), SIGKILL of the whole group after `timeout_s`,
        then this server's regions and work folder are removed. Safe to call more than once.
        SIGINT/SIGTERM to the calling thread wait until it is done (a second Ctrl-C cannot orphan the server)."""
        atexit.unregister(self.stop)
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            process = self._process
            if process is not None:
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
                    try:
                        process.wait(timeout=self.options.stop_timeout_s if timeout_s is None else timeout_s)
                    except subprocess.TimeoutExpired:
                        pass
                _kill_group(process)   # also stubs left behind by a server that exited
                self._process = None
            leftovers.remove_regions(self._shm_prefix)
            shutil.rmtree(self._workdir, ignore_errors=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _server_admin_key() -> str:
    """The user's admin key; where it cannot be stored (a read-only home), a key nobody knows:
    the admin APIs then stay closed to everyone, which is the safe side."""
    try:
        return admin_key()
    except OSError as error:
        print(f"tritonserver: no admin key ({error}); the admin APIs are closed to every caller "
              f"(set S2F_ADMIN_KEY or S2F_ADMIN_KEY_FILE to open them to your tools)", file=sys.stderr)
        return secrets.token_hex(32)


def live_children(parent: int) -> dict[int, str]:
    """{pid: command name} of the live children of `parent`, from /proc; a dead child stays a
    zombie until its parent reaps it, so zombies do not count."""
    children = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        name, fields = stat[stat.find("(") + 1:stat.rfind(")")], stat[stat.rfind(")") + 2:].split()
        if entry.name.isdigit() and int(fields[1]) == parent and fields[0] not in "ZX":
            children[int(entry.name)] = name
    return children


def resident_bytes(pid: int) -> int:
    """Resident memory of `pid` and its live children (tritonserver and its Python-backend stubs)."""
    total = 0
    for member in (pid, *live_children(pid)):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            status = Path(f"/proc/{member}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024
    return total


_PR_SET_PDEATHSIG = 1   # <linux/prctl.h>


def die_with(parent: int) -> Callable[[], None]:
    """For the child, between fork and exec: the kernel kills it (SIGKILL) when the thread that
    started it dies, however it dies (kill -9 and the OOM killer included), so no server outlives
    its launcher. If the launcher died before this ran, the child exits at once."""
    def arm() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)
    return arm


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def ensure_ports_free(host: str, ports) -> None:
    """One clear error when a port is already taken (Triton would fail late, or a probe would reach the other server)."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                raise ServerError(f"port {port} on {host} is already in use; stop what holds it or choose "
                                  f"another port (0 picks a free one)") from None


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on `port` (any address), from /proc/net/tcp and tcp6."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for row in f.read().splitlines()[1:]:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(fd.path)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


@contextlib.contextmanager
def serve(model_repository: str | Path, **options):
    with TritonServer(ServerOptions(model_repository=Path(model_repository), **options)) as server:
        yield server

"""HAProxy in front of tritonserver: the limits Triton 2.51 cannot set itself (docs/SECURITY.md).

Used by `s2f serve --proxy` (one tritonserver on private loopback ports) and by the local cluster
(deploy/local/haproxy.py, several replicas). What the proxy adds:

- only the inference API is forwarded (health, the served models' metadata, readiness, inference);
  the admin APIs (repository, shared memory, logging, trace) and statistics stay inside;
- a request larger than MAX_REQUEST_BYTES, a compressed one, an HTTP body without a length, or a
  binary HTTP body large enough to crash tritonserver 2.51 is refused before Triton reads it;
- no per-server concurrency limit: queueing requests in the proxy did not lower tritonserver's
  peak memory under a flood of large HTTP requests (its threads keep what they allocated) and made
  good requests wait behind the flood; for gRPC it deadlocks (HAProxy 2.6 reads an HTTP/2
  connection's frames in order, so a queued stream with a full buffer stops every stream behind
  it). docs/SECURITY.md, "Floods", has the measurements;
- connections are bounded (`max_connections`) and one that sends no complete request within
  `idle_timeout_s` is closed, so idle connections cannot take all of Triton's descriptors.

The configuration is built line by line (no template files).
"""

from __future__ import annotations

import dataclasses
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from speech2face.engine.contract import MAX_HTTP_BINARY_BODY_BYTES
from speech2face.engine.server import leftovers
from speech2face.engine.server.launcher import client_url, die_with, ensure_ports_free, resolve_ports

# What the proxy forwards: health, the served models' metadata (speech2face and the per-form
# speech2face_samples / speech2face_file), readiness and inference.
GRPC_CALLS = ("ServerLive", "ServerReady", "ServerMetadata", "ModelReady", "ModelMetadata", "ModelInfer")
HTTP_PATHS = (r"^/v2$", r"^/v2/health/(live|ready)$",
              r"^/v2/models/speech2face(_samples|_file)?(/versions/[0-9]+)?(/ready|/infer)?$")


class ProxyError(RuntimeError):
    """HAProxy is missing, refused its configuration or did not start; the message says which."""


@dataclasses.dataclass(frozen=True)
class ProxyLimits:
    # Connections the proxy holds open at once (all frontends); beyond it new ones wait in the
    # kernel's accept queue, behind everything queued before them. Idle connections are cheap to
    # the proxy (no buffers until data comes) and each is closed after `idle_timeout_s`, so the
    # limit is set above what a flood from one host can open (20,600 took all 20,000 of Triton's
    # descriptors): good clients keep being accepted at once. HAProxy raises its own descriptor
    # limit to about twice this where it may; where it may not, `connection_limit()` caps it to
    # what the hard descriptor limit allows (9,872 of 20,000 here).
    max_connections: int = 50_000
    # A connection must send a complete request head within this, and an idle kept-alive
    # connection is closed after it: idle connections cannot hold descriptors for long.
    idle_timeout_s: float = 5.0
    # Client inactivity allowed: also what closes an HTTP/2 connection that never sends its
    # preface (HAProxy 2.6 has no separate handshake timeout).
    client_timeout_s: float = 10.0
    # How long the server may take to answer (a 6 s clip takes well under 1 s).
    server_timeout_s: float = 60.0


DEFAULT_LIMITS = ProxyLimits()


def _grpc_refusal(status: int, message: str, condition: str) -> str:
    """A gRPC error answered by HAProxy itself (a trailers-only response)."""
    return (f"  http-request return status 200 hdr grpc-status {status} hdr grpc-message \"{message}\""
            f" if {condition}")


def grpc_frontend(address: str, max_request_bytes: int, backend: str) -> list[str]:
    calls = " ".join(f"/inference.GRPCInferenceService/{call}" for call in GRPC_CALLS)
    return [
        "frontend grpc_in", f"  bind {address} proto h2",
        f"  acl inference_call path -m str {calls}",
        _grpc_refusal(7, "not served through this proxy", "!inference_call"),
        # Compressed messages could expand past any size checked here: refuse them (UNIMPLEMENTED).
        _grpc_refusal(12, "compressed requests are not accepted",
                      "{ req.hdr(grpc-encoding) -m found } !{ req.hdr(grpc-encoding) -m str identity }"),
        # gRPC has no Content-Length: each message starts with a compressed flag (1 byte) and its
        # length (4 bytes, big-endian). Read those 5 bytes and refuse before a server sees it.
        "  http-request wait-for-body time 2s at-least 5",
        _grpc_refusal(12, "compressed requests are not accepted", "{ req.body,bytes(0,1),hex -m str 01 }"),
        _grpc_refusal(8, f"request larger than {max_request_bytes} bytes",
                      f"{{ req.body,bytes(1,4),be2dec(:,4) -m int gt {max_request_bytes} }}"),
        # HAProxy's own replies carry no body, so `return` drops their content type; gRPC needs it.
        "  http-after-response set-header content-type application/grpc"
        " if { res.hdr(grpc-status) -m found } !{ res.hdr(content-type) -m found }",
        f"  default_backend {backend}",
    ]


def http_frontend(address: str, max_request_bytes: int, backend: str) -> list[str]:
    return [
        "frontend http_in", f"  bind {address}",
        f"  acl public_path path -m reg {' '.join(HTTP_PATHS)}",
        "  http-request deny deny_status 403 if !public_path",
        "  http-request return status 415 content-type text/plain string \"compressed requests are not accepted\""
        " if { req.hdr(content-encoding) -m found }",
        # A body must announce its length, so that the limit below can be checked from the headers.
        "  http-request return status 411 content-type text/plain string \"Content-Length required\""
        " if { method POST } !{ req.hdr(content-length) -m found }",
        f"  http-request deny deny_status 413 if {{ req.hdr_val(content-length) gt {max_request_bytes} }}",
        # tritonserver 2.51 crashes on a binary-extension body this large (contract/tensors.py).
        "  http-request return status 413 content-type text/plain string \"binary HTTP requests are limited to "
        f"{MAX_HTTP_BINARY_BODY_BYTES} bytes; send larger ones over gRPC\""
        f" if {{ req.hdr(inference-header-content-length) -m found }}"
        f" {{ req.hdr_val(content-length) gt {MAX_HTTP_BINARY_BODY_BYTES} }}",
        f"  default_backend {backend}",
    ]


def connection_limit(limits: ProxyLimits) -> int:
    """`max_connections`, or less where the hard descriptor limit would not let HAProxy start: it
    needs two descriptors per connection and some of its own (it refuses to start otherwise)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return limits.max_connections if hard == resource.RLIM_INFINITY else \
        max(64, min(limits.max_connections, (hard - _HAPROXY_OWN_DESCRIPTORS) // 2))


_HAPROXY_OWN_DESCRIPTORS = 256


def global_lines(socket_path: Path, limits: ProxyLimits) -> list[str]:
    ms = lambda seconds: f"{int(seconds * 1000)}ms"   # noqa: E731 - HAProxy's time unit, one place
    return [
        "global", f"  stats socket {socket_path} mode 600 level admin", f"  maxconn {connection_limit(limits)}",
        "defaults", "  mode http", "  timeout connect 2s",
        f"  timeout client {ms(limits.client_timeout_s)}", f"  timeout server {ms(limits.server_timeout_s)}",
        f"  timeout http-request {ms(limits.idle_timeout_s)}", f"  timeout http-keep-alive {ms(limits.idle_timeout_s)}",
    ]


def single_server_lines(grpc_address: str, http_address: str, triton_grpc: str, triton_http: str,
                        socket_path: Path, max_request_bytes: int, limits: ProxyLimits) -> list[str]:
    """The whole configuration for one tritonserver (`s2f serve --proxy`). Its health check asks
    Triton's own readiness every second, so that while the server restarts the proxy answers
    503 / UNAVAILABLE at once instead of holding requests until the queue times out."""
    check = f"check port {triton_http.rsplit(':', 1)[1]} check-proto h1 inter 1s fall 1 rise 1"
    lines = [*global_lines(socket_path, limits),
             *grpc_frontend(grpc_address, max_request_bytes, "grpc_triton"),
             *http_frontend(http_address, max_request_bytes, "http_triton")]
    for backend, address, proto in (("grpc_triton", triton_grpc, " proto h2"), ("http_triton", triton_http, "")):
        lines += [f"backend {backend}", "  option httpchk GET /v2/health/ready",
                  f"  server triton {address}{proto} {check}"]
    return lines


def haproxy_binary() -> str:
    path = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/bin")
    if not path:
        raise ProxyError("--proxy needs HAProxy: install it (Debian/Ubuntu: apt-get install haproxy)")
    return path


class HAProxyProcess:
    """One haproxy process on a configuration file; the runtime API on its stats socket."""

    def __init__(self, binary: str, config: Path, socket_path: Path, lines: list[str]):
        self.binary, self.config, self.socket_path = binary, config, socket_path
        self.config.write_text("\n".join(lines) + "\n")
        self._process: subprocess.Popen | None = None

    def start(self, preexec_fn=None) -> "HAProxyProcess":
        check = subprocess.run([self.binary, "-c", "-q", "-f", str(self.config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise ProxyError(f"haproxy rejected {self.config}: {check.stderr.strip()}")
        self.socket_path.unlink(missing_ok=True)   # start() waits for haproxy to create it
        self._process = subprocess.Popen([self.binary, "-db", "-f", str(self.config)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, preexec_fn=preexec_fn)
        deadline = time.monotonic() + 10
        while not self.socket_path.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ProxyError("haproxy did not start (a port in use?): "
                                 f"{self._process_errors()[-2000:] or 'no message'}")
            time.sleep(0.05)
        return self

    def _process_errors(self) -> str:
        process = self._process
        if process is None or process.stderr is None or process.poll() is None:
            return ""
        return process.stderr.read().decode(errors="replace").strip()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self, line: str) -> str:
        """One runtime API command (stats socket)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(self.socket_path))
            s.sendall(line.encode() + b"\n")
            return b"".join(iter(lambda: s.recv(65536), b"")).decode()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> "HAProxyProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class ServerProxy:
    """`s2f serve --proxy`: HAProxy on the public gRPC and HTTP ports, in front of one tritonserver
    on private loopback ports. Its files live in a work folder that the launcher's leftover
    cleaning recognises; haproxy dies with the process that started it (PR_SET_PDEATHSIG)."""

    def __init__(self, host: str, grpc_port: int, http_port: int, triton_grpc: str, triton_http: str,
                 max_request_bytes: int, limits: ProxyLimits = DEFAULT_LIMITS):
        binary = haproxy_binary()
        self.host = host
        self.grpc_port, self.http_port = resolve_ports(host, (grpc_port, http_port))
        ensure_ports_free(host, (self.grpc_port, self.http_port))
        self.limits = limits
        self._workdir = Path(tempfile.mkdtemp(prefix=leftovers.WORKDIR_PREFIX + "proxy-"))
        (self._workdir / leftovers.OWNER_FILE).write_text(f"{os.getpid()}\n")
        socket_path = self._workdir / "haproxy.sock"
        self._haproxy = HAProxyProcess(binary, self._workdir / "haproxy.cfg", socket_path, single_server_lines(
            f"{host}:{self.grpc_port}", f"{host}:{self.http_port}", triton_grpc, triton_http,
            socket_path, max_request_bytes, limits))

    @property
    def grpc_url(self) -> str:
        return client_url(self.host, self.grpc_port)

    @property
    def http_url(self) -> str:
        return client_url(self.host, self.http_port)

    @property
    def pid(self) -> int | None:
        return self._haproxy.pid

    def is_running(self) -> bool:
        return self._haproxy.is_running()

    def start(self) -> "ServerProxy":
        self._haproxy.start(preexec_fn=die_with(os.getpid()))
        with open(self._workdir / leftovers.OWNER_FILE, "a") as owners:
            owners.write(f"{self._haproxy.pid}\n")
        return self

    def command(self, line: str) -> str:
        return self._haproxy.command(line)

    def restart(self) -> None:
        """A new haproxy on the same ports and configuration (the supervisor's cure for a dead one)."""
        self._haproxy.stop()
        self.start()

    def stop(self) -> None:
        """Stops haproxy and removes its work folder; safe to call more than once."""
        self._haproxy.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

"""HAProxy in front of the replicas: h2c gRPC and HTTP balancing, readiness health checks, a body
size limit, only the inference API forwarded (no admin APIs, no compressed requests), and the
runtime API that drains a replica before a rolling update stops it.

The configuration is built line by line from the replica list (no template files).
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Callable

from speech2face.engine.server.launcher import free_port

from deploy.local.replicas import Replica
from deploy.local.tools import ensure

# Health: a replica is up after 2 good checks and down after 1 failed one; checks every 300 ms
# keep the window in which a dead replica still gets new requests short (the client retries those).
CHECK = "check port {ready} check-proto h1 inter 300ms fall 1 rise 2 observe layer7 error-limit 1 on-error mark-down"

# What the proxy forwards: health, the served models' metadata (speech2face and the per-form
# speech2face_samples / speech2face_file), readiness and inference. The admin APIs (model
# repository, shared memory, logging, trace) and statistics stay inside.
GRPC_CALLS = ("ServerLive", "ServerReady", "ServerMetadata", "ModelReady", "ModelMetadata", "ModelInfer")
HTTP_PATHS = (r"^/v2$", r"^/v2/health/(live|ready)$",
              r"^/v2/models/speech2face(_samples|_file)?(/versions/[0-9]+)?(/ready|/infer)?$")


def _grpc_refusal(status: int, message: str, condition: str) -> str:
    """A gRPC error answered by HAProxy itself (a trailers-only response)."""
    return (f"  http-request return status 200 hdr grpc-status {status} hdr grpc-message \"{message}\""
            f" if {condition}")


def grpc_frontend(port: int, max_request_bytes: int) -> list[str]:
    calls = " ".join(f"/inference.GRPCInferenceService/{call}" for call in GRPC_CALLS)
    return [
        "frontend grpc_in", f"  bind 127.0.0.1:{port} proto h2",
        f"  acl inference_call path -m str {calls}",
        _grpc_refusal(7, "not served through this proxy", "!inference_call"),
        # Compressed messages could expand past any size checked here: refuse them (UNIMPLEMENTED).
        _grpc_refusal(12, "compressed requests are not accepted",
                      "{ req.hdr(grpc-encoding) -m found } !{ req.hdr(grpc-encoding) -m str identity }"),
        # gRPC has no Content-Length: each message starts with a compressed flag (1 byte) and its
        # length (4 bytes, big-endian). Read those 5 bytes and refuse before a replica sees it.
        "  http-request wait-for-body time 2s at-least 5",
        _grpc_refusal(12, "compressed requests are not accepted", "{ req.body,bytes(0,1),hex -m str 01 }"),
        _grpc_refusal(8, f"request larger than {max_request_bytes} bytes",
                      f"{{ req.body,bytes(1,4),be2dec(:,4) -m int gt {max_request_bytes} }}"),
        # HAProxy's own replies carry no body, so `return` drops their content type; gRPC needs it.
        "  http-after-response set-header content-type application/grpc"
        " if { res.hdr(grpc-status) -m found } !{ res.hdr(content-type) -m found }",
        "  default_backend grpc_replicas",
    ]


def http_frontend(port: int, max_request_bytes: int) -> list[str]:
    return [
        "frontend http_in", f"  bind 127.0.0.1:{port}",
        f"  acl public_path path -m reg {' '.join(HTTP_PATHS)}",
        "  http-request deny deny_status 403 if !public_path",
        "  http-request return status 415 content-type text/plain string \"compressed requests are not accepted\""
        " if { req.hdr(content-encoding) -m found }",
        # A body must announce its length, so that the limit below can be checked from the headers.
        "  http-request return status 411 content-type text/plain string \"Content-Length required\""
        " if { method POST } !{ req.hdr(content-length) -m found }",
        f"  http-request deny deny_status 413 if {{ req.hdr_val(content-length) gt {max_request_bytes} }}",
        "  default_backend http_replicas",
    ]


def config_lines(replicas: list[Replica], grpc_port: int, http_port: int, socket_path: Path,
                 max_request_bytes: int) -> list[str]:
    lines = [
        "global", f"  stats socket {socket_path} mode 600 level admin", "  maxconn 1024",
        "defaults", "  mode http", "  timeout connect 2s", "  timeout client 60s", "  timeout server 60s",
        "  option redispatch", "  retries 3",
        *grpc_frontend(grpc_port, max_request_bytes), *http_frontend(http_port, max_request_bytes),
    ]
    for backend, port_of, proto in (("grpc_replicas", "grpc_port", " proto h2"), ("http_replicas", "http_port", "")):
        lines += [f"backend {backend}", "  balance leastconn", "  option httpchk",
                  "  http-check send meth GET uri /ready", "  http-check expect status 200"]
        lines += [f"  server {r.name} 127.0.0.1:{getattr(r, port_of)}{proto} {CHECK.format(ready=r.ready_port)}"
                  for r in replicas]
    return lines


class HAProxy:
    def __init__(self, replicas: list[Replica], workdir: Path, max_request_bytes: int,
                 next_port: Callable[[], int] = free_port):
        self.binary = ensure("haproxy", "haproxy")
        self.grpc_port, self.http_port = next_port(), next_port()
        self.socket_path = workdir / "haproxy.sock"
        self.config = workdir / "haproxy.cfg"
        self.config.write_text("\n".join(config_lines(replicas, self.grpc_port, self.http_port,
                                                      self.socket_path, max_request_bytes)) + "\n")
        self._process: subprocess.Popen | None = None

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def start(self) -> "HAProxy":
        check = subprocess.run([self.binary, "-c", "-q", "-f", str(self.config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy rejected {self.config}: {check.stderr}")
        self._process = subprocess.Popen([self.binary, "-db", "-f", str(self.config)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not self.socket_path.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not start: {self._process.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        return self

    def command(self, line: str) -> str:
        """One runtime API command (stats socket)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(self.socket_path))
            s.sendall(line.encode() + b"\n")
            return b"".join(iter(lambda: s.recv(65536), b"")).decode()

    def set_state(self, server: str, state: str) -> None:
        """ready / drain / maint, on both backends."""
        for backend in ("grpc_replicas", "http_replicas"):
            self.command(f"set server {backend}/{server} state {state}")

    def server_states(self, backend: str = "grpc_replicas") -> dict[str, str]:
        """Each server's operational status as HAProxy's health checks see it (UP, DOWN, MAINT, ...)."""
        rows = [row.split(",") for row in self.command("show stat").splitlines() if row.startswith(backend + ",")]
        return {row[1]: row[17] for row in rows if row[1] not in ("BACKEND", "FRONTEND")}

    def responses(self, backend: str = "grpc_replicas") -> dict[str, int]:
        """Responses each server returned through this proxy (HAProxy's own counters): what clients
        sent, without the replicas' readiness canaries, which go to the replicas directly."""
        lines = self.command("show stat").splitlines()
        columns = lines[0].lstrip("# ").split(",")
        counted = [columns.index(c) for c in ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx",
                                                  "hrsp_other")]
        rows = [row.split(",") for row in lines[1:] if row.startswith(backend + ",")]
        return {row[1]: sum(int(row[i] or 0) for i in counted) for row in rows if row[1] not in ("BACKEND", "FRONTEND")}

    def wait_state(self, server: str, prefix: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.server_states().get(server, "").startswith(prefix):
            if time.monotonic() > deadline:
                raise TimeoutError(f"haproxy: {server} not {prefix} after {timeout_s} s: {self.server_states()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None

    def __enter__(self) -> "HAProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

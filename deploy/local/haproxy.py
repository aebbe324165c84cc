"""HAProxy in front of the replicas: h2c gRPC and HTTP balancing over their `/ready` checks, and
the runtime API that drains a replica before a rolling update stops it. The frontends and limits
(only the inference API, size limits, no compressed requests, bounded connections, idle timeouts)
are the ones `s2f serve --proxy` uses (engine/server/proxy.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from speech2face.engine.server.launcher import free_port
from speech2face.engine.server.proxy import (DEFAULT_LIMITS, HAProxyProcess, ProxyLimits, global_lines,
                                             grpc_frontend, http_frontend)

from deploy.local.replicas import Replica
from deploy.local.tools import ensure

# Health: a replica is up after 2 good checks and down after 1 failed one; checks every 300 ms
# keep the window in which a dead replica still gets new requests short (the client retries those).
CHECK = "check port {ready} check-proto h1 inter 300ms fall 1 rise 2 observe layer7 error-limit 1 on-error mark-down"


def config_lines(replicas: list[Replica], grpc_port: int, http_port: int, socket_path: Path,
                 max_request_bytes: int, limits: ProxyLimits = DEFAULT_LIMITS) -> list[str]:
    lines = [*global_lines(socket_path, limits), "  option redispatch", "  retries 3",
             *grpc_frontend(f"127.0.0.1:{grpc_port}", max_request_bytes, "grpc_replicas"),
             *http_frontend(f"127.0.0.1:{http_port}", max_request_bytes, "http_replicas")]
    for backend, port_of, proto in (("grpc_replicas", "grpc_port", " proto h2"), ("http_replicas", "http_port", "")):
        lines += [f"backend {backend}", "  balance leastconn", "  option httpchk",
                  "  http-check send meth GET uri /ready", "  http-check expect status 200"]
        lines += [f"  server {r.name} 127.0.0.1:{getattr(r, port_of)}{proto} {CHECK.format(ready=r.ready_port)}"
                  for r in replicas]
    return lines


class HAProxy(HAProxyProcess):
    def __init__(self, replicas: list[Replica], workdir: Path, max_request_bytes: int,
                 next_port: Callable[[], int] = free_port):
        self.grpc_port, self.http_port = next_port(), next_port()
        socket_path = workdir / "haproxy.sock"
        super().__init__(ensure("haproxy", "haproxy"), workdir / "haproxy.cfg", socket_path,
                         config_lines(replicas, self.grpc_port, self.http_port, socket_path, max_request_bytes))

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

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

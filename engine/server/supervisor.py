"""`s2f serve`'s watchdog: keeps one tritonserver answering, restarting it (bounded, with back-off).

Triton 2.51 keeps `/v2/health/ready` at 200 while a Python model's stub is dead (every
inference then fails with "Stub process ... is not healthy"), and a single malformed request can
kill the stub or abort the whole server. So every `check_interval_s` the supervisor asks:

1. is the tritonserver process alive, and (with a memory limit) within it?
2. is the model ready (`/v2/models/<model>/ready`)?
3. does a tiny canary inference (0.25 s of a tone, KServe JSON) answer with finite features?

After `failures_to_restart` failed checks in a row (one, when the process has exited or Triton
calls the stub unhealthy) it logs why and restarts the server on the same ports (SIGINT, then SIGKILL of the process group after `drain_s`). While it restarts the
ports are closed, so readiness probes see not-ready. The outage a fatal request causes is
therefore at most about check_interval_s * failures_to_restart + drain_s + the start time
(measured in tests/served/test_attacks.py). Restarts back off (`backoff_s`, capped, with jitter) and
never end supervision: a request that crashes the server again and again costs each time an outage
bounded by the cap, and the log says loudly that the same crash repeats.
"""

from __future__ import annotations

import dataclasses
import random
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from speech2face.engine import contract
from speech2face.engine.server.canary import ask
from speech2face.engine.server.launcher import ServerOptions, TritonServer


@dataclasses.dataclass(frozen=True)
class SupervisorPolicy:
    # How often the server, the model and a canary inference are checked; also the longest a dead
    # stub keeps /v2/health/ready at 200 before the restart closes the ports.
    check_interval_s: float = 5.0
    canary_timeout_s: float = 10.0
    # Failed checks in a row before a restart (a dead process or stub restarts at the first).
    failures_to_restart: int = 2
    drain_s: float = 10.0           # in-flight requests get this long on SIGTERM / a restart
    # Waits before restart 1, 2, ... within `restart_window_s`; the last repeats (the cap), each
    # stretched by up to `jitter` so that replicas crashed by one request do not restart in step.
    backoff_s: tuple[float, ...] = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0)
    jitter: float = 0.2
    restart_window_s: float = 600.0
    model: str = contract.ENSEMBLE
    # Resident memory of tritonserver and its stubs above which it is restarted (drained first).
    # Triton keeps what a flood of large requests made it allocate; a restart returns it before
    # the OOM killer picks a process, perhaps another one (docs/SECURITY.md, "Floods"). None: off.
    memory_limit_bytes: int | None = None


def _beyond_doubt(reason: str) -> bool:
    """A dead process or a stub that Triton itself calls unhealthy is restarted at the first check."""
    return reason.startswith("tritonserver exited") or "is not healthy" in reason or "stub processes died" in reason


def _stderr(message: str) -> None:
    print(f"s2f serve: {message}", file=sys.stderr, flush=True)


class Supervisor:
    """Starts, watches and restarts one TritonServer. `run()` blocks until `stop()` (any thread)."""

    def __init__(self, options: ServerOptions, policy: SupervisorPolicy = SupervisorPolicy(),
                 log: Callable[[str], None] = _stderr, proxy=None):
        self.options = options
        self.proxy = proxy   # `s2f serve --proxy`'s ServerProxy: restarted when it exits
        self.policy = policy
        self.log = log
        self.server: TritonServer | None = None
        self.restarts: list[tuple[float, str]] = []   # (monotonic time, why)
        self._stop = threading.Event()
        self._stubs = 0

    def start(self) -> TritonServer:
        """First start; the ports it resolved (0 = free port) are kept for every restart."""
        self.server = TritonServer(self.options).start()
        self.options = dataclasses.replace(self.options, http_port=self.server.http_port,
                                           grpc_port=self.server.grpc_port, metrics_port=self.server.metrics_port)
        # One stub per model instance: a canary answered by a live instance cannot see a dead one.
        self._stubs = len(self.server.python_stubs())
        return self.server

    def http_url(self) -> str | None:
        """The running server's HTTP host:port, or None while it restarts."""
        server = self.server
        return server.http_url if server is not None and server.is_running() else None

    def health(self) -> str | None:
        """None when the server and the model answer; otherwise why not."""
        server = self.server
        if server is None or not server.is_running():
            return f"tritonserver exited (code {server.returncode if server is not None else None})"
        limit = self.policy.memory_limit_bytes
        if limit is not None and (resident := server.resident_bytes()) > limit:
            return (f"tritonserver and its stubs hold {resident / 2**30:.1f} GiB, over the memory limit of "
                    f"{limit / 2**30:.1f} GiB (large requests; a restart returns the memory)")
        stubs = len(server.python_stubs())
        if stubs < self._stubs:
            return f"{self._stubs - stubs} of {self._stubs} Python-backend stub processes died"
        # One canary per instance, all at once: a lone canary can keep landing on a healthy instance
        # while another's stub is alive but unhealthy (every request it gets then fails).
        with ThreadPoolExecutor(max(1, self._stubs)) as pool:
            answers = list(pool.map(lambda _: ask(server.http_url, self.policy.model, self.policy.canary_timeout_s),
                                    range(max(1, self._stubs))))
        return next((why for why in answers if why is not None), None)

    def run(self) -> int:
        """Watches until stop(), then returns 0. It never gives up: restarts only back off, and
        nothing raised inside a check or a restart ends the watch."""
        failures = 0
        while not self._stop.wait(self.policy.check_interval_s):
            try:
                reason = self.health()
            except Exception as error:  # noqa: BLE001 - a check that breaks is a failed check, never the end
                reason = f"the health check failed: {type(error).__name__}: {error}"
            self._keep_proxy()
            failures = failures + 1 if reason else 0
            if reason and (failures >= self.policy.failures_to_restart or _beyond_doubt(reason)):
                failures = 0
                try:
                    self._restart(reason)
                except Exception:  # noqa: BLE001 - logged; the next check finds the server down and restarts
                    self.log("the restart broke (the next check retries):\n" + traceback.format_exc())
        return 0

    def _keep_proxy(self) -> None:
        if self.proxy is None or self.proxy.is_running():
            return
        self.log("haproxy exited; starting it again")
        try:
            self.proxy.restart()
        except Exception as error:  # noqa: BLE001 - retried at the next check
            self.log(f"haproxy did not start again (the next check retries): {error}")

    def _restart(self, reason: str) -> None:
        now = time.monotonic()
        recent = [why for t, why in self.restarts if now - t < self.policy.restart_window_s]
        delay = self.policy.backoff_s[min(len(recent), len(self.policy.backoff_s) - 1)]
        delay *= 1 + self.policy.jitter * random.random()
        if recent.count(reason) >= 2:
            self.log(f"REPEATED CRASH: the same failure caused {recent.count(reason) + 1} restarts in "
                     f"{self.policy.restart_window_s:.0f} s; a client may be resending a request that kills "
                     f"the server (docs/SECURITY.md)")
        self.log(f"restarting tritonserver in {delay:.1f} s: {reason}")
        self.restarts.append((now, reason))
        if self.server is not None:   # a dead stub fails every request anyway: no drain to wait for
            self.server.stop(timeout_s=1.0 if _beyond_doubt(reason) else self.policy.drain_s)
        if self._stop.wait(delay):
            return
        try:
            self.start()
        except Exception as error:  # noqa: BLE001 - any failed start is retried with more back-off
            self.log(f"restart failed: {type(error).__name__}: {(str(error).splitlines() or [''])[0]}")
            self.server = None   # the next check fails at once and backs off further
            return
        if self._stop.is_set():   # stop() came while it was starting
            self.close()
        else:
            self.log(f"tritonserver restarted (pid {self.server.pid})")

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Drains in-flight requests for at most drain_s, then kills the process group; removes its files."""
        self._stop.set()
        server, self.server = self.server, None
        if server is not None:
            server.stop(timeout_s=self.policy.drain_s)

"""The supervisor's restart policy, without a server: it never gives up, backs off to a cap, and
says loudly when the same failure repeats. (Real crashes and restarts: tests/served/test_attacks.py.)"""

from __future__ import annotations

import threading

from speech2face.engine.server.launcher import ServerError, ServerOptions
from speech2face.engine.server.supervisor import Supervisor, SupervisorPolicy


class AlwaysCrashing(Supervisor):
    """A server that is dead at every check and fails every start, as under a request that kills it."""

    starts = 0

    def health(self):
        return "tritonserver exited (code -6)"

    def start(self):
        self.starts += 1
        raise ServerError("tritonserver exited with code -6")


class BrokenCheck(Supervisor):
    def health(self):
        raise ConnectionAbortedError("the canary's answer was cut off")

    def _restart(self, reason):
        self.restarts.append((0.0, reason))


def _run_for(supervisor: Supervisor, seconds: float) -> tuple[threading.Thread, list]:
    result = []
    thread = threading.Thread(target=lambda: result.append(supervisor.run()), daemon=True)
    thread.start()
    thread.join(seconds)
    return thread, result


def test_restarts_never_stop_and_back_off_to_the_cap():
    logs: list[str] = []
    policy = SupervisorPolicy(check_interval_s=0.001, backoff_s=(0.0, 0.002), jitter=0.5)
    supervisor = AlwaysCrashing(ServerOptions(model_repository="unused"), policy, log=logs.append)
    thread, result = _run_for(supervisor, 1.0)
    assert thread.is_alive() and not result           # still supervising after every failed restart
    assert supervisor.starts > 20                      # far past any fixed restart budget
    assert sum("REPEATED CRASH" in line for line in logs) >= supervisor.starts - 3
    delays = [float(line.split(" in ")[1].split(" s:")[0]) for line in logs if line.startswith("restarting")]
    assert delays[0] == 0.0 and max(delays) <= 0.002 * 1.5 + 0.05   # capped (printed to 0.1 s)
    supervisor.stop()
    thread.join(5)
    assert result == [0]


def test_a_check_that_raises_counts_as_a_failed_check():
    supervisor = BrokenCheck(ServerOptions(model_repository="unused"),
                             SupervisorPolicy(check_interval_s=0.001, failures_to_restart=2), log=lambda m: None)
    thread, _ = _run_for(supervisor, 0.3)
    assert thread.is_alive() and supervisor.restarts
    assert "ConnectionAbortedError" in supervisor.restarts[0][1]
    supervisor.stop()
    thread.join(5)


class BreaksWhileStarting(AlwaysCrashing):
    """A start that fails with something other than ServerError (an OSError from the work folder)."""

    def start(self):
        self.starts += 1
        raise PermissionError("[Errno 13] Permission denied: '/tmp/s2f-triton-x/owner.pid'")


class BreaksWhileStopping(AlwaysCrashing):
    """A restart that raises before it gets to starting (a stop that breaks)."""

    def _restart(self, reason):
        self.starts += 1
        raise OSError("the old server could not be stopped")


def test_a_restart_that_raises_anything_never_ends_supervision():
    for kind in (BreaksWhileStarting, BreaksWhileStopping):
        logs: list[str] = []
        supervisor = kind(ServerOptions(model_repository="unused"),
                          SupervisorPolicy(check_interval_s=0.001, backoff_s=(0.0,)), log=logs.append)
        thread, result = _run_for(supervisor, 0.5)
        assert thread.is_alive() and not result, kind.__name__
        assert supervisor.starts > 5, kind.__name__   # it kept trying after the first break
        assert any("PermissionError" in line or "could not be stopped" in line for line in logs), logs[:3]
        supervisor.stop()
        thread.join(5)
        assert result == [0]


class HeavyServer:
    """A running server that holds `resident` bytes (what a flood of large requests leaves)."""

    def __init__(self, resident: int):
        self.resident = resident

    def is_running(self):
        return True

    def resident_bytes(self):
        return self.resident

    def python_stubs(self):
        return []


def test_a_server_over_its_memory_limit_fails_the_check_naming_it():
    policy = SupervisorPolicy(memory_limit_bytes=2 * 2**30)
    supervisor = Supervisor(ServerOptions(model_repository="unused"), policy, log=lambda m: None)
    supervisor.server = HeavyServer(3 * 2**30)
    assert "3.0 GiB, over the memory limit of 2.0 GiB" in supervisor.health()

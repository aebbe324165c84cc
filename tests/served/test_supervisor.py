"""`s2f serve` and `s2f infer` as a user runs them: signals at any moment, port clashes, broken
repositories, leftovers of dead servers. Everything against the real tritonserver."""

from __future__ import annotations

import mmap
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from speech2face.engine.server import leftovers
from speech2face.engine.runtime.builtin import SAMPLE_VOICE
from speech2face.engine.server.launcher import ServerOptions, TritonServer, free_port, live_children
from speech2face.engine.repository.cpu_repository import write_cpu_repository

HANG_GUARD_S = 60   # a bound on how long a command may take before the test calls it hung


@pytest.fixture
def own_repository(bundle, tmp_path):
    """A repository of the test's own, so that its processes can be found by its path."""
    return write_cpu_repository(bundle, tmp_path / "repo")


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and pid != os.getpid():
            found.append(pid)
    return found


def _s2f(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "speech2face.engine.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(condition, what: str, within_s: float = HANG_GUARD_S):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {within_s} s")


def _serve(repository: Path, *extra: str) -> subprocess.Popen:
    return _s2f("serve", "--repository", str(repository), "--grpc-port", "0", "--http-port", "0",
                "--metrics-port", "0", "--check-interval", "1", *extra)


def _assert_nothing_left(repository: Path):
    _wait_for(lambda: not _processes_mentioning(str(repository)), "exit of every process", 10)


@pytest.mark.parametrize("command", ["serve", "infer"])
def test_ctrl_c_during_start_leaves_no_process_and_no_traceback(own_repository, tmp_path, command):
    process = (_serve(own_repository) if command == "serve" else
               _s2f("infer", str(SAMPLE_VOICE), "-o", str(tmp_path / "face.png"), "--repository", str(own_repository)))
    _wait_for(lambda: [p for p in _processes_mentioning(str(own_repository)) if p != process.pid],
              "tritonserver start")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=HANG_GUARD_S)
    assert "Traceback" not in err, err
    assert process.returncode in (0, 130), (process.returncode, err)
    _assert_nothing_left(own_repository)


def test_sigterm_with_a_dead_stub_drains_and_exits(own_repository):
    process = _serve(own_repository)
    assert "speech2face serving" in process.stdout.readline()
    stubs = _processes_mentioning(f"{own_repository}/speech2face/1/model.py")
    assert stubs, "no Python backend stub found"
    for stub in stubs:
        os.kill(stub, signal.SIGKILL)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=HANG_GUARD_S)
    assert process.returncode == 0 and "Traceback" not in err, err
    _assert_nothing_left(own_repository)


def test_port_in_use_is_one_clear_line(own_repository):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        process = _s2f("serve", "--repository", str(own_repository), "--http-port", str(port),
                       "--grpc-port", "0", "--metrics-port", "0")
        out, err = process.communicate(timeout=HANG_GUARD_S)
    assert process.returncode == 1 and "serving" not in out
    assert err.strip().count("\n") == 0 and f"port {port}" in err and "already in use" in err, err
    _assert_nothing_left(own_repository)


def test_model_that_cannot_load_is_reported_at_once(own_repository):
    (own_repository / "speech2face" / "1" / "model.py").unlink()
    process = _serve(own_repository)
    out, err = process.communicate(timeout=HANG_GUARD_S)   # Triton itself would wait 120 s
    assert process.returncode == 1 and "model.py" in err and "a model failed to load" in err, err
    _assert_nothing_left(own_repository)


# ------------------------------------------------------------------------------------- leftovers
def _aged(path: Path) -> Path:
    old = time.time() - 3600
    os.utime(path, (old, old))
    return path


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_only_dead_servers_leftovers_are_removed(tmp_path):
    dead = tmp_path / f"{leftovers.WORKDIR_PREFIX}dead"
    dead.mkdir()
    (dead / leftovers.OWNER_FILE).write_text(f"{_dead_pid()}\n")
    live = tmp_path / f"{leftovers.WORKDIR_PREFIX}live"
    live.mkdir()
    (live / leftovers.OWNER_FILE).write_text(f"{os.getpid()}\n")
    token = f"{leftovers.SHM_PREFIX}test{os.getpid()}_"
    stale = leftovers.SHM_DIR / f"{token}stale"
    stale.write_bytes(b"\0" * 64)
    _aged(stale)
    mapped = leftovers.SHM_DIR / f"{token}mapped"
    mapped.write_bytes(b"\0" * 64)
    _aged(mapped)
    with open(mapped, "r+b") as f, mmap.mmap(f.fileno(), 64):   # a live process maps it: in use
        removed = leftovers.clean_stale(tmp_path)
        assert not stale.exists() and mapped.exists()
    mapped.unlink()
    assert not dead.exists() and live.exists()
    assert stale in removed and dead in removed


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_100_start_stop_cycles_leave_nothing_behind(own_repository, tmp_path):
    regions_before = set(leftovers.SHM_DIR.iterdir())
    workdirs = []
    for cycle in range(100):
        server = TritonServer(ServerOptions(model_repository=own_repository)).start()
        workdirs.append(server._workdir)
        if cycle % 10 == 9:
            server.kill()   # a crash: the stop after it still removes everything
        server.stop()
    assert not any(d.exists() for d in workdirs)
    ours = {p for p in set(leftovers.SHM_DIR.iterdir()) - regions_before
            if any(p.name.startswith(f"{leftovers.SHM_PREFIX}{d.name}_") for d in workdirs)}
    assert not ours, sorted(ours)[:3]
    assert not _processes_mentioning(str(own_repository))
    shutil.rmtree(own_repository)


def _process_tree(pid: int) -> dict[int, str]:
    """{pid: name} of the live descendants of `pid`."""
    found = live_children(pid)
    for child in list(found):
        found.update(_process_tree(child))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def test_kill_9_of_s2f_serve_leaves_no_server_and_a_new_one_takes_over(own_repository):
    ports = [str(free_port()) for _ in range(3)]
    command = [sys.executable, "-m", "speech2face.engine.cli", "serve", "--repository", str(own_repository),
               "--http-port", ports[0], "--grpc-port", ports[1], "--metrics-port", ports[2]]
    serve = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "serving" in serve.stdout.readline()
        server_tree = _process_tree(serve.pid)
        assert "tritonserver" in server_tree.values(), server_tree
        serve.kill()                                   # SIGKILL: no handler, no cleanup of its own
        serve.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in server_tree):
            time.sleep(0.2)
        assert not [pid for pid in server_tree if _alive(pid)], server_tree
        again = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert "serving" in again.stdout.readline()   # the same ports, free again
        finally:
            again.terminate()
            again.wait(60)
    finally:
        serve.kill()

"""What dead tritonservers leave behind, found and removed without touching a live server's files.

A server killed hard (SIGKILL, a crash, a dead stub at shutdown) leaves its Python-backend
shared-memory regions in /dev/shm and the launcher's `s2f-triton-*` work folder in the temp
folder. Only this user's files are candidates, and a candidate is removed only when no live
process uses it:

- a region: no process we can see has it mapped or open (a live server and its stubs keep
  their regions mapped for as long as the model is loaded);
- a work folder: none of the process ids in its `owner.pid` is alive (the launcher writes its
  own id there at creation and the server's at start); a folder without that file (from an
  older launcher) only when no live process's command line names it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

SHM_DIR = Path("/dev/shm")
SHM_PREFIX = "triton_python_backend_shm_region_"
WORKDIR_PREFIX = "s2f-triton-"
OWNER_FILE = "owner.pid"
_MIN_AGE_S = 30.0   # a file younger than this may belong to a server still starting


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def shm_in_use() -> set[str]:
    """Names under /dev/shm that a live process (that we may inspect) has mapped or open."""
    used: set[str] = set()
    for pid in _pids():
        for line in _read(f"/proc/{pid}/maps").splitlines():
            if "/dev/shm/" in line:
                used.add(line.rsplit("/dev/shm/", 1)[1].replace(" (deleted)", ""))
        try:
            for fd in os.scandir(f"/proc/{pid}/fd"):
                target = os.readlink(fd.path)
                if target.startswith("/dev/shm/"):
                    used.add(target[len("/dev/shm/"):])
        except OSError:
            continue
    return used


def _ours_and_old(path: Path) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and time.time() - st.st_mtime > _MIN_AGE_S


def stale_regions() -> list[Path]:
    candidates = [p for p in SHM_DIR.glob(SHM_PREFIX + "*") if _ours_and_old(p)]
    if not candidates:
        return []
    used = shm_in_use()
    return [p for p in candidates if p.name not in used]


def remove_regions(prefix: str) -> None:
    """Removes every region named `prefix*` (a stopped server's own, whose processes are gone)."""
    for path in SHM_DIR.glob(prefix + "*"):
        path.unlink(missing_ok=True)


def make_private(prefix: str) -> list[Path]:
    """chmod 0600 every region named `prefix*`: the Python backend creates them 0644 whatever the umask."""
    changed = []
    for path in SHM_DIR.glob(prefix + "*"):
        try:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
                changed.append(path)
        except OSError:
            continue
    return changed


def workdir_owners(workdir: Path) -> list[int]:
    return [int(p) for p in _read(str(workdir / OWNER_FILE)).split() if p.isdigit()]


def _workdir_is_stale(workdir: Path) -> bool:
    owners = workdir_owners(workdir)
    if owners:
        return not any(pid_alive(pid) for pid in owners)
    if not _ours_and_old(workdir):
        return False
    needle = str(workdir)
    return not any(needle in _read(f"/proc/{pid}/cmdline").replace("\0", " ") for pid in _pids())


def stale_workdirs(root: Path | None = None) -> list[Path]:
    root = Path(root or tempfile.gettempdir())
    return [d for d in root.glob(WORKDIR_PREFIX + "*")
            if d.is_dir() and not d.is_symlink() and d.stat().st_uid == os.getuid() and _workdir_is_stale(d)]


def clean_stale(root: Path | None = None) -> list[Path]:
    """Removes dead servers' regions and work folders; returns what it removed."""
    removed = []
    for path in stale_regions():
        path.unlink(missing_ok=True)
        removed.append(path)
    for path in stale_workdirs(root):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed

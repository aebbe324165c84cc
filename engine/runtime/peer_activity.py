"""Instances of one served model telling each other when they compute, so each picks its threads.

On a small CPU the best thread count depends on the load: a lone request should get every core,
while under load one single-thread run per instance keeps the cores busy without the barrier
waits of multi-thread runs. The instances are separate processes (one Python-backend stub each),
so they share one lock file: an instance that computes holds a shared lock on it, and an
instance about to compute first tries an exclusive lock: it succeeds only when no other
instance is computing. POSIX record locks vanish with their process, so a crashed instance
never leaves the others believing it is busy.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class PeerActivity:
    def __init__(self, path: str | Path):
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def computing(self):
        """Yields True when no other instance is computing right now; holds the shared lock meanwhile."""
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except OSError:
            alone = False
        fcntl.lockf(self._fd, fcntl.LOCK_SH)  # converts ours in place; waits out another's conversion
        try:
            yield alone
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)

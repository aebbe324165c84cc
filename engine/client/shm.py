"""System shared memory for co-located clients: the samples travel through /dev/shm, not the socket.

Each request in flight holds one slot (a registered region large enough for its samples and
rate); slots are reused, and a larger clip gets a new, larger slot. Registering regions is one
of the server's restricted APIs: the client passes the headers that open it.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading

import numpy as np

_COUNTER = itertools.count()


@dataclasses.dataclass
class Slot:
    name: str               # the region's name on the server
    key: str                # the /dev/shm key
    size: int
    handle: object
    registered: bool = False

    def write(self, arrays: list[np.ndarray]) -> None:
        from tritonclient.utils import shared_memory

        shared_memory.set_shared_memory_region(self.handle, arrays)


class SharedMemoryPool:
    """Slots for requests in flight; thread-safe. `min_bytes`: the smallest region created."""

    def __init__(self, min_bytes: int = 1 << 20):
        self.min_bytes = min_bytes
        self._free: list[Slot] = []
        self._all: list[Slot] = []
        self._lock = threading.Lock()
        self._prefix = f"s2f_{os.getpid()}_{next(_COUNTER)}"

    def acquire(self, nbytes: int) -> Slot:
        """A free slot of at least `nbytes` (new ones are unregistered: the caller registers them)."""
        from tritonclient.utils import shared_memory

        with self._lock:
            for slot in self._free:
                if slot.size >= nbytes:
                    self._free.remove(slot)
                    return slot
            index = len(self._all)
            size = max(self.min_bytes, 1 << (max(1, nbytes) - 1).bit_length())
            name = f"{self._prefix}_{index}"
            slot = Slot(name, f"/{name}", size, shared_memory.create_shared_memory_region(name, f"/{name}", size))
            self._all.append(slot)
            return slot

    def release(self, slot: Slot) -> None:
        with self._lock:
            self._free.append(slot)

    def drain(self) -> list[Slot]:
        """Every slot, for unregistering; destroy() frees them afterwards."""
        with self._lock:
            return list(self._all)

    def destroy(self) -> None:
        from tritonclient.utils import shared_memory

        with self._lock:
            slots, self._all, self._free = self._all, [], []
        for slot in slots:
            try:
                shared_memory.destroy_shared_memory_region(slot.handle)
            except Exception:  # noqa: BLE001 - already gone
                pass

"""The tritonserver shim (csrc/server_shim.c, preloaded): what keeps a local user out where
Triton 2.51 has no setting for it.

- The admin key goes to tritonserver in its environment (readable by its own user only), and
  the command line carries a placeholder that the shim swaps for the key before main() runs:
  `/proc/<pid>/cmdline`, which every local user can read, never holds it.
- The Python backend's shared-memory regions (request audio) stay owner-only from the moment they
  exist: the shim keeps the owner's bits of the backend's fchmod(0644).

The names below are the shim's (csrc/server_shim.c); tests/served/test_local_user.py proves the
two agree, by a restricted API that answers the key while no readable file shows it.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

KEY_VARIABLE = "S2F_SHIM_ADMIN_KEY"
KEY_PLACEHOLDER = "S2F_ADMIN_KEY_FROM_ENVIRONMENT"


@functools.lru_cache(maxsize=1)
def shim_path() -> Path | None:
    """The shim built with the package, or None (then the key is on the command line; said once)."""
    spec = importlib.util.find_spec("speech2face.engine.server._server_shim")
    if spec is not None and spec.origin and Path(spec.origin).is_file():
        return Path(spec.origin)
    print("tritonserver: the package's server shim (_server_shim.so) is missing, so the admin key is on "
          "tritonserver's command line, readable by local users; reinstall the package (docs/SECURITY.md)",
          file=sys.stderr)
    return None


def preloaded(env: dict[str, str], key: str | None) -> dict[str, str]:
    """`env` with the shim preloaded and, when the admin APIs are restricted, the key for it to place."""
    shim = shim_path()
    if shim is None:
        return env
    env = dict(env)
    env["LD_PRELOAD"] = " ".join(filter(None, [str(shim), env.get("LD_PRELOAD")]))
    if key is not None:
        env[KEY_VARIABLE] = key
    return env


def key_argument(key: str) -> str:
    """What the command line carries for the key: the placeholder when the shim will place the key."""
    return KEY_PLACEHOLDER if shim_path() is not None else key

"""The key that opens the server's administrative APIs to the project's own tools.

`s2f serve` (engine/server/launcher.py) restricts Triton's shared-memory, model-repository, logging and
trace APIs (`--http-restricted-api` / `--grpc-restricted-protocol`): a request to them must carry
the header `ADMIN_HEADER: <key>`, over HTTP as a header and over gRPC as metadata.

The key is, in order:
1. the environment variable `S2F_ADMIN_KEY` (for deployments that hand it to their tools), or
2. the per-user key file (`S2F_ADMIN_KEY_FILE`, default `~/.config/speech2face/admin_key`):
   32 random bytes as hex, created on first use with mode 0600 in a 0700 folder, so every server
   and tool that this user starts agrees on it and no other local user can read it.

Clients pass `admin_headers(protocol)` on those calls, e.g. with tritonclient:
`client.load_model(name, headers=admin_headers("grpc"))`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ADMIN_HEADER = "s2f-admin-key"          # lower case: gRPC metadata keys must be
ENV_KEY = "S2F_ADMIN_KEY"
ENV_KEY_FILE = "S2F_ADMIN_KEY_FILE"
GRPC_METADATA_PREFIX = "triton-grpc-protocol-"
RESTRICTED_APIS = ("shared-memory", "model-repository", "logging", "trace")


def key_file() -> Path:
    return Path(os.environ.get(ENV_KEY_FILE) or Path.home() / ".config" / "speech2face" / "admin_key")


def admin_key() -> str:
    """The admin key (env S2F_ADMIN_KEY, else the per-user key file, created 0600 when missing)."""
    if os.environ.get(ENV_KEY):
        return os.environ[ENV_KEY]
    path = key_file()
    try:
        return _valid(path.read_text().strip(), path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:  # O_EXCL: two tools starting at once agree on the first key written
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _valid(path.read_text().strip(), path)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return _valid(path.read_text().strip(), path)


def _valid(key: str, path: Path) -> str:
    if not key or not all(c.isalnum() or c in "-_" for c in key):
        raise ValueError(f"{path}: the admin key must be letters, digits, '-' or '_' (delete the file to renew it)")
    return key


def admin_headers(protocol: str = "http", key: str | None = None) -> dict[str, str]:
    """The header to pass as `headers=` to tritonclient's model-control, logging, trace and shm calls.

    Over gRPC, Triton 2.51 reads the key from the metadata key `triton-grpc-protocol-<header>`;
    both spellings are sent there."""
    key = key or admin_key()
    if protocol == "grpc":
        return {GRPC_METADATA_PREFIX + ADMIN_HEADER: key, ADMIN_HEADER: key}
    return {ADMIN_HEADER: key}


def restriction_flags(key: str) -> list[str]:
    """tritonserver flags that put RESTRICTED_APIS behind the key, on HTTP and gRPC."""
    rule = f"{','.join(RESTRICTED_APIS)}:{ADMIN_HEADER}={key}"
    return [f"--http-restricted-api={rule}", f"--grpc-restricted-protocol={rule}"]

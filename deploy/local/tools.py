"""System tools the local proof needs, installed from Debian when missing (root, as on CI)."""

from __future__ import annotations

import os
import shutil
import subprocess


class ToolMissing(RuntimeError):
    """A tool is absent and cannot be installed here; the message says why."""


def ensure(binary: str, package: str) -> str:
    """The binary's path; apt-get installs `package` first when it is missing and we are root."""
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if path:
        return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ToolMissing(f"{binary} is not installed and apt-get is not usable here (install the {package} package)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", package]):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise ToolMissing(f"{' '.join(cmd)} failed: {result.stderr.strip()[-500:]}")
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if not path:
        raise ToolMissing(f"apt-get installed {package} but {binary} is not on PATH")
    return path

"""An unprivileged local user against a running server (docs/SECURITY.md, "A local user").

A process running as `nobody` watches the host the whole time a server starts, answers requests,
restarts and answers again. It polls /dev/shm and opens every Python-backend region it can (a
descriptor opened once would read every later request), reads every /proc/<pid>/cmdline and
environ it may, and calls a restricted API. It must find no readable region and no admin key,
and be refused. Needs root (to become `nobody`); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from signals import harmonic_voice
from speech2face.engine.client import Speech2FaceClient
from speech2face.engine.contract.admin_key import admin_key, key_file
from speech2face.engine.server import leftovers, shim
from speech2face.engine.server.launcher import ServerOptions, TritonServer

NOBODY = 65534
# Runs as `nobody` under the system Python (stdlib only): the checkout may sit in a folder only
# root can enter. Arguments: the backend's region prefix and the shim's placeholder. Stdin lines:
# the key to look for, the HTTP address, the places that may hold the key (globs, tab-separated);
# EOF: stop.
WATCHER = r"""
import glob, json, os, select, sys, time, urllib.request, urllib.error
key = sys.stdin.readline().strip().encode()
http = sys.stdin.readline().strip()
key_places = sys.stdin.readline().strip().split("\t")
region_prefix, placeholder = sys.argv[1], sys.argv[2].encode()
seen_modes, opened, kept, cmdlines_read, placeholder_seen = set(), [], [], 0, False

def scan_regions():
    for path in glob.glob(f"/dev/shm/{region_prefix}*"):
        try:
            seen_modes.add(os.stat(path).st_mode & 0o777)
            kept.append(os.open(path, os.O_RDONLY))
            opened.append(path)
        except OSError:
            pass

while not select.select([sys.stdin], [], [], 0)[0]:
    scan_regions()
    time.sleep(0.001)
scan_regions()

leaks = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) == os.getpid():
        continue
    for name in ("cmdline", "environ"):
        try:
            data = open(f"/proc/{pid}/{name}", "rb").read()
        except OSError:
            continue
        cmdlines_read += name == "cmdline"
        placeholder_seen |= placeholder in data
        if key in data:
            leaks.append(f"/proc/{pid}/{name}")
for path in [p for place in key_places for p in glob.glob(place, recursive=True)]:
    try:
        if key in open(path, "rb").read():
            leaks.append(path)
    except OSError:
        pass
request = urllib.request.Request(f"http://{http}/v2/logging", data=b'{"log_verbose_level": 1}')
try:
    status = urllib.request.urlopen(request, timeout=10).status
except urllib.error.HTTPError as error:
    status = error.code
print(json.dumps({"modes": sorted(seen_modes), "opened": opened, "leaks": leaks, "cmdlines_read": cmdlines_read,
                  "placeholder_seen": placeholder_seen, "restricted_api_status": status}))
"""


def _system_python() -> str | None:
    return shutil.which("python3", path="/usr/bin:/bin")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the watcher as the unprivileged user nobody")
@pytest.mark.skipif(_system_python() is None, reason="no system python3 for the unprivileged watcher")
def test_a_local_user_reads_no_audio_no_key_and_gets_no_admin_api_across_a_restart(cpu_repository):
    assert shim.shim_path() is not None, "the package's server shim (csrc/server_shim.c) was not built"
    key = admin_key()
    options = ServerOptions(model_repository=cpu_repository)
    watcher = subprocess.Popen([_system_python(), "-I", "-c", WATCHER, leftovers.SHM_PREFIX, shim.KEY_PLACEHOLDER],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               user=NOBODY, group=NOBODY, extra_groups=[], cwd="/")
    voice = harmonic_voice()
    try:
        with TritonServer(options) as first:
            places = [str(key_file()), str(Path(tempfile.gettempdir()) / f"{leftovers.WORKDIR_PREFIX}*" / "**")]
            watcher.stdin.write(f"{key}\n{first.http_url}\n" + "\t".join(places) + "\n")
            watcher.stdin.flush()
            answers = [_infer(first.http_url, voice)]
            ports = {"http_port": first.http_port, "grpc_port": first.grpc_port, "metrics_port": first.metrics_port}
        with TritonServer(ServerOptions(model_repository=cpu_repository, **ports)) as second:   # the restart
            answers.append(_infer(second.http_url, voice))
            watcher.stdin.close()   # the watcher's last scans and the admin call run while it serves
            report = json.loads(watcher.stdout.read())
    finally:
        watcher.kill()
        watcher.wait()
    assert np.abs(answers[0] - answers[1]).max() <= 1e-5          # both servers answered the same voice
    assert report["modes"], "the watcher never saw a region (it watched the wrong place)"
    assert report["opened"] == [] and report["modes"] == [0o600], report
    assert report["cmdlines_read"] > 0 and report["placeholder_seen"], report   # it did read tritonserver's
    assert report["leaks"] == [], report
    assert report["restricted_api_status"] == 403, report


def _infer(http_url: str, voice) -> np.ndarray:
    with Speech2FaceClient(http_url, "http") as client:
        return client.infer(*voice).feature

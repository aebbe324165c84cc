"""perf_analyzer (Triton's own load generator) from this project: the binary, its environment, one run.

The perf_analyzer that runs on Debian 12 (glibc 2.36) is the 2.51 binary inside
`tritonclient[all]==2.51.0`; PyPI's `perf-analyzer` needs glibc 2.38 and installs a placeholder here.
It loads libb64 (Debian's `libb64-0d`) and libcudart.so.12 (`nvidia-cuda-runtime-cu12`), even with
no GPU. `make perf-analyzer` puts both into `.venv-perf` (the apt package when missing).

Against `s2f serve`, the shared-memory API needs the admin key (engine/contract/admin_key.py); `-H`
carries it: over HTTP as the header `s2f-admin-key`, over gRPC as the metadata key
`triton-grpc-protocol-s2f-admin-key` (perf_analyzer's help says -H is ignored for gRPC; 2.51 sends
it as metadata on the registration calls). `admin_header_flags` gives both spellings.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import subprocess
import tempfile
from pathlib import Path

from speech2face.engine.contract.admin_key import admin_headers

PERF_VENV = Path(__file__).resolve().parents[2] / ".venv-perf"   # in a checkout: where `make perf-analyzer` installs
ENV_BINARY = "S2F_PERF_ANALYZER"


def find_perf_analyzer(path: str | Path | None = None) -> Path | None:
    """The binary: `path`, else $S2F_PERF_ANALYZER, else .venv-perf's; None when it is not there."""
    candidate = Path(path or os.environ.get(ENV_BINARY) or PERF_VENV / "bin" / "perf_analyzer")
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def environment(binary: Path) -> dict[str, str]:
    """os.environ plus the CUDA runtime library of the binary's venv on LD_LIBRARY_PATH."""
    venv = Path(binary).resolve().parent.parent
    libs = [str(p) for p in sorted(venv.glob("lib/python*/site-packages/nvidia/cuda_runtime/lib"))]
    env = os.environ.copy()
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [*libs, env.get("LD_LIBRARY_PATH")]))
    return env


def admin_header_flags(protocol: str, key: str | None = None) -> list[str]:
    """`-H name:key` for every spelling of the admin header this protocol reads."""
    flags = []
    for name, value in admin_headers(protocol, key).items():
        flags += ["-H", f"{name}:{value}"]
    return flags


@dataclasses.dataclass
class PerfResult:
    returncode: int
    throughput_rps: float = float("nan")
    p50_ms: float = float("nan")
    p90_ms: float = float("nan")
    p99_ms: float = float("nan")
    output: str = ""           # perf_analyzer's stdout and stderr (the tail, when it failed)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def unstable(self) -> bool:
        """It ran, but its windows never agreed within the stability percentage (no figures)."""
        return not self.ok and "Failed to obtain stable measurement" in self.output


def measure(binary: Path, model: str, url: str, protocol: str, input_data: Path, concurrency: int, *,
            shared_memory: bool = False, admin_key: str | None = None, window_ms: int = 2000,
            stability_percent: int = 50, max_trials: int = 10, timeout_s: float = 300.0) -> PerfResult:
    """One perf_analyzer run at one concurrency; the figures of its stable windows (their CSV row).

    Stability: 3 consecutive windows whose throughput and average latency agree within
    `stability_percent` (-s 50 settles on a shared 2-core machine where -s 20 often does not)."""
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "perf.csv"
        command = [str(binary), "-m", model, "-u", url, "-i", protocol, "--input-data", str(input_data),
                   "--concurrency-range", str(concurrency), "-p", str(window_ms), "-s", str(stability_percent),
                   "-r", str(max_trials), "-f", str(table)]
        if shared_memory:
            command += ["--shared-memory", "system", *admin_header_flags(protocol, admin_key)]
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=environment(binary))
        except subprocess.TimeoutExpired:
            return PerfResult(124, output=f"perf_analyzer did not finish within {timeout_s:.0f} s")
        output = run.stdout + run.stderr
        if run.returncode != 0 or not table.exists():
            return PerfResult(run.returncode or 1, output=output[-3000:])
        row = next(csv.DictReader(table.open()))
    return PerfResult(0, float(row["Inferences/Second"]), *(float(row[f"p{q} latency"]) / 1e3 for q in (50, 90, 99)),
                      output=output)

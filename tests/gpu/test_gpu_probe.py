"""benchmarks/studies/gpu_probe.py --smoke: the GPU probe runs as the lent machine will run it.

The lent machine has PyTorch, CuPy and NumPy but not our installed package, its C++
extension or tritonclient; the smoke run hides all three here so an import that needs
them fails now rather than on the GPU.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Runs the probe with the editable install's finder removed and the unavailable modules blocked.
BOOTSTRAP = """
import runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if "ScikitBuild" not in type(f).__name__]
for name in ("speech2face.engine.features._kernels", "tritonclient", "nvidia.dali", "tensorrt"):
    sys.modules[name] = None  # importing any of them now raises ImportError
sys.argv = ["gpu_probe.py", "--smoke", "--out", sys.argv[1]]
runpy.run_path({probe!r}, run_name="__main__")
"""


def _finite_numbers(entry: dict) -> list[float]:
    return [v for v in entry.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]


def test_gpu_probe_smoke_writes_a_complete_record(tmp_path):
    out = tmp_path / "probe.json"
    script = BOOTSTRAP.format(probe=str(REPO / "benchmarks" / "studies" / "gpu_probe.py"))
    result = subprocess.run([sys.executable, "-c", script, str(out)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(out.read_text())

    assert record["errors"] == [], record["errors"]
    modules = record["env"]["modules"]
    assert modules["speech2face.training"] == str(REPO / "training" / "__init__.py")
    assert record["models"]["parameters"] > 0 and record["models"]["gflop_per_clip"] > 0

    timed = {(t["model"], t["precision"], t["mode"], t["batch"]) for t in record["timings"]}
    for model in ("encoder", "waveform_to_face"):
        for precision in ("fp32", "bf16", "fp16", "fp16_weights"):
            assert {(model, precision, "eager", 1), (model, precision, "eager", 2)} <= timed
    assert {f["impl"] for f in record["stft_floor"]} == {"numpy_fft", "torch_stft", "conv_front_end"}
    for entry in record["timings"] + record["stft_floor"]:
        assert entry["ms"] > 0 and entry["clips_per_s"] > 0
    for entry in record["timings"] + record["stft_floor"] + record["parity"]:
        assert all(math.isfinite(v) for v in _finite_numbers(entry)), entry

    parity = {(p["what"], p["precision"]): p for p in record["parity"]}
    # The conv front end in FP32 against the float64 reference (tolerance as tests/training/test_frontend.py).
    assert parity[("front_end_vs_reference", "fp32_tf32_off")]["max_abs"] < 2e-3
    # FP32 against itself is exact; reduced precisions stay close on the trained built-in weights.
    assert parity[("builtin_checkpoint_features", "fp32")]["min_cosine"] > 0.99999
    assert parity[("builtin_checkpoint_features", "bf16")]["min_cosine"] > 0.99
    assert "encoder" in result.stdout and "stft floor" in result.stdout

"""The dependency rules of docs/ARCHITECTURE.md, checked on the source (module-level imports).

Layers, lowest first: engine (runtime and client) -> training -> export -> bench. A module may
import, at module level, only from its own layer and the layers below; model_repository's Python
models import only engine. Nothing on the serving side imports PyTorch at module level. Commands
reach upwards lazily (inside the function that runs the command); that is allowed and not checked.
And the serving path really runs with PyTorch unimportable: the CLI parser, the clients, the
server launcher, the tuner, the load generator and an in-process inference.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BELOW = {  # what each top-level folder may import at module level, besides itself
    "engine": set(),
    "model_repository": {"engine"},
    "training": {"engine"},
    "export": {"engine", "training"},
    "bench": {"engine"},
}
SERVING = ("engine", "model_repository")


def _module_level_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_module_level_imports_follow_the_layers():
    broken = []
    for folder, allowed in BELOW.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            for name in _module_level_imports(path):
                parts = name.split(".")
                if parts[0] == "speech2face" and len(parts) > 1 and parts[1] in BELOW:
                    if parts[1] != folder and parts[1] not in allowed:
                        broken.append(f"{path.relative_to(ROOT)} imports {name}")
                if folder in SERVING and parts[0] == "torch":
                    broken.append(f"{path.relative_to(ROOT)} imports {name} (serving never imports PyTorch)")
    assert not broken, "\n".join(broken)


def test_the_check_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nfrom speech2face.export.repository import write_cpu_repository\n\ndef f():\n"
                   "    import speech2face.training\n")
    assert _module_level_imports(bad) == ["torch", "speech2face.export.repository"]


SERVING_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None          # `import torch` now raises ImportError
import numpy as np
from speech2face.engine import async_client, client, features, server, tune  # noqa: F401
from speech2face.engine.builtin import default_bundle
from speech2face.engine.cli import build_parser
from speech2face.engine.local_runtime import LocalRuntime
from speech2face.bench import cli  # noqa: F401
build_parser()
result = LocalRuntime(default_bundle()).infer(np.zeros(16000, np.float32) + 0.01, 16000)
assert result.image.ndim == 3 and "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
print("served without torch")
"""


def test_the_serving_path_runs_with_torch_unimportable():
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", SERVING_WITHOUT_TORCH], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "served without torch" in run.stdout, run.stderr[-2000:]

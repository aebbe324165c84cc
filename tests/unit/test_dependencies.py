"""The layers of docs/ARCHITECTURE.md, checked on every import of the source, inside functions too.

Each folder may import only the folders listed for it (and itself). engine/cli, the commands, is
the one place that reaches up to training, export and the benchmarks, and only inside the function
that runs a command. Nothing on the serving side imports PyTorch. And the serving path really runs
with PyTorch, training, export and the benchmarks unimportable.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACT, CLIENT, FEATURES, RUNTIME = "engine.contract", "engine.client", "engine.features", "engine.runtime"
REPOSITORY, SERVER, CLI, WEB = "engine.repository", "engine.server", "engine.cli", "engine.web"
ENGINE = (CONTRACT, CLIENT, WEB, FEATURES, RUNTIME, REPOSITORY, SERVER)   # everything of engine but its commands
# folder -> the project's packages (under speech2face.) its modules may import, besides their own folder
ALLOWED = {
    "engine/contract": (),
    "engine/client": (CONTRACT,),
    "engine/web": (CONTRACT, CLIENT),
    "engine/features": (CONTRACT,),
    "engine/runtime": (CONTRACT, FEATURES),
    "engine/repository": (CONTRACT, FEATURES, RUNTIME),
    "engine/server": (CONTRACT, CLIENT, FEATURES, RUNTIME, REPOSITORY),
    "model_repository": (CONTRACT, FEATURES, RUNTIME),
    "training": (*ENGINE,),
    "export": (*ENGINE, "training"),
    "benchmarks": (*ENGINE, "training", "export"),
    "deploy": (*ENGINE,),
    "engine/cli": (*ENGINE, "training", "export", "benchmarks"),
}
SERVING = ("engine", "model_repository")
PROJECT_PACKAGES = (*ENGINE, CLI, "engine", "training", "export", "benchmarks", "model_repository")


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from speech2face.engine import contract` imports the module speech2face.engine.contract
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def package_of(name: str) -> str | None:
    """The project package (a key of the layers) a module name belongs to, or None outside the project."""
    parts = name.split(".")
    if parts[0] != "speech2face" or len(parts) < 2:
        return None
    for depth in (3, 2):
        candidate = ".".join(parts[1:depth])
        if candidate in PROJECT_PACKAGES:
            return candidate
    return None


def folder_of(path: Path) -> str | None:
    rel = path.relative_to(ROOT).as_posix()
    return max((f for f in ALLOWED if rel.startswith(f + "/")), key=len, default=None)


def violations() -> list[str]:
    broken = []
    for path in sorted(_source_files()):
        folder = folder_of(path)
        if folder is None:
            continue
        own = folder.replace("/", ".")
        for line, name in imports(path):
            where = f"{path.relative_to(ROOT)}:{line} imports {name}"
            target = package_of(name)
            if target is not None and target != own and not target.startswith(own + ".") \
                    and target not in ALLOWED[folder] and target != "engine":
                broken.append(where)
            if folder.split("/")[0] in SERVING and folder != "engine/cli" and name.split(".")[0] == "torch":
                broken.append(f"{where} (serving never imports PyTorch)")
    return broken


def test_every_import_follows_the_layers():
    assert not violations(), "\n".join(violations())


def test_the_check_sees_a_violation_inside_a_function(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nfrom speech2face.engine import contract\n\ndef f():\n"
                   "    from speech2face.export.build import export_bundle\n")
    assert imports(bad) == [(1, "torch"), (2, "speech2face.engine.contract"),
                            (5, "speech2face.export.build.export_bundle")]
    assert [package_of(n) for _, n in imports(bad)] == [None, CONTRACT, "export"]


BLOCKED = """
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith(("torch.", "speech2face.training", "speech2face.export",
                                                "speech2face.benchmarks")):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Absent())
"""

SERVING_WITHOUT_UPPER_LAYERS = BLOCKED + """
import numpy as np
from speech2face.engine.client import AsyncSpeech2FaceClient, Speech2FaceClient  # noqa: F401
from speech2face.engine.repository import tuning  # noqa: F401
from speech2face.engine.runtime.builtin import default_bundle
from speech2face.engine.runtime.local_runtime import LocalRuntime
from speech2face.engine.server import launcher, supervisor  # noqa: F401
result = LocalRuntime(default_bundle()).infer(np.zeros(16000, np.float32) + 0.01, 16000)
assert result.image.ndim == 3
from speech2face.engine.cli.main import main
assert main(["features", sys.argv[1], "-o", sys.argv[2]]) == 0
try:
    main(["serve", "--help"])
except SystemExit as done:
    assert done.code == 0
print("served without torch, training, export and the benchmarks")
"""


def test_serving_runs_with_torch_training_export_and_benchmarks_unimportable(tmp_path):
    from speech2face.engine.runtime.builtin import SAMPLE_VOICE

    out = tmp_path / "features.npy"
    run = subprocess.run([sys.executable, "-c", SERVING_WITHOUT_UPPER_LAYERS, str(SAMPLE_VOICE), str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "served without torch" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    assert out.stat().st_size > 598 * 257 * 2 * 4
    assert "--repository" in run.stdout   # serve's help was printed


def test_building_the_parser_imports_no_command_dependency():
    code = ("import sys\nfrom speech2face.engine.cli.main import build_parser\nbuild_parser()\n"
            "print(sorted(m for m in ('numpy', 'tritonclient', 'onnxruntime', 'torch', 'soundfile', 'av', 'gradio',"
            " 'speech2face.training', 'speech2face.export', 'speech2face.benchmarks') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stdout + run.stderr[-2000:]


def _source_files() -> list[Path]:
    """The project's Python files: tracked, or new and not ignored (no virtualenvs, no builds)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "*.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def test_no_source_folder_holds_more_than_15_modules():
    """Folders name roles (docs/ARCHITECTURE.md); a folder past 15 modules holds more than one."""
    counts = {}
    for path in _source_files():
        if path.relative_to(ROOT).parts[0] != "tests":
            counts[path.parent] = counts.get(path.parent, 0) + 1
    crowded = {str(folder.relative_to(ROOT)): n for folder, n in counts.items() if n > 15}
    assert not crowded, crowded

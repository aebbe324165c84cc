"""A command whose optional dependency is missing ends in one line naming the extra, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

WITHOUT = """
import importlib.abc, sys
blocked = tuple(sys.argv[1].split(","))
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Absent())
from speech2face.engine.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("blocked, argv, extra", [
    ("torch", ["eval"], "train"),
    ("onnx", ["export", "--target", "gpu", "--out", "{tmp}/gpu"], "gpu"),
    ("onnx", ["check", "{tmp}"], "gpu"),
    ("nvidia", ["features", "{voice}", "-o", "{tmp}/f.npy", "--impl", "dali", "--kind", "logmel"], "gpu"),
])
def test_missing_extra_is_one_line_with_exit_2(blocked, argv, extra, tmp_path):
    from speech2face.engine.runtime.builtin import SAMPLE_VOICE

    if blocked == "onnx" and argv[0] == "check":
        from speech2face.engine.repository.cpu_repository import write_default_repository

        write_default_repository(tmp_path)
    argv = [a.format(tmp=tmp_path, voice=SAMPLE_VOICE) for a in argv]
    run = subprocess.run([sys.executable, "-c", WITHOUT, blocked, *argv], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert f"pip install 'speech2face[{extra}]'" in run.stderr and repr(blocked) in run.stderr, run.stderr

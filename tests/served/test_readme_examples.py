"""The README's client examples run as written against the real server (only the ports differ)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speech2face.engine.runtime.builtin import SAMPLE_VOICE

README = Path(__file__).resolve().parents[2] / "README.md"


def contract_blocks(language: str) -> list[str]:
    """The fenced blocks of one language in the README's section on calling the server."""
    text = README.read_text()
    section = text.split("## Calling the server", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def localise(code: str, server) -> str:
    return (code.replace("127.0.0.1:8001", server.grpc_url).replace("127.0.0.1:8000", server.http_url)
            .replace("assets/voice_sample.wav", str(SAMPLE_VOICE)).replace(".venv/bin/python", sys.executable))


@pytest.mark.parametrize("index", range(2))
def test_python_examples(triton_server, index):
    namespace: dict = {}
    exec(compile(localise(contract_blocks("python")[index], triton_server), "README.md", "exec"), namespace)
    result = namespace.get("feature", getattr(namespace.get("face"), "feature", None))
    assert result is not None and result.shape == (128,)
    assert abs(float(np.linalg.norm(result)) - 1.0) < 1e-5


@pytest.mark.parametrize("index", range(2))
def test_curl_examples(triton_server, tmp_path, index):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", localise(contract_blocks("sh")[index], triton_server)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    feature = next(o for o in answer["outputs"] if o["name"] == "FACE_FEATURE")
    assert feature["shape"] == [1, 128]
    assert abs(float(np.linalg.norm(feature["data"])) - 1.0) < 1e-5

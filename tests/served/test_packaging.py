"""The two wheels as users install them: the pure-Python client alone, and the full package with
its package data, `s2f` working from any folder.

The short tests build each wheel once (the full one incrementally under build/), install them
without their dependencies into throwaway virtualenvs that borrow the test environment's
dependencies through a path file, and run the installed `s2f` from a temporary folder. The slow
test does what a new user does: `pip install <checkout>/packaging/client "<checkout>[serve]"` into
a fresh virtualenv, dependencies and all.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

import speech2face
from speech2face.engine.runtime import builtin
from speech2face.engine.server.launcher import free_port

ROOT = builtin.PACKAGE_ROOT
VERSION = speech2face.__version__
CLIENT_FILES = ("speech2face/engine/__init__.py", "speech2face/engine/contract/", "speech2face/engine/client/",
                "speech2face/engine/cli/", "speech2face/engine/web/")
pytestmark = pytest.mark.skipif(not builtin.IS_CHECKOUT, reason="builds the wheel from a checkout")


def _run(cmd, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    command = " ".join(map(str, cmd))
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-C", f"build-dir={ROOT / 'build' / 'packaging-test'}", "-w", out, ROOT], cwd=ROOT, timeout=600)
    (path,) = out.glob("speech2face-*.whl")
    return path


@pytest.fixture(scope="module")
def client_wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("client-wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out,
          ROOT / "packaging" / "client"], cwd=ROOT, timeout=300)
    (path,) = out.glob("speech2face_client-*.whl")
    return path


def _site_packages(env_dir: Path) -> Path:
    return Path(sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)}))


def _venv_with(wheels: list[Path], env_dir: Path) -> Path:
    """A virtualenv with `wheels` installed (not editable); dependencies come from this environment.

    The borrowed folder also holds this environment's own speech2face files, but the venv's
    installed `speech2face` package comes first on the path and sees only its own folder."""
    venv.EnvBuilder(with_pip=False).create(env_dir)
    site = _site_packages(env_dir)
    # Dependencies only: the plain path entry does not run this environment's editable-install hook
    # (--ignore-installed: the borrowed folder holds an installed speech2face-client too).
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([sys.executable, "-m", "pip", "--python", env_dir / "bin" / "python", "install", "--no-deps",
          "--ignore-installed", "-q", *wheels], cwd=env_dir)
    return env_dir


@pytest.fixture(scope="module")
def installed(wheel, client_wheel, tmp_path_factory) -> Path:
    """The full package and the client package it depends on."""
    return _venv_with([client_wheel, wheel], tmp_path_factory.mktemp("venv"))


@pytest.fixture(scope="module")
def client_only(client_wheel, tmp_path_factory) -> Path:
    return _venv_with([client_wheel], tmp_path_factory.mktemp("client-venv"))


def _user_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S2F_", "PYTHON"))}
    env["XDG_CACHE_HOME"] = str(tmp / "cache")   # the generated repository goes here, not in site-packages
    return env


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "__pycache__" not in p.parts}


def test_wheel_carries_what_serving_needs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for model in ("speech2face", "preprocess", "voice_encoder", "face_decoder"):
        assert f"speech2face/model_repository/{model}/1/model.py" in names
    for data in ("models/default/model.json", "models/default/voice_encoder.onnx",
                 "models/default/face_decoder.onnx", "assets/voice_sample.wav"):
        assert f"speech2face/{data}" in names
    assert any(n.startswith("speech2face/engine/features/_kernels") and n.endswith(".so") for n in names)
    # Serving never reads the training checkpoint; nothing installs a generic top-level module.
    assert "speech2face/models/default/checkpoint.pt" not in names
    assert {n.split("/")[0] for n in names if "/" in n} == {"speech2face", f"speech2face-{VERSION}.dist-info"}
    # The client package's files are the client package's: one owner per installed file.
    assert not [n for n in names if n.startswith(CLIENT_FILES) or n == "speech2face/__init__.py"]


def _requires(wheel: Path, dist_info: str) -> list[str]:
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    return [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]


def test_wheel_metadata_keeps_the_client_light(wheel):
    requires = _requires(wheel, f"speech2face-{VERSION}.dist-info")
    base = [r.split(";")[0].strip().lower() for r in requires if "extra ==" not in r]
    assert base == [f"speech2face-client=={VERSION}"]   # the server package depends on its client, pinned
    assert f'speech2face-client[web]=={VERSION}; extra == "web"' in [r.replace("'", '"') for r in requires]
    serve = [r for r in requires if 'extra == "serve"' in r]
    assert any(r.startswith("nvidia-pytriton") for r in serve) and any(r.startswith("onnxruntime") for r in serve)
    assert not any(r.startswith(("torch", "nvidia-dali")) for r in serve)


def test_installed_export_serve_and_infer_from_any_folder(installed, tmp_path):
    python, s2f = installed / "bin" / "python", installed / "bin" / "s2f"
    site = _site_packages(installed)
    before = _tree(site / "speech2face")
    env = _user_env(tmp_path)
    where = _run([python, "-c", "import speech2face.engine.runtime.builtin as b; print(b.PACKAGE_ROOT, b.IS_CHECKOUT)"],
                 cwd=tmp_path, env=env).stdout.split()
    assert where == [str(site / "speech2face"), "False"]

    _run([s2f, "export", "--out", "repo"], cwd=tmp_path, env=env)
    assert (tmp_path / "repo" / "speech2face" / "config.pbtxt").is_file()
    assert (tmp_path / "repo" / "speech2face" / "1" / "model.py").is_file()

    audio = (0.2 * np.sin(2 * np.pi * 180 * np.arange(16000 * 2) / 16000)).astype(np.float32)
    soundfile.write(tmp_path / "voice.wav", audio, 16000)
    _serve_and_infer(s2f, tmp_path, env, "repo", "voice.wav")
    assert _tree(site / "speech2face") == before, "the installed package wrote into site-packages"


def _serve_and_infer(s2f: Path, cwd: Path, env: dict[str, str], repository: str, audio: str) -> None:
    """`s2f serve` on free ports, then `s2f infer --url` against it, both run from `cwd`."""
    ports = [str(free_port()) for _ in range(3)]
    server = subprocess.Popen([s2f, "serve", "--repository", repository, "--http-port", ports[0],
                               "--grpc-port", ports[1], "--metrics-port", ports[2]],
                              cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "serving" in server.stdout.readline()
        _run([s2f, "infer", audio, "-o", "served.png", "--url", f"127.0.0.1:{ports[1]}"], cwd=cwd, env=env)
        assert (cwd / "served.png").stat().st_size > 0
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_missing_builtin_model_names_make_train_default(monkeypatch, tmp_path):
    monkeypatch.setattr(builtin, "BUILTIN_BUNDLE", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="make train-default"):
        builtin.default_bundle()
    assert not any(tmp_path.iterdir()), "default_bundle() must not train or export anything"


@pytest.mark.slow
def test_fresh_virtualenv_installs_the_checkout_with_serve_and_serves(tmp_path):
    """What a new user does: pip install <checkout>/packaging/client "<checkout>[serve]" (not editable),
    then s2f from elsewhere."""
    # The committed tree stands for a fresh clone; the install must leave it untouched (a read-only
    # mount, as in a container build, must work).
    source = tmp_path / "checkout"
    source.mkdir()
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
    tarfile.open(fileobj=io.BytesIO(archive)).extractall(source, filter="data")
    before = _tree(source)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    _run([env_dir / "bin" / "python", "-m", "pip", "install", "-q", source / "packaging" / "client",
          f"{source}[serve]"], cwd=tmp_path, timeout=1800)
    assert _tree(source) == before, "pip install wrote into the source tree"
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = _user_env(tmp_path)
    s2f = env_dir / "bin" / "s2f"
    _run([s2f, "export", "--out", "repo"], cwd=work, env=env)
    sample = _run([env_dir / "bin" / "python", "-c",
                   "import speech2face.engine.runtime.builtin as b; print(b.SAMPLE_VOICE)"],
                  cwd=work, env=env).stdout.strip()
    _serve_and_infer(s2f, work, env, "repo", sample)
    # Without --url (and no server on the usual port), `s2f infer` serves the built-in model itself.
    _run([s2f, "infer", sample, "-o", "face.png"], cwd=work, env=env)
    assert (work / "face.png").stat().st_size > 0
    torch = subprocess.run([env_dir / "bin" / "python", "-c", "import torch"], capture_output=True)
    assert torch.returncode != 0, "[serve] must not install PyTorch"


def _dockerfile_entrypoint(path: Path) -> list[str]:
    import json

    (line,) = [text for text in path.read_text().splitlines() if text.startswith("ENTRYPOINT ")]
    return json.loads(line.split(" ", 1)[1])


def test_container_entrypoints_match_the_launcher_and_the_manifests():
    """The CPU image's entrypoint is a valid `s2f serve` call on the ports the Kubernetes manifests
    declare; the GPU image's tritonserver flags restrict the same admin APIs with the same header."""
    import yaml

    from speech2face.engine.contract.admin_key import ADMIN_HEADER, RESTRICTED_APIS
    from speech2face.engine.cli.main import build_parser

    entrypoint = _dockerfile_entrypoint(ROOT / "docker" / "Dockerfile.cpu")
    assert entrypoint[0] == "s2f"
    deployment = yaml.safe_load((ROOT / "deploy" / "cpu" / "deployment.yaml").read_text())
    (triton,) = deployment["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(entrypoint[1:] + triton["args"])
    ports = {p["name"]: p["containerPort"] for p in triton["ports"]}
    assert (args.command, args.host, args.latency_summaries) == ("serve", "0.0.0.0", True)
    assert (args.http_port, args.grpc_port, args.metrics_port, args.readiness_port) == \
        (ports["http"], ports["grpc"], ports["metrics"], ports["ready"])
    assert triton["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "ready"}
    service = yaml.safe_load((ROOT / "deploy" / "base" / "service.yaml").read_text())
    # the Service carries the traffic ports; the kubelet probes the readiness port on the pod itself
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {k: v for k, v in ports.items() if k != "ready"}

    gpu = (ROOT / "docker" / "gpu-entrypoint.sh").read_text()
    assert f'RULE="{",".join(RESTRICTED_APIS)}:{ADMIN_HEADER}=' in gpu
    for flag in ("--strict-readiness=true", "--exit-on-error=true", "--model-control-mode=none",
                 "--metrics-config=summary_latencies=true", '--http-restricted-api="$RULE"',
                 '--grpc-restricted-protocol="$RULE"'):
        assert flag in gpu, flag


def test_client_wheel_is_pure_python_and_carries_no_model(client_wheel):
    assert client_wheel.name == f"speech2face_client-{VERSION}-py3-none-any.whl"
    names = zipfile.ZipFile(client_wheel).namelist()
    assert not [n for n in names if n.endswith((".so", ".onnx", ".plan", ".pt", ".wav"))]
    assert not [n for n in names if n.startswith("speech2face/") and not n.startswith(CLIENT_FILES)
                and n != "speech2face/__init__.py"]
    assert "speech2face/engine/client/sync_client.py" in names and "speech2face/engine/cli/main.py" in names
    requires = _requires(client_wheel, f"speech2face_client-{VERSION}.dist-info")
    names = {re.split(r"[<>=!~\[;, ]", r)[0].lower() for r in requires if "extra ==" not in r}
    assert names == {"numpy", "tritonclient", "soundfile", "av", "pillow"}
    assert [r.replace("'", '"') for r in requires if "extra ==" in r] == ['gradio>=5.49; extra == "web"']
    entry_points = zipfile.ZipFile(client_wheel).read(f"speech2face_client-{VERSION}.dist-info/entry_points.txt")
    assert b"s2f = speech2face.engine.cli.main:main" in entry_points


def _no_compiler_env(env_dir: Path, tmp: Path) -> dict[str, str]:
    """The user's environment with only the venv's bin on PATH: no cc, c++ or cmake to be found."""
    return {**_user_env(tmp), "PATH": str(env_dir / "bin")}


def test_client_only_install_infers_from_a_server_and_names_the_full_package(client_only, triton_server, tmp_path):
    env = _no_compiler_env(client_only, tmp_path)
    s2f = client_only / "bin" / "s2f"
    audio = (0.2 * np.sin(2 * np.pi * 180 * np.arange(16000 * 2) / 16000)).astype(np.float32)
    soundfile.write(tmp_path / "voice.wav", audio, 16000)
    _run([s2f, "infer", "voice.wav", "-o", "face.png", "--url", triton_server.grpc_url], cwd=tmp_path, env=env)
    assert (tmp_path / "face.png").stat().st_size > 0
    for command in (["serve"], ["export", "--out", "repo"], ["features", "voice.wav", "-o", "f.npy"]):
        result = subprocess.run([str(s2f), *command], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.count("\n") == 1 and "pip install 'speech2face[serve]'" in result.stderr, result.stderr
    # No --url and nothing on the usual port: the client cannot start a server, and says what to pass.
    result = subprocess.run([str(s2f), "infer", "voice.wav", "-o", "x.png"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--url" in result.stderr and "Traceback" not in result.stderr, result.stderr

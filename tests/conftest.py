"""Shared fixtures: the default model bundle, a cpu repository and one real tritonserver per session."""

from __future__ import annotations

import pytest

from signals import harmonic_voice

from speech2face.engine.runtime import builtin
from speech2face.engine.server.launcher import ServerOptions, TritonServer


@pytest.fixture(scope="session")
def bundle():
    return builtin.default_bundle()


@pytest.fixture(scope="session")
def cpu_repository(bundle, tmp_path_factory):
    """The default cpu repository (fused layout: `speech2face` is one Python model)."""
    from speech2face.engine.repository.cpu_repository import write_cpu_repository

    return write_cpu_repository(bundle, tmp_path_factory.mktemp("repo") / "cpu")


@pytest.fixture(scope="session")
def ensemble_repository(bundle, tmp_path_factory):
    """The cpu repository's ensemble layout: preprocess -> voice_encoder -> face_decoder."""
    from speech2face.engine.repository.cpu_repository import write_cpu_repository

    return write_cpu_repository(bundle, tmp_path_factory.mktemp("repo") / "cpu-ensemble", layout="ensemble")


@pytest.fixture(scope="session")
def triton_server(cpu_repository):
    """The real tritonserver binary from the nvidia-pytriton wheel, on loopback ports."""
    server = TritonServer(ServerOptions(model_repository=cpu_repository)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ensemble_server(ensemble_repository):
    server = TritonServer(ServerOptions(model_repository=ensemble_repository)).start()
    yield server
    server.stop()


@pytest.fixture(params=["fused", "ensemble"])
def any_layout_server(request):
    """Each cpu layout's server in turn: both must serve the same contract and answers."""
    return request.getfixturevalue("triton_server" if request.param == "fused" else "ensemble_server")


@pytest.fixture
def voice_like():
    """A 2.5 s harmonic signal with a vibrato, at 16 kHz: shorter than the 6 s clip, so it is repeated."""
    return harmonic_voice()


@pytest.fixture(scope="session")
def haproxy():
    """The haproxy binary for `s2f serve --proxy`; apt-get installs it when missing (as root, as CI runs)."""
    from deploy.local.tools import ToolMissing, ensure

    try:
        return ensure("haproxy", "haproxy")
    except ToolMissing as error:
        pytest.fail(f"s2f serve --proxy needs haproxy: {error}")

"""The floods of docs/SECURITY.md ("Floods") against `s2f serve --proxy`, measured the way
benchmarks/studies/floods.py measures them (that study also runs them without the proxy).
Slow (about 3 min): `make test-slow`.
"""

from __future__ import annotations

import numpy as np
import pytest

from speech2face.benchmarks.studies import floods

pytestmark = pytest.mark.slow

AUDIO = (0.3 * np.sin(2 * np.pi * 180 * np.arange(96000) / 16000)).astype(np.float32)
OUTAGE_BOUND_S = 20.0      # the goal: a flood's outage is bounded and short


def test_idle_connections_cannot_take_the_servers_descriptors(haproxy):
    """20,600 idle connections (more than the 20,000 descriptors tritonserver has here), held for
    40 s: without the proxy they took every descriptor and the supervisor had to restart it."""
    row = floods.run("idle-connections", proxy=True, size=20600, audio=AUDIO, hold_s=40)
    print(floods.markdown([row]))
    assert row["opened"] == 20600
    assert row["peak_fds"] < 1000, row                 # tritonserver never sees the flood
    assert row["tritonserver_restarts"] == 0, row
    assert row["outage_s"] <= OUTAGE_BOUND_S, row
    assert row["ready_lies_s"] <= 1.0, row             # /ready does not say 200 while requests fail


def test_a_large_grpc_request_flood_leaves_the_service_answering(haproxy):
    """32 concurrent 52 MB gRPC calls, each on its own connection: the proxy cannot bound their
    memory (HAProxy 2.6 cannot queue HTTP/2 uploads, docs/SECURITY.md), but the service answers
    within the bound throughout and afterwards, and every flood call gets an answer."""
    row = floods.run("large-grpc", proxy=True, size=32, audio=AUDIO)
    print(floods.markdown([row]))
    assert sum(row["answers"].values()) == 32
    assert row["outage_s"] <= OUTAGE_BOUND_S, row
    assert row["answered_after_flood_s"] is not None and row["answered_after_flood_s"] <= OUTAGE_BOUND_S, row

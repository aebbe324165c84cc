"""The local proof of the Kubernetes shape: 3 real tritonserver replicas (our launcher) behind HAProxy,
with Prometheus, under load at concurrency 16 through the project's client.

The short test (make test) covers (a) the load spreads and (b) a replica killed under load costs
the client nothing. The slow one (make cluster-test) adds (c) a rolling update onto a new model
version, (d) the HPA's queue-time rule against the servers' own statistics, and every PromQL
expression of the Grafana dashboard against the real Prometheus.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from speech2face.engine.runtime import builtin
from speech2face.engine.contract.audio_files import read_audio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the deploy/ folder is not part of the installed package

from deploy.local import scenarios  # noqa: E402
from deploy.local.cluster import local_cluster  # noqa: E402
from deploy.local.load import Load  # noqa: E402
from deploy.local.tools import ToolMissing, ensure  # noqa: E402

CONCURRENCY = 16
DASHBOARD = ROOT / "deploy" / "grafana" / "speech2face.json"
ADAPTER_VALUES = ROOT / "deploy" / "monitoring" / "prometheus-adapter-values.yaml"
RECORDING_RULES = ROOT / "deploy" / "monitoring" / "recording-rules.yaml"


@pytest.fixture
def voice():
    audio, rate = read_audio(builtin.SAMPLE_VOICE)
    return np.asarray(audio, dtype=np.float32), rate


def _cluster(tmp_path, with_prometheus):
    try:
        ensure("haproxy", "haproxy")
        if with_prometheus:
            ensure("prometheus", "prometheus")
    except ToolMissing as error:
        pytest.skip(f"the local cluster needs real tools: {error}")
    base = os.environ.get("S2F_CLUSTER_BASE_PORT")   # make cluster-test CLUSTER_BASE_PORT=N
    return local_cluster(tmp_path, count=3, with_prometheus=with_prometheus, base_port=int(base) if base else None)


def _dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_adapter_rule_is_the_recording_rule():
    """The HPA's metric (adapter) and the rule the local Prometheus evaluates are one rule."""
    (adapter_rule,) = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"]
    plain = adapter_rule["metricsQuery"].replace("{<<.LabelMatchers>>}", "").replace(" by (<<.GroupBy>>)", "")
    rules = {r["record"]: r["expr"] for g in yaml.safe_load(RECORDING_RULES.read_text())["groups"] for r in g["rules"]}
    assert plain == rules[adapter_rule["name"]["as"]] == \
        "avg(delta(nv_inference_queue_duration_us[30s])/(1+delta(nv_inference_request_success[30s])))"


@pytest.fixture(scope="module")
def short_cluster(tmp_path_factory):
    """The short tests' cluster (no Prometheus), shared: the kill test restarts what it kills."""
    with _cluster(tmp_path_factory.mktemp("cluster"), with_prometheus=False) as cluster:
        yield cluster


def test_load_spreads_and_a_killed_replica_costs_no_request(short_cluster, voice):
    cluster = short_cluster
    with Load(cluster.balancer.grpc_url, *voice, concurrency=CONCURRENCY) as load:
        scenarios.warm_every_replica(cluster, load)
        shares = scenarios.spread(cluster, load, requests=60)
        killed = scenarios.kill_one(cluster, load, requests_after=30)
    print(f"\nper-replica requests {shares}; kill: {killed}; total ok {load.ok}")
    # leastconn spreads the client's connections over every replica (how evenly follows each replica's
    # speed on shared cores: that is measured, not asserted; docs/DEPLOY.md).
    assert all(count > 0 for count in shares.values()), shares
    assert killed["failed"] == 0 and not load.failed, load.failed[:3]


@pytest.mark.slow
def test_full_local_cluster(tmp_path, voice):
    from speech2face.engine.client import InferenceError, Speech2FaceClient

    with _cluster(tmp_path, with_prometheus=True) as cluster:
        prometheus = cluster.prometheus
        prometheus.wait_scraped(3)
        idle = scenarios.queue_rule_vs_statistics(cluster, window_s=5.0)["rule_us"]
        with Load(cluster.balancer.grpc_url, *voice, concurrency=CONCURRENCY) as load:
            scenarios.warm_every_replica(cluster, load)
            shares = scenarios.spread(cluster, load, requests=90)
            killed = scenarios.kill_one(cluster, load, requests_after=40)
            updated = scenarios.rolling_update(cluster, load, version=2, requests_between=20)
            queue = scenarios.queue_rule_vs_statistics(cluster, window_s=30.0)
        # One request the model refuses (client checks off), so that the refusal counter exists.
        with Speech2FaceClient(cluster.balancer.grpc_url, validate=False) as client, \
                pytest.raises(InferenceError, match="NaN"):
            client.infer(np.full(1600, np.nan, np.float32), 16000)
        time.sleep(3)  # two scrapes of the new counter: increase() needs two samples
        refusals = prometheus.value('sum(s2f_refusals_total)')
        empty = [e for e in _dashboard_expressions() if not prometheus.query(e)]
    print(f"\nshares {shares}\nkill {killed}\nrolling update {updated}\nqueue rule: idle {idle}, {queue}"
          f"\nrefusals seen by Prometheus {refusals}\nok {load.ok} failed {len(load.failed)}")
    # leastconn spreads the client's connections over every replica (how evenly follows each replica's
    # speed on shared cores: that is measured, not asserted; docs/DEPLOY.md).
    assert all(count > 0 for count in shares.values()), shares
    assert killed["failed"] == 0 and updated["failed"] == 0 and not load.failed, load.failed[:3]
    assert all(versions == {"2"} for versions in updated["versions"].values()), updated
    assert updated["served_on_new"] > 0
    assert queue["rule_us"] > max(10 * (idle or 0), 1000), (idle, queue)
    assert abs(queue["rule_us"] - queue["servers_us"]) <= 0.2 * queue["servers_us"], queue
    assert not empty, f"dashboard expressions without data: {empty}"


def _served(cluster) -> int:
    """gRPC requests the proxy forwarded and a replica answered (the replicas' own counters also
    count their readiness canaries)."""
    return sum(cluster.balancer.responses("grpc_replicas").values())


def _served_since(cluster, before: int, expected: int) -> int:
    """Requests forwarded and answered since `before`; HAProxy counts a response once it is sent."""
    deadline = time.monotonic() + 5
    while _served(cluster) - before < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return _served(cluster) - before


def test_balancer_refuses_requests_over_the_size_limit(short_cluster):
    """Requests over MAX_REQUEST_BYTES stop at HAProxy (gRPC and HTTP); a small one still goes through."""
    import tritonclient.grpc as grpc_client

    from speech2face.engine.contract import MAX_REQUEST_BYTES

    cluster = short_cluster
    cluster.wait_all_up()   # after the load test, each replica's /ready comes back once its canary answers
    before = _served(cluster)
    client = grpc_client.InferenceServerClient(cluster.balancer.grpc_url)
    big = np.zeros((1, MAX_REQUEST_BYTES // 4 + 1024), np.float32)
    inputs = [grpc_client.InferInput("AUDIO", list(big.shape), "FP32"),
              grpc_client.InferInput("SAMPLE_RATE", [1, 1], "INT32")]
    inputs[0].set_data_from_numpy(big)
    inputs[1].set_data_from_numpy(np.array([[16000]], np.int32))
    # HAProxy answers RESOURCE_EXHAUSTED at once, then resets the stream that is still uploading;
    # gRPC reports whichever it sees first. Either way no replica receives the request.
    with pytest.raises(grpc_client.InferenceServerException) as refused:
        client.infer("speech2face", inputs)
    cluster.wait_all_up()   # HAProxy's layer-7 observation may mark a server down for the reset stream
    small = np.zeros((1, 16000), np.float32)
    inputs[0] = grpc_client.InferInput("AUDIO", list(small.shape), "FP32")
    inputs[0].set_data_from_numpy(small)
    served = client.infer("speech2face", inputs)
    received = _served_since(cluster, before, 1)
    # HTTP announces the size: HAProxy answers 413 from the headers alone.
    host, port = cluster.balancer.http_url.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/v2/models/speech2face/infer")
    connection.putheader("Content-Length", str(MAX_REQUEST_BYTES + 1))
    connection.endheaders()
    http_status = connection.getresponse().status
    connection.close()
    assert refused.value.status() in ("StatusCode.RESOURCE_EXHAUSTED", "StatusCode.CANCELLED"), refused.value
    assert http_status == 413
    assert served.as_numpy("FACE_IMAGE") is not None and received == 1


def _http_status(url: str, method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> int:
    host, port = url.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest(method, path)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders(body)
    status = connection.getresponse().status
    connection.close()
    return status


def test_balancer_forwards_only_the_inference_api(short_cluster, voice):
    """Admin APIs, compressed and unsized requests stop at HAProxy; health and inference pass."""
    short_cluster.wait_all_up()   # after the load test, each replica's /ready comes back once its canary answers
    import tritonclient.grpc as grpc_client

    url = short_cluster.balancer.http_url
    assert _http_status(url, "GET", "/v2/health/ready", {}) == 200
    assert _http_status(url, "POST", "/v2/repository/index", {"Content-Length": "0"}) == 403
    assert _http_status(url, "POST", "/v2/models/speech2face/infer",
                        {"Content-Length": "2", "Content-Encoding": "gzip"}, b"{}") == 415
    assert _http_status(url, "POST", "/v2/models/speech2face/infer", {"Transfer-Encoding": "chunked"},
                        b"0\r\n\r\n") == 411

    before = _served(short_cluster)
    client = grpc_client.InferenceServerClient(short_cluster.balancer.grpc_url)
    with pytest.raises(grpc_client.InferenceServerException, match="not served through this proxy") as admin:
        client.get_model_repository_index()
    assert admin.value.status() == "StatusCode.PERMISSION_DENIED"
    audio, rate = voice
    inputs = [grpc_client.InferInput("AUDIO", [1, len(audio)], "FP32"),
              grpc_client.InferInput("SAMPLE_RATE", [1, 1], "INT32")]
    inputs[0].set_data_from_numpy(audio[None, :])
    inputs[1].set_data_from_numpy(np.array([[rate]], np.int32))
    # Refused from its headers while the body still uploads: UNIMPLEMENTED, or CANCELLED when the
    # stream reset arrives first; either way no replica receives it (counted below).
    with pytest.raises(grpc_client.InferenceServerException) as compressed:
        client.infer("speech2face", inputs, compression_algorithm="gzip")
    assert compressed.value.status() in ("StatusCode.UNIMPLEMENTED", "StatusCode.CANCELLED"), compressed.value
    assert client.infer("speech2face", inputs).as_numpy("FACE_FEATURE").shape[0] == 1
    assert _served_since(short_cluster, before, 1) == 1

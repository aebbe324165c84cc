"""The checks of the local proof, each a small function over a running cluster and its load.

(a) spread: every replica serves a fair share (Triton's per-replica counters);
(b) kill: a replica dies under load and the client sees no failure;
(c) rolling update: replicas move one at a time to a new model version, no failure;
(d) queue rule: the HPA's rule in Prometheus matches the servers' own statistics.
"""

from __future__ import annotations

import time

from speech2face.engine import contract
from speech2face.engine.runtime.builtin import default_bundle

from deploy.local.cluster import Cluster
from deploy.local.load import Load, wait_requests
from deploy.local.replicas import write_versioned_repository


def successes(stats: dict, version: str | None = None) -> int:
    """Successful requests of the speech2face model in one replica's statistics."""
    return sum(m["inference_stats"]["success"]["count"] for m in stats["model_stats"]
               if m["name"] == contract.ENSEMBLE and (version is None or m["version"] == version))


def queue_totals(stats: dict) -> tuple[float, int]:
    """(cumulative queue microseconds, successful requests) of the speech2face model."""
    models = [m for m in stats["model_stats"] if m["name"] == contract.ENSEMBLE]
    queue_ns = sum(m["inference_stats"]["queue"]["ns"] for m in models)
    return queue_ns / 1e3, sum(m["inference_stats"]["success"]["count"] for m in models)


def warm_every_replica(cluster: Cluster, load: Load, per_replica: int = 3, timeout_s: float = 120.0) -> None:
    """Until every replica has served `per_replica` requests: a replica's first requests pay its
    lazy initialisation, so a spread measured before that undercounts it."""
    deadline = time.monotonic() + timeout_s
    while min(successes(r.statistics()) for r in cluster.replicas.replicas) < per_replica:
        if time.monotonic() > deadline:
            raise TimeoutError(f"a replica served fewer than {per_replica} requests in {timeout_s} s")
        wait_requests(load, 1)


def spread(cluster: Cluster, load: Load, requests: int) -> dict[str, int]:
    """Requests each replica served while `requests` went through the balancer."""
    before = {r.name: successes(r.statistics()) for r in cluster.replicas.replicas}
    wait_requests(load, requests)
    return {r.name: successes(r.statistics()) - before[r.name] for r in cluster.replicas.replicas}


def kill_one(cluster: Cluster, load: Load, requests_after: int) -> dict:
    """SIGKILL one replica under load; the balancer marks it down; restart it afterwards."""
    victim = cluster.replicas.replicas[0]
    failed_before = load.snapshot()[1]
    repository = victim.server.options.model_repository
    victim.kill()
    cluster.balancer.wait_state(victim.name, "DOWN", timeout_s=10)
    wait_requests(load, requests_after)
    failed = load.snapshot()[1] - failed_before
    victim.start(repository)
    cluster.balancer.wait_state(victim.name, "UP", timeout_s=30)
    return {"killed": victim.name, "failed": failed, "retried": load.retried}


def rolling_update(cluster: Cluster, load: Load, version: int, requests_between: int) -> dict:
    """Drain, stop, restart on the new version, wait healthy: one replica at a time."""
    repository = write_versioned_repository(default_bundle(), cluster.workdir / f"repository-v{version}", version)
    failed_before = load.snapshot()[1]
    for replica in cluster.replicas.replicas:
        cluster.balancer.set_state(replica.name, "drain")     # no new requests; in-flight ones finish
        time.sleep(0.5)
        replica.stop()                                          # tritonserver drains what is left on SIGINT
        replica.start(repository)
        cluster.balancer.set_state(replica.name, "ready")
        cluster.balancer.wait_state(replica.name, "UP", timeout_s=30)
        wait_requests(load, requests_between)
    served = {r.name: {m["version"] for m in r.statistics()["model_stats"] if m["name"] == contract.ENSEMBLE}
              for r in cluster.replicas.replicas}
    on_new = sum(successes(r.statistics(), str(version)) for r in cluster.replicas.replicas)
    return {"failed": load.snapshot()[1] - failed_before, "versions": served, "served_on_new": on_new}


def queue_rule_vs_statistics(cluster: Cluster, window_s: float = 30.0) -> dict:
    """The HPA's rule evaluated at the end of a `window_s` window vs Triton's statistics over it."""
    replicas = cluster.replicas.replicas
    start = [queue_totals(r.statistics()) for r in replicas]
    time.sleep(window_s)
    end = [queue_totals(r.statistics()) for r in replicas]
    at = time.time()
    time.sleep(2.5)  # let Prometheus's last scrape of the window land
    per_replica = [(e[0] - s[0]) / (1 + e[1] - s[1]) for s, e in zip(start, end)]
    servers = sum(per_replica) / len(per_replica)
    rule = cluster.prometheus.value(
        "avg(delta(nv_inference_queue_duration_us[30s])/(1+delta(nv_inference_request_success[30s])))", at)
    recorded = cluster.prometheus.value("avg_time_queue_us")
    return {"servers_us": servers, "rule_us": rule, "recorded_us": recorded}

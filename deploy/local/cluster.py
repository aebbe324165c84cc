"""The local cluster: replicas + HAProxy (+ Prometheus), started and stopped together."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

from speech2face.engine.runtime.builtin import default_bundle
from speech2face.engine.contract import MAX_REQUEST_BYTES

from deploy.local.haproxy import HAProxy
from deploy.local.prometheus import Prometheus
from deploy.local.replicas import ReplicaSet, port_source, write_versioned_repository


@dataclasses.dataclass
class Cluster:
    replicas: ReplicaSet
    balancer: HAProxy
    prometheus: Prometheus | None
    workdir: Path

    def wait_all_up(self, timeout_s: float = 30.0) -> None:
        for replica in self.replicas.replicas:
            self.balancer.wait_state(replica.name, "UP", timeout_s)


@contextlib.contextmanager
def local_cluster(workdir: Path, count: int = 3, with_prometheus: bool = True, base_port: int | None = None):
    """`count` replicas of the built-in model (version 1) behind HAProxy; tools are checked first.
    Ports: free ones, or from `base_port` on (3 per replica, then HAProxy's 2 and Prometheus's)."""
    next_port = port_source(base_port)
    replicas = ReplicaSet(count, next_port)
    balancer = HAProxy(replicas.replicas, workdir, MAX_REQUEST_BYTES, next_port)   # installs haproxy when missing
    prometheus = Prometheus(replicas.replicas, workdir, next_port) if with_prometheus else None
    repository = write_versioned_repository(default_bundle(), workdir / "repository-v1", 1)
    with contextlib.ExitStack() as stack:
        stack.callback(replicas.stop)
        replicas.start(repository)
        stack.enter_context(balancer)
        if prometheus is not None:
            stack.enter_context(prometheus)
        cluster = Cluster(replicas, balancer, prometheus, workdir)
        cluster.wait_all_up()
        yield cluster

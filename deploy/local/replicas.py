"""N tritonserver replicas through the project's launcher, each on its own fixed ports.

Fixed ports keep the load balancer's configuration valid across restarts, as a Kubernetes
Service's endpoints stay valid across pod restarts.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import urllib.request
from pathlib import Path
from typing import Callable

from speech2face.engine import contract
from speech2face.engine.contract.bundle import ModelBundle
from speech2face.engine.server.launcher import ServerError, ServerOptions, TritonServer, free_port
from speech2face.engine.server.readiness import Readiness
from speech2face.engine.repository.cpu_repository import default_policy, write_cpu_repository

# What the containers pass too (docker/): p50/p99 summaries for the dashboard.
METRICS_ARGS = ("--metrics-config=summary_latencies=true",)


# Several replicas share one small machine here: one instance each, where a pod would have its
# own cores and the default two adapting instances. Their instances cannot see each other (each
# replica has its own repository), so with batches of one a replica could starve: 5-39 of ~62
# requests over 5 runs of test_load_spreads_and_a_killed_replica_costs_no_request, against 15-28
# when a replica batches its whole queue. Nor do they pin threads: all would pin the same 2 CPUs.
LOCAL_POLICY = dataclasses.replace(default_policy("fused"), instances=1, preferred_batch_size=0, pin_threads=False)


def write_versioned_repository(bundle: ModelBundle, out_dir: Path, version: int) -> Path:
    """A cpu repository whose `speech2face` model is served as `version` (a rolling update's new release)."""
    repository = write_cpu_repository(bundle, out_dir, LOCAL_POLICY)
    model_dir = repository / contract.ENSEMBLE
    if version != 1:
        (model_dir / "1").rename(model_dir / str(version))
    return repository


@dataclasses.dataclass
class Replica:
    name: str
    http_port: int
    grpc_port: int
    metrics_port: int
    ready_port: int      # GET /ready, what HAProxy checks (engine/server/readiness.py), as a pod's readinessProbe
    server: TritonServer | None = None
    readiness: Readiness | None = None

    def start(self, repository: Path, attempts: int = 2) -> None:
        """Starts the replica; a start that crashes is tried again, as Kubernetes restarts a container.
        (Seen here: tritonserver 2.51 restarted while the others serve load aborted once in a few
        starts in gRPC's poller, `ev_epoll1_linux.cc: Check failed: next_worker->initialized_cv`.)"""
        options = ServerOptions(model_repository=repository, http_port=self.http_port, grpc_port=self.grpc_port,
                                metrics_port=self.metrics_port, extra_args=METRICS_ARGS)
        for attempt in range(1, attempts + 1):
            try:
                self.server = TritonServer(options).start()
                break
            except ServerError as error:
                if attempt == attempts:
                    raise
                print(f"{self.name}: start {attempt} failed, trying again: {str(error).splitlines()[0]}", flush=True)
        if self.readiness is None:   # it outlives restarts, answering 503 while the server is away
            # Three replicas share this machine's 2 cores, so a canary may wait behind the others'
            # load: a wider budget than a pod with cores of its own needs.
            self.readiness = Readiness(self._http_url, "127.0.0.1", self.ready_port, budget_s=5.0).start()

    def _http_url(self) -> str | None:
        server = self.server
        return server.http_url if server is not None else None

    def stop(self) -> None:
        """A graceful stop: tritonserver drains in-flight requests on SIGINT."""
        if self.server is not None:
            self.server.stop()
            self.server = None

    def kill(self) -> None:
        """SIGKILL: a crash, no draining."""
        if self.server is not None:
            self.server.kill()
            self.server.stop()
            self.server = None

    def close(self) -> None:
        self.stop()
        if self.readiness is not None:
            self.readiness.close()
            self.readiness = None

    def statistics(self) -> dict:
        """Triton's own per-model statistics (cumulative counts and nanoseconds)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/v2/models/stats", timeout=5) as r:
            return json.load(r)


def port_source(base: int | None = None) -> Callable[[], int]:
    """Where the cluster's ports come from: free ones, or base, base+1, ... (`make cluster-test
    CLUSTER_BASE_PORT=N`, for a host whose firewall or other services fix the range)."""
    return free_port if base is None else itertools.count(base).__next__


class ReplicaSet:
    def __init__(self, count: int, next_port: Callable[[], int] = free_port):
        self.replicas = [Replica(f"r{i}", next_port(), next_port(), next_port(), next_port()) for i in range(count)]

    def start(self, repository: Path) -> "ReplicaSet":
        for replica in self.replicas:
            replica.start(repository)
        return self

    def stop(self) -> None:
        for replica in self.replicas:
            replica.close()

    def __enter__(self) -> "ReplicaSet":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

"""The local proof of the Kubernetes shape, with real parts only: tritonserver replicas started by
the project's launcher, HAProxy in front (h2c gRPC, health checks, a body size limit) and
Prometheus scraping every replica with the HPA's queue-time rule. `make cluster-test` runs it
(tests/cluster/test_cluster.py)."""

"""Benchmarks: the load generator (loadgen/, installed with the package), the pytest-benchmark
suites (test_*.py) and one-off studies (studies/)."""

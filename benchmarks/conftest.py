"""Benchmarks are not unit tests: `make test` collects tests/ only (pyproject testpaths)."""

import os

# One process, same clips for every implementation; keep library thread pools at 2 (the
# machine's cores) unless the caller says otherwise.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")

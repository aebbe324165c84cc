"""`s2f bench`: the load generator (benchmarks/loadgen.py) from the command line.

    s2f bench                                    # compare the triton layouts, fastapi, ort and torch
    s2f bench --url 127.0.0.1:8001 --levels 1,8  # one running server
    s2f bench --mode poisson --levels 2,4,8      # open-loop Poisson arrivals at these rates

The load generator lives in the source checkout's benchmarks/ folder (it needs FastAPI, PyTorch
and matplotlib, which a serving install does not carry), so this command needs a checkout.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

_MODULE = "speech2face_benchmarks_loadgen"


def _loadgen():
    if _MODULE in sys.modules:
        return sys.modules[_MODULE]
    from speech2face.engine.builtin import PROJECT_ROOT

    path = PROJECT_ROOT / "benchmarks" / "loadgen.py"
    if not path.exists():
        raise FileNotFoundError(f"{path}: s2f bench needs the source checkout's benchmarks/ folder")
    spec = importlib.util.spec_from_file_location(_MODULE, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE] = module    # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def cmd_bench(args) -> int:
    loadgen = _loadgen()
    try:
        return loadgen.run(args)
    except ValueError as error:   # bad levels, targets or durations: one line, exit 2, like other usage errors
        print(f"s2f bench: error: {error}", file=sys.stderr)
        return 2


def add_bench_command(subparsers) -> argparse.ArgumentParser:
    bench = subparsers.add_parser("bench", help="load benchmark: concurrency sweep or Poisson rates, "
                                                "Triton vs FastAPI vs in-process engines")
    try:
        _loadgen().add_arguments(bench)
    except Exception:  # noqa: BLE001 - no checkout (or a broken one): cmd_bench reports it when run
        pass
    bench.set_defaults(run=cmd_bench)
    return bench

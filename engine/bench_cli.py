"""`s2f bench`: the load generator (the speech2face.bench package) from the command line.

The parser is built from the package's own arguments; nothing runs until the command does.
The comparison's engines need FastAPI, PyTorch and matplotlib (a serving install may lack
them): each is imported only when its target runs.
"""

from __future__ import annotations

import argparse
import sys


def cmd_bench(args) -> int:
    from speech2face.bench.cli import run

    try:
        return run(args)
    except ValueError as error:   # bad levels, targets or durations: one line, exit 2, like other usage errors
        print(f"s2f bench: error: {error}", file=sys.stderr)
        return 2


def add_bench_command(subparsers) -> argparse.ArgumentParser:
    from speech2face.bench.cli import add_arguments

    bench = subparsers.add_parser("bench", help="load benchmark: concurrency sweep or Poisson rates, "
                                                "Triton vs FastAPI vs in-process engines, in rounds")
    add_arguments(bench)
    bench.set_defaults(run=cmd_bench)
    return bench

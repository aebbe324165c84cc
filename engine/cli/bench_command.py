"""`s2f bench`: the load generator (speech2face.benchmarks.loadgen), which defines its own arguments.

`s2f` hands every argument after `bench` through (engine/cli/main.py), so building its parser
imports nothing of the benchmarks; `s2f bench --help` prints the load generator's own help.
"""

from __future__ import annotations


def add(commands) -> None:
    bench = commands.add_parser("bench", add_help=False,
                                help="load benchmark: concurrency sweep or Poisson rates, Triton vs FastAPI vs "
                                     "in-process engines, in rounds (s2f bench --help)")
    bench.set_defaults(run=run, passthrough=True)


def run(args) -> int:
    from speech2face.benchmarks.loadgen.cli import main

    return main(args.arguments, prog="s2f bench")

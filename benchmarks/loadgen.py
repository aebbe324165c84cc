"""The load generator moved into the package: `s2f bench`, or `python -m speech2face.bench`.

This path is kept for the command lines and scripts that name it (`python benchmarks/loadgen.py
compare ...`: the old `compare` / `run` words are accepted and dropped).
"""

import sys

from speech2face.bench.cli import main
from speech2face.bench.clips import make_clips  # noqa: F401 - for scripts that import it from here
from speech2face.bench.targets import torch_function  # noqa: F401
from speech2face.engine.contract import FEATURE_ATOL  # noqa: F401

if __name__ == "__main__":
    argv = sys.argv[1:]
    raise SystemExit(main(argv[1:] if argv[:1] in (["compare"], ["run"]) else argv))

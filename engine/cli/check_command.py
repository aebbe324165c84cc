"""`s2f check REPO`: runs every file a repository ships on this CPU (export/check.py)."""

from __future__ import annotations

import sys
from pathlib import Path


def add(commands) -> None:
    check = commands.add_parser("check", help="run every file a repository ships on this CPU and "
                                              "compare with the in-process runtime")
    check.add_argument("repository", type=Path, help="a model repository written by `s2f export`")
    check.add_argument("--bundle", type=Path, help="the model bundle it should serve (default: the built-in model)")
    check.set_defaults(run=run)


def run(args) -> int:
    from speech2face.engine.contract.bundle import load_bundle
    from speech2face.export import check_stages  # noqa: F401 - ONNX ([gpu] extra) is needed: say so before any work
    from speech2face.export.check import check_repository, format_table

    if not args.repository.is_dir():
        print(f"s2f check: {args.repository} is not a directory", file=sys.stderr)
        return 2
    rows = check_repository(args.repository, load_bundle(args.bundle) if args.bundle else None)
    print(format_table(rows))
    failed = [r for r in rows if not r.ok]
    print(f"{len(rows) - len(failed)}/{len(rows)} ok: {'PASS' if not failed else 'FAIL'}")
    return 1 if failed else 0

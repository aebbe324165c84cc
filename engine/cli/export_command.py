"""`s2f export`: a cpu or gpu Triton repository from the built-in model, a bundle or a checkpoint.

It writes into --out only (engine/repository/staging.py): a foreign non-empty folder is refused
unless --force, which moves it aside; a checkpoint's bundle goes to a temporary folder."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from speech2face.engine.cli.common import UsageError


def add(commands) -> None:
    export = commands.add_parser("export", help="write a Triton model repository")
    export.add_argument("--target", choices=("cpu", "gpu"), default="cpu")
    export.add_argument("--out", required=True)
    source = export.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", help="a training checkpoint (needs PyTorch)")
    source.add_argument("--bundle", help="an exported model bundle (default: the built-in model)")
    export.add_argument("--layout", choices=("fused", "ensemble"), default="fused",
                        help="cpu target: one fused Python model (fastest), or the three-stage ensemble")
    export.add_argument("--gpu-backend", choices=("tensorrt", "onnxruntime"), default="tensorrt",
                        help="gpu target: TensorRT plans, or ONNX Runtime with the TensorRT accelerator")
    export.add_argument("--build-plans", action=argparse.BooleanOptionalAction, default=None,
                        help="gpu target: build TensorRT plans now (default: only where a GPU is present)")
    export.add_argument("--force", action="store_true",
                        help="write even if --out holds files s2f did not write (they are moved aside, not deleted)")
    export.set_defaults(run=run)


def run(args) -> int:
    from speech2face.engine.repository.staging import ForeignFolderError, check_target

    try:
        check_target(args.out, args.force)   # before any work
    except ForeignFolderError as error:
        raise UsageError(str(error)) from None
    with tempfile.TemporaryDirectory(prefix="s2f-export-") as scratch:
        bundle = _source(args, Path(scratch))
        if args.target == "gpu":
            return _export_gpu(args, bundle)
        from speech2face.engine.repository.cpu_repository import write_cpu_repository

        print(write_cpu_repository(bundle, args.out, layout=args.layout, force=args.force))
    return 0


def _source(args, scratch: Path):
    from speech2face.engine.contract.bundle import load_bundle
    from speech2face.engine.runtime.builtin import default_bundle

    if args.checkpoint:
        from speech2face.export.build import export_bundle

        return export_bundle(args.checkpoint, scratch / "bundle")
    return load_bundle(args.bundle) if args.bundle else default_bundle()


def _export_gpu(args, bundle) -> int:
    from speech2face.export.gpu_configs import GpuPolicy
    from speech2face.export.gpu_repository import read_gpu_summary, write_gpu_repository

    repository = write_gpu_repository(bundle, args.out, GpuPolicy(backend=args.gpu_backend),
                                      build_plans=args.build_plans, force=args.force)
    print(repository)
    print(read_gpu_summary(repository), file=sys.stderr)
    return 0

"""`s2f infer`: voice files or folders -> face PNGs (and, with --feature, the face features)."""

from __future__ import annotations

import sys
from pathlib import Path

from speech2face.engine.cli.common import UsageError, add_server_options, endpoint


def add(commands) -> None:
    infer = commands.add_parser("infer", help="voice file(s) or a folder -> face PNG(s)")
    infer.add_argument("audio", nargs="+", help="WAV/FLAC/OGG files or folders")
    infer.add_argument("-o", "--output", required=True, help="PNG file, or a folder for several inputs")
    infer.add_argument("--url", help="host:port of a running server (default: one on the usual local "
                                     "port, 8001 gRPC / 8000 HTTP, or else a temporary one)")
    infer.add_argument("-r", "--recursive", action="store_true", help="also take audio files in subfolders")
    infer.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    infer.add_argument("--repository", help="repository for the local server (default: built-in model)")
    add_server_options(infer)
    infer.set_defaults(run=run)


def run(args) -> int:
    """Every file that can be read gets its face; the others are reported; exit 2 if any failed."""
    from speech2face.engine.cli import infer_files
    from speech2face.engine.client import Speech2FaceClient

    jobs = infer_files.collect(args.audio, args.recursive)
    if not jobs:
        raise UsageError("no audio files found in the given inputs")
    out = Path(args.output)
    if len(jobs) > 1 and out.suffix:
        raise UsageError("several inputs need -o to name a folder, not a file")
    good, failed = infer_files.check(jobs)
    for job, reason in failed:
        print(f"{job.source}: {reason}", file=sys.stderr)
    if good:
        where = dict(zip(jobs, infer_files.targets(jobs, out)))
        with endpoint(args) as url, Speech2FaceClient(url, args.protocol) as client:
            failed += infer_files.run(client, [(job, where[job]) for job in good])
    if failed:
        print(f"s2f infer: {len(failed)} of {len(jobs)} files failed", file=sys.stderr)
    return 2 if failed else 0

"""`s2f infer`: voice files or folders -> face PNGs (and, with --feature, the face features)."""

from __future__ import annotations

import sys
from pathlib import Path

from speech2face.engine.cli.common import UsageError, add_server_options, endpoint


def add(commands) -> None:
    infer = commands.add_parser("infer", help="voice or video file(s), or a folder -> face PNG(s)")
    infer.add_argument("audio", nargs="+", help="audio or video files (WAV, FLAC, OGG, MP3, M4A, WebM, MP4, ...: "
                                                "anything FFmpeg reads) or folders")
    infer.add_argument("-o", "--output", required=True, help="PNG file, or a folder for several inputs")
    infer.add_argument("--feature", help="also write the face feature (float32, L2-normalised, .npy): a file, "
                                         "or a folder for several inputs (named like the PNGs)")
    infer.add_argument("--url", help="host:port of a running server (default: one on the usual local "
                                     "port, 8001 gRPC / 8000 HTTP, or else a temporary one)")
    infer.add_argument("-r", "--recursive", action="store_true", help="also take audio files in subfolders")
    infer.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    infer.add_argument("--repository", help="repository for the local server (default: built-in model)")
    add_server_options(infer)
    infer.set_defaults(run=run)


def run(args) -> int:
    """Every file that can be read gets its face; the others are reported; exit 2 if any failed.
    A folder's files that are not audio or video are skipped and counted, not failed."""
    from speech2face.engine.cli import infer_files
    from speech2face.engine.client import Speech2FaceClient

    jobs, skipped = infer_files.collect(args.audio, args.recursive)
    if skipped:
        print(f"s2f infer: {infer_files.skipped_line(skipped)}", file=sys.stderr)
    if not jobs:
        raise UsageError("no audio files found in the given inputs")
    out = Path(args.output)
    features = Path(args.feature) if args.feature else None
    if len(jobs) > 1 and out.suffix:
        raise UsageError("several inputs need -o to name a folder, not a file")
    if len(jobs) > 1 and features is not None and features.suffix:
        raise UsageError("several inputs need --feature to name a folder, not a file")
    good, failed = infer_files.check(jobs)
    for _, line in failed:
        print(line, file=sys.stderr)
    if good:
        images = dict(zip(jobs, infer_files.targets(jobs, out, ".png")))
        vectors = dict(zip(jobs, infer_files.targets(jobs, features, ".npy"))) if features is not None else {}
        with endpoint(args) as url, Speech2FaceClient(url, args.protocol) as client:
            failed += infer_files.run(client, [(job, images[job], vectors.get(job)) for job in good])
    total = len(jobs) + len(skipped)
    skips = f", {len(skipped)} skipped (not audio)" if skipped else ""
    if failed:
        print(f"s2f infer: {len(failed)} of {total} files failed{skips}; {len(jobs) - len(failed)} faces written",
              file=sys.stderr)
        return 2
    if total > 1:
        print(f"s2f infer: {len(jobs)} of {total} files -> faces{skips}")
    return 0

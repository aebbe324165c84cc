"""`s2f`: serve, infer, export, tune, eval, bench, features, data and train (one function per
command's parser below; bench, features, data and train come from their own modules).

Errors print one line and exit 2, without a traceback."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import time
from pathlib import Path


class UsageError(Exception):
    pass


def _add_server_options(parser: argparse.ArgumentParser, ports: tuple[int, int, int] = (0, 0, 0)) -> None:
    """--host and the ports (gRPC, HTTP, metrics); 0 picks a free port."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--grpc-port", type=int, default=ports[0], help=f"default {ports[0]}; 0 picks a free port")
    parser.add_argument("--http-port", type=int, default=ports[1], help=f"default {ports[1]}")
    parser.add_argument("--metrics-port", type=int, default=ports[2], help=f"default {ports[2]}")
    parser.add_argument("--open-admin-apis", action="store_true",
                        help="serve the shared-memory, model-repository, logging and trace APIs without the "
                             "admin key (docs/SECURITY.md); by default they need it")


def _server_options(args, repository: Path):
    from speech2face.engine.server import ServerOptions

    return ServerOptions(model_repository=repository, host=args.host, grpc_port=args.grpc_port,
                         http_port=args.http_port, metrics_port=args.metrics_port,
                         model_control=getattr(args, "model_control", "none"),
                         open_admin_apis=getattr(args, "open_admin_apis", False),
                         # p50/p99 per model on the metrics port (Prometheus summaries, Triton >= 2.40)
                         extra_args=("--metrics-config=summary_latencies=true",)
                         if getattr(args, "latency_summaries", False) else ())


def _repository(args) -> Path:
    from speech2face.engine.builtin import default_repository

    if args.repository:
        repository = Path(args.repository)
        if not (repository.is_dir() and any(repository.glob("*/config.pbtxt"))):
            raise UsageError(f"{repository}: not a Triton model repository (write one with `s2f export`)")
        return repository
    return default_repository()


def cmd_serve(args) -> int:
    """Runs a supervised server (engine/supervisor.py) until Ctrl-C or SIGTERM, which drain and stop it."""
    from speech2face.engine.supervisor import Supervisor, SupervisorPolicy

    supervisor = Supervisor(_server_options(args, _repository(args)),
                            SupervisorPolicy(check_interval_s=args.check_interval))
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)   # also when started in the background (SIGINT ignored)
    try:
        server = supervisor.start()
        print(f"speech2face serving: gRPC {server.grpc_url}  HTTP {server.http_url}  "
              f"metrics {server.metrics_url}  (Ctrl-C stops)", flush=True)
        return supervisor.run()
    except KeyboardInterrupt:
        print("stopping…", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # a second Ctrl-C must not cut the drain short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.close()


def _raise_interrupt(*_) -> None:
    raise KeyboardInterrupt


# Triton's usual ports: `s2f serve` listens there by default, and `s2f infer` reuses a server found there.
LOCAL_PORTS = {"grpc": 8001, "http": 8000, "metrics": 8002}


def _local_server(protocol: str) -> str | None:
    """127.0.0.1 at the default port, when a server there serves the speech2face model."""
    from speech2face.engine.client import Speech2FaceClient

    url = f"127.0.0.1:{LOCAL_PORTS[protocol]}"
    with Speech2FaceClient(url, protocol, timeout_s=2.0) as client:
        return url if client.is_ready() else None


@contextlib.contextmanager
def _endpoint(args):
    """The server at --url, one already up on the default local port, or a temporary local one."""
    url = args.url or (None if args.repository else _local_server(args.protocol))
    if url:
        yield url
        return
    from speech2face.engine.server import TritonServer

    start = time.perf_counter()
    with TritonServer(_server_options(args, _repository(args))) as server:
        print(f"started a local server in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        yield server.grpc_url if args.protocol == "grpc" else server.http_url


def cmd_infer(args) -> int:
    """Every file that can be read gets its face; the others are reported; exit 2 if any failed."""
    from speech2face.engine import infer_files
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
        with _endpoint(args) as url, Speech2FaceClient(url, args.protocol) as client:
            failed += infer_files.run(client, [(job, where[job]) for job in good])
    if failed:
        print(f"s2f infer: {len(failed)} of {len(jobs)} files failed", file=sys.stderr)
    return 2 if failed else 0


def cmd_export(args) -> int:
    """Writes a repository into --out only (export/staging.py): a foreign non-empty folder is refused
    unless --force, which moves it aside; a checkpoint's bundle goes to a temporary folder."""
    from speech2face.export.staging import ForeignFolderError, check_target

    if args.target not in ("cpu", "gpu"):
        raise UsageError(f"unknown target {args.target!r}; use --target cpu or gpu")
    try:
        check_target(args.out, args.force)   # before any work
    except ForeignFolderError as error:
        raise UsageError(str(error)) from None
    with tempfile.TemporaryDirectory(prefix="s2f-export-") as scratch:
        bundle = _export_source(args, Path(scratch))
        if args.target == "gpu":
            return _export_gpu(args, bundle)
        from speech2face.export.repository import write_cpu_repository

        print(write_cpu_repository(bundle, args.out, layout=args.layout, force=args.force))
    return 0


def _export_source(args, scratch: Path):
    from speech2face.engine.builtin import default_bundle
    from speech2face.engine.bundle import load_bundle

    if args.checkpoint:
        from speech2face.export.build import export_bundle

        return export_bundle(args.checkpoint, scratch / "bundle")
    return load_bundle(args.bundle) if args.bundle else default_bundle()


def _export_gpu(args, bundle) -> int:
    import inspect

    from speech2face.export.gpu_configs import GpuPolicy
    from speech2face.export.gpu_repository import read_gpu_summary, write_gpu_repository
    from speech2face.export.staging import is_ours, set_aside

    try:
        policy = GpuPolicy(backend=getattr(args, "gpu_backend", None) or "tensorrt")
    except ValueError as error:
        raise UsageError(str(error)) from error
    options = {"build_plans": getattr(args, "build_plans", None)}
    if "force" in inspect.signature(write_gpu_repository).parameters:
        options["force"] = args.force
    elif args.force and not is_ours(Path(args.out)):
        set_aside(args.out)   # a writer without staging would replace the folder: keep what was there
    repository = write_gpu_repository(bundle, args.out, policy, **options)
    print(repository)
    print(read_gpu_summary(repository), file=sys.stderr)
    return 0


def cmd_eval(args) -> int:
    """Held-out evaluation of a checkpoint (needs the training stack: PyTorch); see training/eval_command.py."""
    import json

    from speech2face.engine.builtin import ARTIFACTS, BUILTIN_BUNDLE
    from speech2face.training.eval_command import run_eval
    from speech2face.training.evaluate import BUILTIN_TITLE

    checkpoint = Path(args.checkpoint or BUILTIN_BUNDLE / "checkpoint.pt")
    out = Path(args.out) if args.out else ARTIFACTS / "eval" / checkpoint.parent.name
    # The built-in bundle's report is committed: its title names no machine-specific path.
    title = BUILTIN_TITLE if args.checkpoint is None else f"Evaluation of {args.checkpoint}"
    try:
        result = run_eval(checkpoint, Path(args.data) if args.data else None, out,
                          Path(args.report) if args.report else None, title)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps(result))
    return 0


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def cmd_tune(args) -> int:
    from speech2face.engine import tune
    from speech2face.engine.audio_io import read_audio
    from speech2face.engine.client import Speech2FaceClient
    from speech2face.engine.builtin import SAMPLE_VOICE
    from speech2face.engine.server import TritonServer

    repository = _repository(args)
    audio, rate = read_audio(args.audio or SAMPLE_VOICE)
    candidates = tune.candidates(args.instances, args.delays, args.max_batch, args.threads, args.lanes,
                                 args.preferred, args.pin)
    args.model_control = "explicit"
    server = None if args.url else TritonServer(_server_options(args, repository)).start()
    url = args.url or server.grpc_url
    results = []
    try:
        control = Speech2FaceClient(url)   # its load_model carries the admin key (engine/admin_key.py)
        for candidate in candidates:
            tune.configure(control, repository, candidate)
            result = tune.measure(url, candidate, audio, rate, args.concurrency, args.window)
            results.append(result)
            print(f"{candidate.label():<54} {result.throughput:7.1f} req/s  p50 {result.p50_ms:7.1f} ms  "
                  f"p99 {result.p99_ms:7.1f} ms  errors {result.errors}", flush=True)
    finally:
        if server is not None:
            server.stop()
    print(f"\nfrontier (throughput vs p99 at concurrency {args.concurrency}):")
    for r in sorted(tune.frontier(results), key=lambda r: r.p99_ms):
        print(f"  {r.candidate.label():<54} {r.throughput:7.1f} req/s  p99 {r.p99_ms:7.1f} ms")
    chosen = tune.choose(results, args.p99_budget_ms)
    tune.write_choice(repository, chosen.candidate)
    print(f"\nchosen: {chosen.candidate.label()}; written to {repository}")
    return 0


def _add_serve_command(commands) -> None:

    serve = commands.add_parser("serve", help="run tritonserver on a model repository")
    serve.add_argument("--repository", help="Triton model repository (default: the built-in model)")
    serve.add_argument("--model-control", choices=("none", "explicit"), default="none",
                       help="'explicit' turns on the load/unload API (off by default)")
    serve.add_argument("--latency-summaries", action="store_true",
                       help="export request latency quantiles (p50, p99) per model on the metrics port")
    serve.add_argument("--check-interval", type=float, default=5.0,
                       help="seconds between the supervisor's health checks (server, model, canary inference)")
    _add_server_options(serve, ports=(LOCAL_PORTS["grpc"], LOCAL_PORTS["http"], LOCAL_PORTS["metrics"]))
    serve.set_defaults(run=cmd_serve)


def _add_infer_command(commands) -> None:
    infer = commands.add_parser("infer", help="voice file(s) or a folder -> face PNG(s)")
    infer.add_argument("audio", nargs="+", help="WAV/FLAC/OGG files or folders")
    infer.add_argument("-o", "--output", required=True, help="PNG file, or a folder for several inputs")
    infer.add_argument("--url", help="host:port of a running server (default: one on the usual local "
                                     "port, 8001 gRPC / 8000 HTTP, or else a temporary one)")
    infer.add_argument("-r", "--recursive", action="store_true", help="also take audio files in subfolders")
    infer.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    infer.add_argument("--repository", help="repository for the local server (default: built-in model)")
    _add_server_options(infer)
    infer.set_defaults(run=cmd_infer)


def _add_export_command(commands) -> None:
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
    export.set_defaults(run=cmd_export)


def _add_tune_command(commands) -> None:
    tuning = commands.add_parser("tune", help="sweep instances, queue delay and max batch; write the best config")
    tuning.add_argument("--repository", required=True,
                        help="cpu repository to tune and rewrite (write one with `s2f export --target cpu`)")
    tuning.add_argument("--url", help="gRPC host:port of a server started with --model-control explicit "
                                      "on that repository (default: start one)")
    tuning.add_argument("--audio", help="clip to send (default: the bundled sample)")
    tuning.add_argument("--concurrency", type=int, default=8)
    tuning.add_argument("--window", type=float, default=5.0, help="seconds measured per candidate")
    tuning.add_argument("--instances", type=_int_list, default=[1, 2])
    tuning.add_argument("--delays", type=_int_list, default=[0, 2000, 8000], help="max queue delays, us")
    tuning.add_argument("--max-batch", type=_int_list, default=[8, 32])
    tuning.add_argument("--threads", type=_int_list, default=None,
                        help="threads per instance (ONNX Runtime and feature kernel); default: as written")
    tuning.add_argument("--lanes", type=_int_list, default=None,
                        help="fused model: single-thread lanes a batch is split over (0: none); default: as written")
    tuning.add_argument("--preferred", type=_int_list, default=None,
                        help="dynamic batcher's preferred batch sizes to try (0: batch every queued request); "
                             "default: as written")
    tuning.add_argument("--pin", type=_int_list, default=None,
                        help="fused model: pin a lone request's threads to CPUs of their own (0/1); "
                             "default: as written")
    tuning.add_argument("--p99-budget-ms", type=float, help="pick the fastest candidate within this p99")
    _add_server_options(tuning)
    tuning.set_defaults(run=cmd_tune)


def _add_eval_command(commands) -> None:
    evaluation = commands.add_parser("eval", help="retrieval R@K and attribute agreement on held-out identities")
    evaluation.add_argument("--checkpoint", help="default: the built-in model's checkpoint")
    evaluation.add_argument("--data", help="synthetic corpus folder (default: the checkpoint recipe's own, "
                                           "generated and cached when missing)")
    evaluation.add_argument("--out", help="folder for evaluation.json and EVALUATION.md (default: "
                                          "artifacts/eval/<checkpoint folder>; --out models/default rewrites the "
                                          "built-in model's committed report)")
    evaluation.add_argument("--report", help="markdown report path (default: OUT/EVALUATION.md)")
    evaluation.add_argument("--json", action="store_true", help="print the metrics as one JSON object last")
    evaluation.set_defaults(run=cmd_eval)


def _add_check_command(commands) -> None:
    from speech2face.export import check  # NumPy and protobuf config messages at import; no PyTorch

    checking = commands.add_parser("check", help="run every file a repository ships on this CPU and "
                                                 "compare with the in-process runtime")
    check.add_arguments(checking)
    checking.set_defaults(run=check.run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2f", description="Speech2Face engine: a face from a voice, on Triton.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_serve_command(commands)
    _add_infer_command(commands)
    _add_export_command(commands)
    _add_check_command(commands)
    _add_tune_command(commands)
    _add_eval_command(commands)

    try:
        from speech2face.engine.features_cli import add_features_command
    except ImportError:
        pass
    else:
        add_features_command(commands)
    try:
        from speech2face.engine.bench_cli import add_bench_command
    except ImportError:
        pass
    else:
        add_bench_command(commands)
    from speech2face.training.corpus_cli import add_corpus_commands  # argparse only; torch loads per command

    add_corpus_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        from speech2face.engine.audio_io import AudioFileError
        from speech2face.engine.client import InferenceError
        from speech2face.engine.server import ServerError
    except KeyboardInterrupt:   # Ctrl-C while the command is still loading: nothing started yet
        print("s2f: interrupted", file=sys.stderr)
        return 130
    try:
        return args.run(args)
    except KeyboardInterrupt:   # every server a command started is stopped on the way out
        print(f"s2f {args.command}: interrupted", file=sys.stderr)
        return 130
    except (UsageError, AudioFileError, InferenceError, FileNotFoundError) as error:
        print(f"s2f {args.command}: error: {error}", file=sys.stderr)
        return 2
    except ServerError as error:
        print(f"s2f {args.command}: the server failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

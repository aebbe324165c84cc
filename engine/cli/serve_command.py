"""`s2f serve`: a supervised tritonserver until Ctrl-C or SIGTERM, which drain and stop it."""

from __future__ import annotations

import signal

from speech2face.engine.cli.common import LOCAL_PORTS, add_server_options, repository, server_options


def add(commands) -> None:
    serve = commands.add_parser("serve", help="run tritonserver on a model repository")
    serve.add_argument("--repository", help="Triton model repository (default: the built-in model)")
    serve.add_argument("--model-control", choices=("none", "explicit"), default="none",
                       help="'explicit' turns on the load/unload API (off by default)")
    serve.add_argument("--latency-summaries", action="store_true",
                       help="export request latency quantiles (p50, p99) per model on the metrics port")
    serve.add_argument("--check-interval", type=float, default=5.0,
                       help="seconds between the supervisor's health checks (server, model, canary inference)")
    serve.add_argument("--readiness-port", type=int, default=None,
                       help="serve GET /ready here: 200 while the model answers a canary within 2 s, else 503 "
                            "(for Kubernetes' readinessProbe and load balancers; Triton's /v2/health/ready only "
                            "says the model is loaded). Default: off")
    add_server_options(serve, ports=(LOCAL_PORTS["grpc"], LOCAL_PORTS["http"], LOCAL_PORTS["metrics"]))
    serve.set_defaults(run=run)


def _raise_interrupt(*_) -> None:
    raise KeyboardInterrupt


def run(args) -> int:
    from speech2face.engine.server.readiness import Readiness
    from speech2face.engine.server.supervisor import Supervisor, SupervisorPolicy

    supervisor = Supervisor(server_options(args, repository(args)),
                            SupervisorPolicy(check_interval_s=args.check_interval))
    readiness = None
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)   # also when started in the background (SIGINT ignored)
    try:
        server = supervisor.start()
        if args.readiness_port is not None:
            readiness = Readiness(supervisor.http_url, args.host, args.readiness_port).start()
        ready = f"  readiness {args.host}:{readiness.port}/ready" if readiness else ""
        print(f"speech2face serving: gRPC {server.grpc_url}  HTTP {server.http_url}  "
              f"metrics {server.metrics_url}{ready}  (Ctrl-C stops)", flush=True)
        return supervisor.run()
    except KeyboardInterrupt:
        print("stopping…", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # a second Ctrl-C must not cut the drain short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if readiness is not None:
            readiness.close()
        supervisor.close()

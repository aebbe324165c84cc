"""`s2f serve`: a supervised tritonserver until Ctrl-C or SIGTERM, which drain and stop it."""

from __future__ import annotations

import dataclasses
import signal

from speech2face.engine.cli.common import LOCAL_PORTS, UsageError, add_server_options, repository, server_options


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
    serve.add_argument("--memory-limit", type=float, default=None, metavar="GIB",
                       help="restart tritonserver (drained) when it and its stubs hold more than this many GiB "
                            "for two checks in a row: what a flood of large requests leaves allocated "
                            "(docs/SECURITY.md, \"Floods\"). Default: no limit")
    serve.add_argument("--proxy", action="store_true",
                       help="front tritonserver with HAProxy on the gRPC and HTTP ports (tritonserver moves to "
                            "private loopback ports): a request size limit, only the inference API, bounded "
                            "connections and per-server concurrency (docs/SECURITY.md, \"Floods\"); needs "
                            "haproxy installed")
    add_server_options(serve, ports=(LOCAL_PORTS["grpc"], LOCAL_PORTS["http"], LOCAL_PORTS["metrics"]))
    serve.set_defaults(run=run)


def _raise_interrupt(*_) -> None:
    raise KeyboardInterrupt


def _proxied(args, options):
    """With --proxy: the ServerProxy on the public ports, and tritonserver's options moved to
    private loopback ports (fixed now, so that restarts keep them and the proxy's backend)."""
    from speech2face.engine.contract import MAX_REQUEST_BYTES
    from speech2face.engine.server.launcher import resolve_ports
    from speech2face.engine.server.proxy import ProxyError, ServerProxy

    grpc_port, http_port = resolve_ports("127.0.0.1", (0, 0))
    private = dataclasses.replace(options, host="127.0.0.1", grpc_port=grpc_port, http_port=http_port)
    try:
        proxy = ServerProxy(args.host, args.grpc_port, args.http_port, f"127.0.0.1:{grpc_port}",
                            f"127.0.0.1:{http_port}", MAX_REQUEST_BYTES)
    except ProxyError as error:
        raise UsageError(str(error)) from None
    return proxy, private


def run(args) -> int:
    from speech2face.engine.server.proxy import ProxyError
    from speech2face.engine.server.readiness import Readiness
    from speech2face.engine.server.supervisor import Supervisor, SupervisorPolicy

    options = server_options(args, repository(args))
    proxy = None
    if args.proxy:
        proxy, options = _proxied(args, options)
    memory_limit = None if args.memory_limit is None else int(args.memory_limit * 2**30)
    policy = SupervisorPolicy(check_interval_s=args.check_interval, memory_limit_bytes=memory_limit)
    supervisor = Supervisor(options, policy, proxy=proxy)
    readiness = None
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)   # also when started in the background (SIGINT ignored)
    try:
        server = supervisor.start()
        grpc_url, http_url = server.grpc_url, server.http_url
        if proxy is not None:
            try:
                proxy.start()
            except ProxyError as error:
                raise UsageError(str(error)) from None
            grpc_url, http_url = proxy.grpc_url, proxy.http_url
        if args.readiness_port is not None:
            # Through the proxy when there is one: ready means a client at the public port gets an answer now.
            public = (lambda: proxy.http_url if supervisor.http_url() else None) if proxy else supervisor.http_url
            readiness = Readiness(public, args.host, args.readiness_port).start()
        ready = f"  readiness {args.host}:{readiness.port}/ready" if readiness else ""
        via = f"  (HAProxy pid {proxy.pid}; tritonserver on {server.http_url})" if proxy else ""
        print(f"speech2face serving: gRPC {grpc_url}  HTTP {http_url}  "
              f"metrics {server.metrics_url}{ready}{via}  (Ctrl-C stops)", flush=True)
        return supervisor.run()
    except KeyboardInterrupt:
        print("stopping…", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # a second Ctrl-C must not cut the drain short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if readiness is not None:
            readiness.close()
        if proxy is not None:
            proxy.stop()
        supervisor.close()

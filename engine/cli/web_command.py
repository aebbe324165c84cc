"""`s2f web`: a browser page (Gradio) over a running server: speak or drop a clip, see the face.

Building the parser imports nothing of Gradio; `run` imports engine/web (and so gradio) when called.
"""

from __future__ import annotations

import contextlib
import signal

from speech2face.engine.cli.common import LOCAL_PORTS, UsageError

DEFAULT_PORT = 7860


def add(commands) -> None:
    web = commands.add_parser("web", help="a browser demo of a running server (needs the [web] extra)",
                              description="Serve a web page (Gradio) that records from the microphone or takes "
                                          "an uploaded clip, sends it to a running speech2face server through "
                                          "the project's client, and shows the face, the 128-d feature, the "
                                          "latency and the server; a second tab compares two voices. Each "
                                          "button is also an HTTP API (/face, /compare) for gradio_client.")
    web.add_argument("--url", help="host:port of the running server (default: 127.0.0.1 on the protocol's "
                                   f"usual port, {LOCAL_PORTS['grpc']} gRPC / {LOCAL_PORTS['http']} HTTP)")
    web.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    web.add_argument("--serve", action="store_true",
                     help="also start a server of the built-in model on free loopback ports, for the page alone "
                          "(needs the full package: speech2face[serve,web]); a first try is `s2f web --serve`")
    web.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the page's port (default {DEFAULT_PORT})")
    web.add_argument("--host", default="127.0.0.1",
                     help="address the page listens on (default 127.0.0.1: this machine only). 0.0.0.0 "
                          "opens it to every network this machine is on. RISK: the page has no login and no "
                          "rate limit; anyone who reaches it can upload files (up to the page's size limit), "
                          "make the server work for them, and call its API without the page. Only do this "
                          "on a network you trust, or behind a proxy that authenticates")
    web.set_defaults(run=run)


def run(args) -> int:
    from speech2face.engine.web.service import FaceService

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port number")
    if args.serve and args.url:
        raise UsageError("--serve starts a server for the page: give it or --url, not both")
    with contextlib.ExitStack() as stack:
        url = args.url or f"127.0.0.1:{LOCAL_PORTS[args.protocol]}"
        if args.serve:
            server = stack.enter_context(_built_in_server())
            url = server.grpc_url if args.protocol == "grpc" else server.http_url
        return _serve_page(args, FaceService(url, args.protocol))


def _built_in_server():
    from speech2face.engine.repository.cpu_repository import write_default_repository
    from speech2face.engine.server.launcher import ServerOptions, TritonServer

    return TritonServer(ServerOptions(model_repository=write_default_repository()))


def _serve_page(args, service) -> int:
    from speech2face.engine.web.app import build, launch

    # Ctrl-C (and SIGTERM, and a background job's SIGINT) is how the page stops: exit 0 whenever it comes.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        if not service.client().is_server_live():
            print(f"s2f web: nothing answers at {service.server} yet; the page will say so until it does", flush=True)
        print(f"speech2face web page: http://{args.host}:{args.port} -> {service.server}  (Ctrl-C stops)",
              flush=True)
        launch(build(service), host=args.host, port=args.port, block=True)
    except KeyboardInterrupt:
        pass
    finally:
        service.close()
    return 0


def _raise_interrupt(*_) -> None:
    raise KeyboardInterrupt

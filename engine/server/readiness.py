"""`GET /ready` that means "answers now": 200 while the model answers a canary in time, else 503.

For Kubernetes' readinessProbe and a load balancer's health check (the local cluster's HAProxy).
A background thread asks the canary (engine/server/canary.py) every `interval_s` with a budget of
`budget_s` per call; the endpoint answers from the last result, so a probe costs no inference and a
probe storm cannot load the model. A canary still running past its budget (stuck behind a flood)
counts as a failure at once, without waiting for its timeout. Triton's own `/v2/health/ready`
(loaded) and `/v2/health/live` keep their meaning: use them for start-up and liveness, this for
readiness.
"""

from __future__ import annotations

import http.server
import sys
import threading
import time
from typing import Callable

from speech2face.engine import contract
from speech2face.engine.server.canary import ask


class Readiness:
    """Serves GET /ready on host:port for the server that `http_url()` names (None: no server)."""

    def __init__(self, http_url: Callable[[], str | None], host: str, port: int, model: str = contract.ENSEMBLE,
                 interval_s: float = 1.0, budget_s: float = 2.0):
        self.http_url, self.model = http_url, model
        self.interval_s, self.budget_s = interval_s, budget_s
        self._last: str | None = "no canary has answered yet"   # why not ready, from the last canary
        self._asking_since: float | None = None                    # when the running canary started
        self._stop = threading.Event()
        self._http = _QuietServer((host, port), self._handler())
        self.port = self._http.server_address[1]

    def start(self) -> "Readiness":
        threading.Thread(target=self._watch, name="s2f-readiness-canary", daemon=True).start()
        threading.Thread(target=self._http.serve_forever, name="s2f-readiness-http", daemon=True).start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._http.shutdown()
        self._http.server_close()

    def state(self) -> str | None:
        """None when ready; otherwise why not."""
        since = self._asking_since
        if since is not None and time.monotonic() - since > self.budget_s:
            return f"the canary has not answered in {time.monotonic() - since:.1f} s"
        return self._last

    def _watch(self) -> None:
        while not self._stop.is_set():
            url = self.http_url()
            self._asking_since = time.monotonic()
            self._last = "the server is restarting" if url is None else ask(url, self.model, self.budget_s)
            self._asking_since = None
            self._stop.wait(self.interval_s)

    def _handler(self):
        readiness = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != "/ready":
                    self.send_error(404)
                    return
                why = readiness.state()
                body = (b"ready\n" if why is None else f"not ready: {why}\n".encode())
                self.send_response(200 if why is None else 503)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):   # probes every few hundred ms: no access log
                pass

        return Handler


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A health checker that hangs up once it has the status (HAProxy does) is no error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

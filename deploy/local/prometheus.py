"""A real Prometheus scraping every replica, with the HPA's queue-time rule as a recording rule
(deploy/monitoring/recording-rules.yaml, the file the cluster's Prometheus would load too)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from speech2face.engine.server.launcher import free_port

from deploy.local.replicas import Replica
from deploy.local.tools import ensure

RULES = Path(__file__).resolve().parent.parent / "monitoring" / "recording-rules.yaml"
SCRAPE_INTERVAL = "1s"   # several samples inside the rule's 30 s window even in short tests


class Prometheus:
    def __init__(self, replicas: list[Replica], workdir: Path, next_port: Callable[[], int] = free_port):
        self.binary = ensure("prometheus", "prometheus")
        self.port = next_port()
        self.workdir = workdir
        self.config = workdir / "prometheus.yml"
        # JSON is YAML: the configuration is a plain data structure, no template.
        self.config.write_text(json.dumps({
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "speech2face", "static_configs": [
                {"targets": [f"127.0.0.1:{r.metrics_port}"], "labels": {"replica": r.name}} for r in replicas]}],
        }, indent=2))
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Prometheus":
        self._process = subprocess.Popen(
            [self.binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=open(self.workdir / "prometheus.log", "wb"))
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start: {(self.workdir / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.2)

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        """An instant query's result vector ([] when the expression has no data)."""
        params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}", timeout=10) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus: {expr}: {body}")
        return body["data"]["result"]

    def value(self, expr: str, at: float | None = None) -> float | None:
        result = self.query(expr, at)
        return float(result[0]["value"][1]) if result else None

    def wait_scraped(self, count: int, timeout_s: float = 30.0) -> None:
        """Until every replica's target has been scraped successfully."""
        deadline = time.monotonic() + timeout_s
        while (self.value('count(up{job="speech2face"} == 1)') or 0) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus: fewer than {count} replicas up after {timeout_s} s")
            time.sleep(0.5)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=20)
        self._process = None

    def __enter__(self) -> "Prometheus":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

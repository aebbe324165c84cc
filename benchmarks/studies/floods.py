"""Floods against `s2f serve`, without and with `--proxy`: what bounds tritonserver's memory and
descriptors, the outage each flood causes to good requests, and whether `/ready` tells the truth.

    python benchmarks/studies/floods.py [--floods large-grpc,large-http,idle-connections] [--large 32] \
        [--large-http 16] [--idle 20600] [--hold 60] [--memory-limit GIB] [--out benchmarks/results/floods]

Each run starts a fresh `s2f serve --readiness-port N` (defaults otherwise), sends one flood and
meanwhile, every 0.5 s, a good request on a new connection (gRPC and HTTP in turn, 10 s timeout)
and a `/ready` probe every 0.25 s; it samples the resident memory of tritonserver and its stubs and
tritonserver's open descriptors every 0.2 s.

- large-grpc: `--large` concurrent gRPC calls of 52 MB each (13 M float samples: legal sizes,
  refused by the model as longer than 600 s only after Triton has read them whole).
- large-http: `--large-http` concurrent KServe JSON requests of 13 M samples (26 MB of text; a
  binary body over 4 MB crashes tritonserver 2.51 by itself, see docs/SECURITY.md).
- idle-connections: `--idle` TCP connections opened to the gRPC and HTTP ports by separate
  processes (each has its own descriptor limit), held idle for `--hold` seconds, then closed.

Outage: the longest time between two good answers from the flood's start to the end of the
observation (5 s after the first good answer after the flood; with `--memory-limit`, after the
supervisor's restart, up to 60 s). Readiness: seconds `/ready` said 200 while good requests failed (a lie) and
said 503 while they succeeded (a false alarm).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from speech2face.engine.server.launcher import resident_bytes, resolve_ports

LARGE_MB = 52
PROBE_EVERY_S, READY_EVERY_S, SAMPLE_EVERY_S = 0.5, 0.25, 0.2
PER_PROCESS_CONNECTIONS = 6000   # below each holder's descriptor limit (it raises its soft limit to the hard one)


class Served:
    """`s2f serve` in a subprocess, on free ports."""

    def __init__(self, proxy: bool, memory_limit_gib: float | None = None):
        self.grpc, self.http, self.metrics, self.ready = resolve_ports("127.0.0.1", (0, 0, 0, 0))
        command = [sys.executable, "-m", "speech2face.engine.cli", "serve", "--grpc-port", str(self.grpc),
                   "--http-port", str(self.http), "--metrics-port", str(self.metrics),
                   "--readiness-port", str(self.ready)] + (["--proxy"] if proxy else []) + \
            ([] if memory_limit_gib is None else ["--memory-limit", str(memory_limit_gib)])
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.log: list[str] = []
        for line in self.process.stdout:
            self.log.append(line)
            if "speech2face serving" in line:
                break
        else:
            raise RuntimeError("s2f serve did not start:\n" + "".join(self.log[-30:]))
        threading.Thread(target=lambda: self.log.extend(self.process.stdout), daemon=True).start()

    def tritonserver(self) -> int | None:
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and (entry / "comm").read_text().strip() == "tritonserver" and \
                        _ancestor(int(entry.name), self.process.pid):
                    return int(entry.name)
            except OSError:
                continue
        return None

    def stop(self) -> None:
        self.process.send_signal(2)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2:].split()[1])


def _ancestor(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        pid = _parent(pid)
    return False


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Observer:
    """Good requests, readiness probes and resource samples, each on its own thread."""

    def __init__(self, served: Served, audio: np.ndarray):
        self.served, self.audio = served, audio
        self.probes: list[tuple[float, bool]] = []     # (time answered or failed, right answer)
        self.ready: list[tuple[float, int]] = []       # (time, status)
        self.samples: list[tuple[float, int, int, int | None]] = []   # (time, rss, fds, tritonserver pid)
        self._stop = threading.Event()
        self._reference = None

    def _good(self, protocol: str) -> bool:
        from speech2face.engine.client import Speech2FaceClient

        port = self.served.grpc if protocol == "grpc" else self.served.http
        try:
            with Speech2FaceClient(f"127.0.0.1:{port}", protocol, timeout_s=10) as client:
                feature = client.infer(self.audio, 16000).feature
        except Exception:  # noqa: BLE001 - any failure is a failed good request
            return False
        if self._reference is None:
            self._reference = feature
        return bool(np.abs(feature - self._reference).max() < 1e-3)

    def _probe_loop(self) -> None:
        turn = 0
        while not self._stop.is_set():
            ok = self._good(("grpc", "http")[turn % 2])
            self.probes.append((time.monotonic(), ok))
            turn += 1
            self._stop.wait(PROBE_EVERY_S)

    def _ready_loop(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.served.ready}/ready", timeout=1) as r:
                    status = r.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                status = 0
            self.ready.append((time.monotonic(), status))
            self._stop.wait(READY_EVERY_S)

    def _sample_loop(self) -> None:
        while not self._stop.is_set():
            pid = self.served.tritonserver()
            self.samples.append((time.monotonic(), resident_bytes(pid) if pid else 0, _fds(pid) if pid else 0, pid))
            self._stop.wait(SAMPLE_EVERY_S)

    def __enter__(self) -> "Observer":
        for loop in (self._probe_loop, self._ready_loop, self._sample_loop):
            threading.Thread(target=loop, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()


def _large_grpc_request(megabytes: int) -> bytes:
    from tritonclient.grpc import service_pb2

    from speech2face.engine import contract

    samples = megabytes * 1_000_000 // 4
    request = service_pb2.ModelInferRequest(model_name=contract.ENSEMBLE)
    for name, shape, datatype in ((contract.AUDIO.name, [1, samples], "FP32"),
                                  (contract.SAMPLE_RATE.name, [1, 1], "INT32")):
        tensor = request.inputs.add()
        tensor.name, tensor.datatype = name, datatype
        tensor.shape.extend(shape)
    request.raw_input_contents.extend([np.zeros(samples, np.float32).tobytes(), np.int32(16000).tobytes()])
    return request.SerializeToString()


def flood_large_grpc(served: Served, count: int, _hold_s: float) -> dict:
    import grpc

    message = _large_grpc_request(LARGE_MB)
    # A connection per call, as many attackers would have (gRPC otherwise shares one between channels).
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1),
               ("grpc.use_local_subchannel_pool", 1)]
    outcomes: dict[str, int] = {}

    def call(_):
        with grpc.insecure_channel(f"127.0.0.1:{served.grpc}", options=options) as channel:
            infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
            try:
                infer(message, timeout=120)
                code = "OK"
            except grpc.RpcError as error:
                code = error.code().name
        outcomes[code] = outcomes.get(code, 0) + 1

    with ThreadPoolExecutor(count) as pool:
        list(pool.map(call, range(count)))
    return {"answers": outcomes}


def flood_large_http(served: Served, count: int, _hold_s: float) -> dict:
    """`count` concurrent KServe JSON requests of 13 M zero samples (26 MB of JSON; binary bodies
    this large crash tritonserver 2.51 outright), each on its own connection."""
    from speech2face.engine import contract

    samples = 13_000_000
    body = (f'{{"inputs":[{{"name":"{contract.AUDIO.name}","shape":[1,{samples}],"datatype":"FP32","data":['
            + "0," * (samples - 1) + f'0]}},{{"name":"{contract.SAMPLE_RATE.name}","shape":[1,1],"datatype":"INT32",'
            '"data":[16000]}]}').encode()
    outcomes: dict[str, int] = {}

    def call(_):
        request = urllib.request.Request(f"http://127.0.0.1:{served.http}/v2/models/{contract.ENSEMBLE}/infer",
                                         data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                code = str(answer.status)
        except urllib.error.HTTPError as error:
            code = str(error.code)
        except OSError as error:
            code = type(error).__name__
        outcomes[code] = outcomes.get(code, 0) + 1

    with ThreadPoolExecutor(count) as pool:
        list(pool.map(call, range(count)))
    return {"answers": outcomes}


_HOLDER = """
import resource, socket, sys, time
ports, count, hold = [int(p) for p in sys.argv[1].split(",")], int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
for i in range(count):
    s = socket.socket(); s.setblocking(False)
    try:
        s.connect_ex(("127.0.0.1", ports[i % len(ports)]))
    except OSError:
        break
    held.append(s)
print(len(held), flush=True)
time.sleep(hold)
"""


def flood_idle_connections(served: Served, count: int, hold_s: float) -> dict:
    holders, left = [], count
    while left > 0:
        n = min(left, PER_PROCESS_CONNECTIONS)
        holders.append(subprocess.Popen([sys.executable, "-c", _HOLDER, f"{served.grpc},{served.http}", str(n),
                                         str(hold_s)], stdout=subprocess.PIPE, text=True))
        left -= n
    opened = sum(int(h.stdout.readline() or 0) for h in holders)
    for holder in holders:
        holder.wait()
    return {"opened": opened}


FLOODS = {"large-grpc": flood_large_grpc, "large-http": flood_large_http, "idle-connections": flood_idle_connections}


def _outage(probes: list[tuple[float, bool]], start: float, end: float) -> tuple[float, float | None]:
    """(longest time without a good answer from `start` to the end of the observation, when the
    first good answer after `end` came)."""
    answered = [t for t, ok in probes if ok]
    after = next((t for t in answered if t >= end), None)
    points = [start] + [t for t in answered if t > start]
    if after is None or not probes[-1][1]:
        points.append(probes[-1][0])
    return max(b - a for a, b in zip(points, points[1:])) if len(points) > 1 else 0.0, after


def _readiness_truth(probes, ready) -> tuple[float, float]:
    """Seconds of /ready saying 200 while the latest good request had failed, and 503 while it had succeeded."""
    lies = alarms = 0.0
    for t, status in ready:
        latest = [ok for pt, ok in probes if pt <= t][-1:]
        if not latest:
            continue
        if status == 200 and not latest[0]:
            lies += READY_EVERY_S
        elif status != 200 and latest[0]:
            alarms += READY_EVERY_S
    return lies, alarms


def run(flood: str, proxy: bool, size: int, audio: np.ndarray, hold_s: float = 60.0,
        memory_limit_gib: float | None = None) -> dict:
    served = Served(proxy, memory_limit_gib)
    try:
        with Observer(served, audio) as observer:
            time.sleep(3.0)
            baseline_rss = max(s[1] for s in observer.samples)
            start = time.monotonic()
            detail = FLOODS[flood](served, size, hold_s)
            end = time.monotonic()
            deadline = end + 90
            while time.monotonic() < deadline and not any(ok and t > end for t, ok in observer.probes):
                time.sleep(0.2)
            if memory_limit_gib is not None:   # the supervisor's restart comes after two checks
                restarted = end + 60
                while time.monotonic() < restarted and len({s[3] for s in observer.samples if s[3]}) < 2:
                    time.sleep(0.2)
            time.sleep(5.0)
        outage, recovered = _outage(observer.probes, start, end)
        lies, alarms = _readiness_truth(observer.probes, observer.ready)
        during = [s for s in observer.samples if start <= s[0] <= end]
        pids = {s[3] for s in observer.samples if s[3]}
        return {"flood": flood, "proxy": proxy, "size": size, "memory_limit_gib": memory_limit_gib, **detail,
                "flood_s": round(end - start, 1), "outage_s": round(outage, 1),
                "answered_after_flood_s": None if recovered is None else round(recovered - end, 1),
                "baseline_rss_gb": round(baseline_rss / 1e9, 2),
                "peak_rss_gb": round(max((s[1] for s in during), default=0) / 1e9, 2),
                "rss_after_gb": round(observer.samples[-1][1] / 1e9, 2),
                "peak_fds": max((s[2] for s in during), default=0), "tritonserver_restarts": len(pids) - 1,
                "ready_lies_s": round(lies, 2), "ready_false_alarms_s": round(alarms, 2),
                "good_requests": len(observer.probes), "good_failed": sum(not ok for _, ok in observer.probes)}
    finally:
        served.stop()


def markdown(rows: list[dict]) -> str:
    head = ("| flood | proxy | memory limit | flood s | outage s | answered after s "
            "| tritonserver RSS before / peak / after GB | peak fds | restarts | /ready lies s | false alarms s "
            "| flood answers |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        limit = "-" if r.get("memory_limit_gib") is None else f"{r['memory_limit_gib']} GiB"
        lines.append(f"| {r['flood']} ({r['size']}) | {'yes' if r['proxy'] else 'no'} | {limit} | {r['flood_s']} | "
                     f"{r['outage_s']} | {r['answered_after_flood_s']} | {r['baseline_rss_gb']} / {r['peak_rss_gb']}"
                     f" / {r['rss_after_gb']} | {r['peak_fds']} | {r['tritonserver_restarts']} | {r['ready_lies_s']} | "
                     f"{r['ready_false_alarms_s']} | {r.get('answers', r.get('opened'))} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--floods", default=",".join(FLOODS))
    # 32: without the proxy tritonserver grows by about 7 GB; the machine here has 23 GB in all.
    parser.add_argument("--large", type=int, default=32, help="concurrent 52 MB gRPC calls")
    parser.add_argument("--large-http", type=int, default=16, help="concurrent 26 MB JSON requests")
    parser.add_argument("--idle", type=int, default=20600, help="idle TCP connections")
    parser.add_argument("--hold", type=float, default=60.0, help="seconds the idle connections are held")
    parser.add_argument("--proxy", choices=("both", "no", "yes"), default="both")
    parser.add_argument("--memory-limit", type=float, default=None, help="s2f serve --memory-limit GIB")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/floods"))
    args = parser.parse_args(argv)
    audio = (0.3 * np.sin(2 * np.pi * 180 * np.arange(96000) / 16000)).astype(np.float32)
    proxies = {"both": (False, True), "no": (False,), "yes": (True,)}[args.proxy]
    rows = []
    for flood in args.floods.split(","):
        for proxy in proxies:
            size = {"large-grpc": args.large, "large-http": args.large_http}.get(flood, args.idle)
            rows.append(run(flood, proxy, size, audio, args.hold, args.memory_limit))
            print(json.dumps(rows[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "floods.json" if args.memory_limit is None else f"floods-limit-{args.memory_limit:g}.json"
    (args.out / name).write_text(json.dumps(rows, indent=2) + "\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

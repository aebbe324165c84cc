"""The canary: a tiny real inference that tells whether the model answers now.

Triton's `/v2/health/ready` only says the model is loaded: it stays 200 while a Python stub is
dead or every instance is stuck behind a flood. The supervisor and the readiness endpoint both ask
this instead: a 0.25 s tone sent as KServe JSON must come back with finite features in time.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request

import numpy as np

from speech2face.engine import contract


def canary_body(rate: int = 16000, seconds: float = 0.25) -> bytes:
    """A KServe JSON request with a short 220 Hz tone (silence could be trimmed to nothing)."""
    t = np.arange(int(rate * seconds)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return json.dumps({"inputs": [
        {"name": contract.AUDIO.name, "shape": [1, tone.size], "datatype": "FP32",
         "data": [round(float(x), 5) for x in tone]},
        {"name": contract.SAMPLE_RATE.name, "shape": [1, 1], "datatype": "INT32", "data": [rate]}],
        "outputs": [{"name": contract.FACE_FEATURE_NAME}]}).encode()


CANARY = canary_body()


def ask(http_url: str, model: str, timeout_s: float) -> str | None:
    """None when `model` at `http_url` is ready and answers the canary within `timeout_s`; else why not."""
    base = f"http://{http_url}/v2/models/{model}"
    try:
        with urllib.request.urlopen(f"{base}/ready", timeout=timeout_s) as r:
            if r.status != 200:
                return f"model {model} is not ready"
        request = urllib.request.Request(f"{base}/infer", data=CANARY, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout_s) as r:
            answer = json.loads(r.read())
    except urllib.error.HTTPError as error:
        return f"model {model} failed its canary inference: {error.read()[:300].decode(errors='replace')}"
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
        return f"model {model} did not answer its canary inference in {timeout_s:g} s ({error})"
    feature = next((o for o in answer.get("outputs", []) if o.get("name") == contract.FACE_FEATURE_NAME), None)
    if feature is None or not np.isfinite(np.asarray(feature.get("data", []), dtype=np.float64)).all():
        return f"model {model} answered its canary with no finite {contract.FACE_FEATURE_NAME}"
    return None

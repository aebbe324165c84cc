"""The client of a speech2face server: what client apps install (tritonclient, NumPy, an audio decoder).

    from speech2face.engine.client import Speech2FaceClient
    with Speech2FaceClient("127.0.0.1:8001") as client:
        result = client.infer("voice.m4a")      # result.feature, result.image

The public names are imported here; each lives in its own module (sync_client, async_client,
core, errors, retries, stats, shm).
"""

from speech2face.engine.client.async_client import AsyncSpeech2FaceClient
from speech2face.engine.client.errors import (InferenceError, InvalidInput, ModelControlDisabled, ModelNotFound,
                                              RequestTimeout, ServerUnavailable)
from speech2face.engine.client.retries import NO_RETRY, RetryPolicy
from speech2face.engine.client.sync_client import Speech2FaceClient
from speech2face.engine.contract.results import FaceResult

__all__ = ["AsyncSpeech2FaceClient", "FaceResult", "InferenceError", "InvalidInput", "ModelControlDisabled",
           "ModelNotFound", "NO_RETRY", "RequestTimeout", "RetryPolicy", "ServerUnavailable", "Speech2FaceClient"]

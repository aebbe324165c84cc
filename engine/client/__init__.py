"""The client of a speech2face server: what client apps install (tritonclient, NumPy, soundfile, PyAV).

    from speech2face.engine.client import Speech2FaceClient
    with Speech2FaceClient("127.0.0.1:8001") as client:
        result = client.infer("voice.m4a")      # result.feature, result.image

The public names are imported here, and only here; each lives in its own module: the two clients
(sync_client, async_client) drive one core (core: requests, answers, retries, metadata, statistics),
fed by audio_inputs (what a caller's audio becomes; ffmpeg_decode for what libsndfile does not
read); errors, retries, stats and shm hold the rest. `AudioWarning` (engine/contract/audio_rules.py)
is what a clip served with a caveat gives: shorter than 1 s, or samples outside [-1, 1].
"""

from speech2face.engine.client.async_client import AsyncSpeech2FaceClient
from speech2face.engine.client.errors import (InferenceError, InvalidInput, ModelControlDisabled, ModelNotFound,
                                              RequestTimeout, ServerUnavailable)
from speech2face.engine.client.retries import NO_RETRY, RetryPolicy
from speech2face.engine.client.sync_client import Speech2FaceClient
from speech2face.engine.contract.audio_rules import AudioWarning
from speech2face.engine.contract.results import FaceResult

__all__ = ["AsyncSpeech2FaceClient", "AudioWarning", "FaceResult", "InferenceError", "InvalidInput",
           "ModelControlDisabled", "ModelNotFound", "NO_RETRY", "RequestTimeout", "RetryPolicy", "ServerUnavailable",
           "Speech2FaceClient"]

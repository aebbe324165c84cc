"""The page's one path to the server: a clip's path -> a face, through the project's client, with
every failure turned into one sentence a person can act on (`PageError`). No Gradio here, so the
rules are testable without a browser or a web server."""

from __future__ import annotations

import dataclasses
import re
import threading
from pathlib import Path

import numpy as np

from speech2face.engine.client import (InferenceError, InvalidInput, ModelNotFound, RequestTimeout,
                                       ServerUnavailable, Speech2FaceClient)
from speech2face.engine.web import limits, render


_OPENING = re.compile(r"Error opening <[^>]*>: ")


class PageError(Exception):
    """What the page shows instead of a face; the message is for the person, `reason` for tests."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Face:
    image: np.ndarray          # the model's face, (H, W, 3) uint8
    feature: np.ndarray        # (128,) float32, L2-normalised
    latency_s: float           # the client's measure of the successful attempt
    server: str                # which server answered, as protocol://host:port

    @property
    def large_image(self) -> np.ndarray:
        return render.upscale(self.image)

    @property
    def feature_plot(self) -> np.ndarray:
        return render.feature_bars(self.feature)

    def summary(self) -> str:
        """Which server answered, how fast, and what it sent (Markdown)."""
        height, width = self.image.shape[:2]
        return (f"**Server:** {self.server}  \n**Latency:** {self.latency_s * 1000:.0f} ms (as the client "
                f"measured it)  \n**Face:** {width} x {height} px, shown at {self.large_image.shape[0]} px "
                f"(nearest neighbour)  \n**Feature:** {self.feature.size} numbers, L2 norm "
                f"{float(np.linalg.norm(self.feature)):.3f}")


class FaceService:
    """One client for the page's lifetime (the client is thread-safe; gRPC reconnects by itself)."""

    def __init__(self, url: str, protocol: str = "grpc", timeout_s: float = 30.0):
        self.url, self.protocol, self.timeout_s = url, protocol, timeout_s
        self._client: Speech2FaceClient | None = None
        self._lock = threading.Lock()

    @property
    def server(self) -> str:
        return f"{self.protocol}://{self.url.split('://', 1)[-1]}"

    def client(self) -> Speech2FaceClient:
        with self._lock:
            if self._client is None:
                self._client = Speech2FaceClient(self.url, protocol=self.protocol, timeout_s=self.timeout_s,
                                                 max_seconds=limits.MAX_SECONDS)
            return self._client

    def face(self, path: str | None) -> Face:
        """The face of the clip at `path`, or PageError with the one message to show."""
        try:
            limits.check_clip(path)
        except limits.ClipRejected as error:
            raise PageError(str(error), error.reason) from None
        try:
            result = self.client().infer(path)
        except InvalidInput as error:
            raise PageError(f"The clip was refused: {_plain(error, path)}", "bad_file") from None
        except (ServerUnavailable, RequestTimeout) as error:
            raise PageError(f"The face server at {self.server} does not answer; is it running (s2f serve)? "
                            f"({_plain(error)})", "server_down") from None
        except ModelNotFound as error:
            raise PageError(f"The server at {self.server} does not serve the speech2face model "
                            f"({_plain(error)}).", "server_down") from None
        except InferenceError as error:
            raise PageError(f"The server at {self.server} failed: {_plain(error)}", "server_error") from None
        return Face(np.asarray(result.image, np.uint8), np.asarray(result.feature, np.float32),
                    float(result.latency_s), self.server)

    def compare(self, first: str | None, second: str | None) -> tuple[Face, Face, float]:
        """Both faces and the cosine of their features; the message names which clip failed."""
        faces = []
        for name, path in (("first", first), ("second", second)):
            try:
                faces.append(self.face(path))
            except PageError as error:
                raise PageError(f"The {name} clip: {error}", error.reason) from None
        return faces[0], faces[1], render.cosine(faces[0].feature, faces[1].feature)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _plain(error: Exception, path: str | None = None) -> str:
    """An error's message for a sentence: the upload's temporary path shortened to its file name,
    soundfile's "Error opening <_io.BytesIO object at 0x...>: " dropped, no trailing full stop."""
    message = str(error).strip()
    if path:
        message = message.replace(str(path), Path(path).name)
    return _OPENING.sub("", message).rstrip(".")

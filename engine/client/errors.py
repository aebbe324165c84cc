"""The client's typed errors, and the mapping from tritonclient / transport exceptions to them.

Every failure is an `InferenceError`; the subclasses say what kind (and so what helps):

- `InvalidInput`: the audio or the request is wrong (the client's own checks, or the server's
  refusal); fixing the input is the only remedy. Also a `ValueError`.
- `ModelNotFound`: the server does not serve that model (or that model is not loaded).
- `ServerUnavailable`: nothing answers at the URL, or the connection broke; the only kind retried.
- `RequestTimeout`: no answer within the client's timeout (per attempt; never retried).
- `ModelControlDisabled`: load/unload asked of a server started without model control.
"""

from __future__ import annotations

import re


class InferenceError(RuntimeError):
    """The request failed; the message says why. `status` is the server's code when it sent one."""

    def __init__(self, message: str, *, status: str | None = None, attempts: int = 1):
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class InvalidInput(InferenceError, ValueError):
    """The audio or request is wrong (empty, NaN/Inf, wrong shape or type, bad sample rate, too long)."""


class ModelNotFound(InferenceError):
    """The server has no such model, or it is not loaded."""


class ServerUnavailable(InferenceError):
    """Nothing answers at the URL, or the connection broke (after the retries)."""


class RequestTimeout(InferenceError):
    """No answer within the client's timeout."""


class ModelControlDisabled(InferenceError):
    """Load/unload asked of a server started without model control (the default)."""


_REQUEST_ID_PREFIX = re.compile(r"^\[request id: [^\]]*\]\s*")
# aiohttp connection errors and geventhttpclient parse errors on a dropped connection.
_TRANSPORT_ERRORS = {"ClientConnectionError", "ServerDisconnectedError", "ClientPayloadError",
                     "HTTPParseError", "HTTPConnectionClosed", "IncompleteRead", "RemoteProtocolError"}


def _classify_server_error(error, where: str) -> InferenceError:
    status = str(error.status() or "")
    message = _REQUEST_ID_PREFIX.sub("", str(error.message() or "")).strip()
    if "not allowed" in message and ("load" in message or "unload" in message):
        return ModelControlDisabled(
            f"{where} refuses model load/unload: its model control API is off "
            f"(start it with model_control='explicit'); server said: {message}", status=status)
    if "DEADLINE_EXCEEDED" in status or status == "504":
        return RequestTimeout(f"{where} did not answer in time ({message})", status=status)
    if "UNAVAILABLE" in status or status == "503":
        return ServerUnavailable(f"{where} is unavailable: {message}", status=status)
    if "NOT_FOUND" in status or status == "404" or "unknown model" in message:
        return ModelNotFound(f"{where}: {message}", status=status)
    if "INVALID_ARGUMENT" in status or status == "400":
        return InvalidInput(f"{where} refused the request: {message}", status=status)
    if not status and not message:
        return ServerUnavailable(f"{where} closed the connection without an answer", status=status)
    return InferenceError(f"{where} failed the request: {message} [{status or 'no status'}]", status=status)


def classify_error(error: BaseException, url: str, protocol: str) -> InferenceError:
    """Maps a tritonclient / transport exception to the typed error, with a clear message."""
    from tritonclient.utils import InferenceServerException

    where = f"{protocol} server at {url}"
    if isinstance(error, InferenceError):
        return error
    if isinstance(error, InferenceServerException):
        return _classify_server_error(error, where)
    if isinstance(error, TimeoutError) or type(error).__name__ in ("Timeout", "timeout", "ServerTimeoutError"):
        return RequestTimeout(f"{where} did not answer in time ({type(error).__name__})")
    transport = {cls.__name__ for cls in type(error).__mro__} & _TRANSPORT_ERRORS
    if isinstance(error, (ConnectionError, OSError, EOFError)) or transport:
        return ServerUnavailable(f"{where} is unavailable: {type(error).__name__}: {error}")
    return InferenceError(f"{where}: unexpected {type(error).__name__}: {error}")

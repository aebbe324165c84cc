"""When the client retries: exponential backoff for `ServerUnavailable` only.

The sync and asyncio clients (and the load generator, which turns retries off) share this
decision; only their way of waiting differs.
"""

from __future__ import annotations

import dataclasses
import random

from speech2face.engine.client.errors import InferenceError, ServerUnavailable


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for `ServerUnavailable` only; everything else fails at once.

    The default gives up after 4 attempts and about 0.35 s of waiting (0.05, 0.1, 0.2 s, each
    +-20 % jitter), so a dead server is reported in well under a second.
    """

    max_attempts: int = 4
    initial_backoff_s: float = 0.05
    multiplier: float = 2.0
    max_backoff_s: float = 1.0
    jitter: float = 0.2

    def __post_init__(self):
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        base = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))
        return max(0.0, base * (1.0 + self.jitter * (2.0 * random.random() - 1.0)))

    def after_failure(self, error: InferenceError, attempt: int, closed: bool = False) -> float | None:
        """Seconds to wait before the next attempt, or None: give up (then `error` says how many tries)."""
        if isinstance(error, ServerUnavailable) and attempt < self.max_attempts and not closed:
            return self.backoff(attempt)
        error.attempts = attempt
        if isinstance(error, ServerUnavailable) and attempt > 1:
            error.args = (f"{error.args[0]} (gave up after {attempt} attempts)",)
        return None


NO_RETRY = RetryPolicy(max_attempts=1)

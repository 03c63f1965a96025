"""Waiting out a failing sink: capped exponential backoff with jitter, and the sink's state.

A sink retries a failed write for as long as it takes (until it is asked to stop), and
says so once per change of state: healthy -> failing (with the error), failing -> healthy
(with how long it took), never once per attempt. :class:`SinkHealth` keeps that state for
``/ready`` and the metrics.

Examples
--------
>>> Backoff(base_s=1.0, cap_s=10.0, jitter=0.0).schedule(6)
[1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
>>> health = SinkHealth("redis", clock=iter([100.0, 130.0]).__next__)
>>> health.failed("Redis unavailable"); health.state, health.failing_since
('failing', 100.0)
>>> health.failed("Redis unavailable"); health.failures
2
>>> health.ok(); health.state, health.last_error, health.recovered_after_s
('healthy', 'Redis unavailable', 30.0)
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from vigie.errors import BackpressureError, SinkError

log = logging.getLogger(__name__)

R = TypeVar("R")
State = Literal["healthy", "failing"]


@dataclass(frozen=True)
class Backoff:
    """``min(cap, base * factor**(n-1))`` minus up to ``jitter`` of it, after failure n."""

    base_s: float = 0.5
    factor: float = 2.0
    cap_s: float = 30.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        exponent = min(attempt - 1, 64)  # beyond that the cap has long been reached
        full = min(self.cap_s, self.base_s * self.factor**exponent)
        return full * (1.0 - self.jitter * rng.random())

    def schedule(self, n: int) -> list[float]:
        """The first ``n`` delays without their jitter."""
        rng = random.Random(0)
        plain = Backoff(self.base_s, self.factor, self.cap_s, 0.0)
        return [plain.delay(i, rng) for i in range(1, n + 1)]


class SinkHealth:
    """Whether a sink writes: healthy, or failing since when, with what error."""

    def __init__(
        self,
        name: str,
        logger: logging.Logger = log,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.logger = logger
        self.clock = clock
        self.state: State = "healthy"
        self.failing_since: float | None = None
        self.last_error: str | None = None
        self.failures = 0
        """Failed attempts in the current (or last) failing spell."""
        self.total_failures = 0
        self.recovered_after_s: float | None = None

    def failed(self, error: str) -> None:
        """An attempt failed: the first failure of a spell is logged, the others counted."""
        self.last_error = error
        self.total_failures += 1
        if self.state == "failing":
            self.failures += 1
            return
        self.state, self.failing_since, self.failures = "failing", self.clock(), 1
        self.logger.warning(
            "%s failing: %s; retrying with backoff until it recovers", self.name, error
        )

    def ok(self) -> None:
        """An attempt succeeded: the end of a failing spell is logged."""
        if self.state == "healthy":
            return
        since = self.failing_since if self.failing_since is not None else self.clock()
        self.recovered_after_s = self.clock() - since
        self.state, self.failing_since = "healthy", None
        self.logger.warning(
            "%s recovered after %.1f s and %d failed attempts",
            self.name,
            self.recovered_after_s,
            self.failures,
        )

    def as_dict(self) -> dict[str, Any]:
        since = self.failing_since
        return {
            "state": self.state,
            "failing_since": None
            if since is None
            else datetime.fromtimestamp(since, UTC).isoformat(),
            "failures": self.failures,
            "last_error": self.last_error,
        }


def persist(
    action: Callable[[], R],
    health: SinkHealth,
    wait: Callable[[float], bool],
    backoff: Backoff | None = None,
    rng: random.Random | None = None,
) -> R | None:
    """``action()`` until it returns, retrying a :class:`SinkError` after a backoff delay.

    ``wait(seconds)`` sleeps (or keeps a consumer alive) and returns False when asked to
    stop; ``persist`` then returns None. A :class:`BackpressureError` waits at least its
    ``retry_after``. Other exceptions propagate: they are bugs, not outages.
    """
    backoff = backoff or Backoff()
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            result = action()
        except SinkError as exc:
            attempt += 1
            health.failed(str(exc))
            delay = backoff.delay(attempt, rng)
            if isinstance(exc, BackpressureError):
                delay = max(delay, exc.retry_after)
            if not wait(delay):
                return None
            continue
        health.ok()
        return result

"""The webhook dispatcher: alerts topic -> outbox -> signed HTTP deliveries, retried.

Two loops share the outbox file. The *intake* (a thread, the one
:class:`~vigie.sinks.pump.Pump`) consumes ``alerts``, enqueues one delivery per matching
subscriber and commits its Kafka offsets after the outbox transaction committed. The
*delivery* loop (asyncio) claims due rows, posts them signed per Standard Webhooks, and
records each outcome: delivered on 2xx; otherwise retried after an exponential, jittered,
capped delay, for as long as the retry horizon (72 hours by default) allows; then
``failed``, until ``vigie webhooks redrive``. A delivery whose 2xx answer was lost in a
crash is sent again with the same ``webhook-id``: receivers drop it. Running both loops
is :mod:`vigie.sinks.webhooks.service`.

>>> RetryPolicy(base_s=1.0, cap_s=10.0, max_attempts=7, jitter=0.0).schedule()
[1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
>>> policy = RetryPolicy()
>>> round(sum(policy.schedule()) / 3600), policy.horizon_s / 3600
(72, 72.0)
>>> from vigie.sinks.examples import example_alert
>>> orjson.loads(payload_for(example_alert()))["type"]
'alert.raised'
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp
import orjson

from vigie.contracts.codec import encode
from vigie.contracts.schemas import Alert
from vigie.settings import Settings
from vigie.sinks.base import Batch, BatchingSink
from vigie.sinks.retry import Backoff, SinkHealth
from vigie.sinks.webhooks.outbox import Delivery, NewDelivery, Outbox, Outcome
from vigie.sinks.webhooks.signing import signed_headers, webhook_id
from vigie.sinks.webhooks.subscribers import Subscriber

log = logging.getLogger(__name__)

EVENT_TYPE = "alert.raised"


def outbox_path(settings: Settings) -> Path:
    """Where the outbox lives: ``<state_dir>/webhooks/outbox.sqlite3``."""
    return settings.state_dir / "webhooks" / "outbox.sqlite3"


HORIZON_S = 72 * 3600.0
"""How long a delivery is retried by default: a receiver down for a long weekend."""


@dataclass(frozen=True)
class RetryPolicy(Backoff):
    """Backoff between attempts (1 s doubling, capped at 15 min, jittered), given up when
    the next attempt would fall beyond ``horizon_s`` after the first, or after
    ``max_attempts`` attempts if that is set."""

    base_s: float = 1.0
    cap_s: float = 900.0
    max_attempts: int | None = None
    horizon_s: float = HORIZON_S

    def gives_up(self, attempts: int, retry_at: float, retry_since: float) -> bool:
        """Whether a delivery that failed ``attempts`` times, next due at ``retry_at``,
        retried since ``retry_since``, is dead."""
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return True
        return retry_at - retry_since > self.horizon_s

    def schedule(self, n: int | None = None) -> list[float]:
        """The delays between attempts without their jitter: ``n`` of them, or every one
        until the policy gives up."""
        if n is not None:
            return super().schedule(n)
        plain, rng = Backoff(self.base_s, self.factor, self.cap_s, 0.0), random.Random(0)
        delays: list[float] = []
        elapsed = 0.0
        while True:
            delay = plain.delay(len(delays) + 1, rng)
            if self.gives_up(len(delays) + 1, elapsed + delay, 0.0):
                return delays
            delays.append(delay)
            elapsed += delay


class Transport(Protocol):
    """The network layer: POST a body, return the HTTP status (raise on network errors)."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int: ...


class AiohttpTransport:
    """:class:`Transport` over an ``aiohttp.ClientSession`` the caller owns."""

    def __init__(self, session: aiohttp.ClientSession, timeout_s: float = 10.0) -> None:
        self.session = session
        self.timeout_s = timeout_s

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with self.session.post(
            url, data=body, headers=dict(headers), timeout=timeout, allow_redirects=False
        ) as response:
            await response.read()
            return response.status


def payload_for(alert: Alert) -> bytes:
    """The JSON body: ``{"type", "timestamp", "data"}`` as Standard Webhooks suggests."""
    data = orjson.loads(encode(alert))
    return orjson.dumps(
        {"type": EVENT_TYPE, "timestamp": alert.raised_at.isoformat(), "data": data}
    )


def enqueue(
    outbox: Outbox, subscribers: Sequence[Subscriber], alerts: Iterable[Alert], *, now: float
) -> int:
    """Enqueue the deliveries of ``alerts`` in one transaction; returns how many were new."""
    return outbox.enqueue([d for alert in alerts for d in plan(alert, subscribers)], now=now)


def plan(alert: Alert, subscribers: Sequence[Subscriber]) -> list[NewDelivery]:
    """One delivery per subscriber whose filters the alert passes."""
    body = payload_for(alert)
    return [
        NewDelivery(webhook_id(alert.alert_id, s.name), s.name, alert.alert_id, body)
        for s in subscribers
        if s.matches(alert)
    ]


@dataclass
class RoundStats:
    """Outcomes of delivery attempts."""

    attempted: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0

    def add(self, other: RoundStats) -> None:
        for name in ("attempted", "delivered", "retried", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Dispatcher:
    """Enqueues alerts into the outbox and delivers what is due.

    Parameters
    ----------
    outbox
        The persistent outbox (a dispatcher restarted on the same file loses nothing).
    subscribers
        The configured subscribers.
    transport
        The network layer (:class:`AiohttpTransport` in production and tests).
    policy
        Retry schedule and number of attempts.
    concurrency
        Deliveries in flight at once.
    lease_s
        How long a claimed delivery is reserved; after a crash it is retried then.
    """

    def __init__(
        self,
        outbox: Outbox,
        subscribers: Sequence[Subscriber],
        transport: Transport,
        *,
        policy: RetryPolicy | None = None,
        concurrency: int = 8,
        lease_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.outbox = outbox
        self.subscribers = {s.name: s for s in subscribers}
        self.transport = transport
        self.policy = policy or RetryPolicy()
        self.concurrency = concurrency
        self.lease_s = lease_s
        self.clock = clock
        self.rng = rng or random.Random()
        self.health = {name: SinkHealth(f"webhooks to {name}") for name in self.subscribers}

    def enqueue(self, alerts: Iterable[Alert]) -> int:
        """Plan and enqueue deliveries for ``alerts`` in one transaction; returns new ones."""
        return enqueue(self.outbox, list(self.subscribers.values()), alerts, now=self.clock())

    async def deliver_due(self) -> RoundStats:
        """Attempt every delivery due now (up to a few batches' worth), record outcomes."""
        due = self.outbox.claim_due(
            now=self.clock(), limit=self.concurrency * 4, lease_s=self.lease_s
        )
        if not due:
            return RoundStats()
        gate = asyncio.Semaphore(self.concurrency)

        async def bounded(delivery: Delivery) -> Outcome:
            async with gate:
                return await self._attempt(delivery)

        outcomes = await asyncio.gather(*(bounded(d) for d in due))
        self.outbox.settle(outcomes, now=self.clock())
        stats = RoundStats(attempted=len(outcomes))
        for outcome in outcomes:
            if outcome.status == "delivered":
                stats.delivered += 1
            elif outcome.status == "failed":
                stats.failed += 1
            else:
                stats.retried += 1
        return stats

    async def _attempt(self, delivery: Delivery) -> Outcome:
        attempts = delivery.attempts + 1
        subscriber = self.subscribers.get(delivery.subscriber)
        if subscriber is None:
            error = f"subscriber {delivery.subscriber!r} is no longer configured"
            return Outcome(delivery.webhook_id, "failed", attempts, self.clock(), error)
        stamp = int(self.clock())
        headers = signed_headers(subscriber.secret, delivery.webhook_id, stamp, delivery.payload)
        try:
            status = await self.transport.post(subscriber.url, delivery.payload, headers)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            if 200 <= status < 300:
                self.health[subscriber.name].ok()
                return Outcome(delivery.webhook_id, "delivered", attempts, self.clock())
            error = f"HTTP {status}"
        self.health[subscriber.name].failed(f"{subscriber.url}: {error}")
        log.debug(
            "delivery %s to %s: attempt %d failed (%s)",
            delivery.webhook_id,
            subscriber.name,
            attempts,
            error,
        )
        retry_at = self.clock() + self.policy.delay(attempts, self.rng)
        if self.policy.gives_up(attempts, retry_at, delivery.retry_since):
            log.warning(
                "delivery %s to %s failed for good after %d attempts (%s)",
                delivery.webhook_id,
                subscriber.name,
                attempts,
                error,
            )
            return Outcome(delivery.webhook_id, "failed", attempts, self.clock(), error)
        return Outcome(delivery.webhook_id, "pending", attempts, retry_at, error)


class OutboxSink(BatchingSink[Alert]):
    """The intake's sink: a batch of alerts becomes one outbox transaction."""

    def __init__(self, outbox: Outbox, subscribers: Sequence[Subscriber]) -> None:
        super().__init__("outbox", max_records=500)
        self.outbox = outbox
        self.subscribers = subscribers

    def write(self, batch: Batch[Alert]) -> int:
        return enqueue(self.outbox, self.subscribers, batch.records, now=time.time())

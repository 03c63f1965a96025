"""Running the webhook dispatcher: the intake pump, the delivery loop, pruning.

:func:`run_dispatcher` runs the intake (alerts topic -> outbox, the one
:class:`~vigie.sinks.pump.Pump`, in a thread) and the delivery loop (asyncio) on one
outbox file, until stopped or idle; delivered rows older than
``Settings.webhooks_retention_days`` are pruned at start and every hour.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from vigie.contracts.catalogue import ALERTS
from vigie.contracts.schemas import Alert
from vigie.errors import BackpressureError
from vigie.kafka import ClientEvents, consumer_config
from vigie.settings import Settings
from vigie.sinks.deadletters import DeadLetterSink
from vigie.sinks.pump import Pump, Route
from vigie.sinks.stats import SinkStats
from vigie.sinks.webhooks.dispatcher import (
    Dispatcher,
    OutboxSink,
    RetryPolicy,
    RoundStats,
    Transport,
    outbox_path,
)
from vigie.sinks.webhooks.outbox import Outbox
from vigie.sinks.webhooks.subscribers import Subscriber

log = logging.getLogger(__name__)


@dataclass
class DispatchReport:
    """What a run of :func:`run_dispatcher` did."""

    intake: dict[str, Any] = field(default_factory=dict)
    deliveries: RoundStats = field(default_factory=RoundStats)
    outbox: dict[str, int] = field(default_factory=dict)
    pruned: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def intake_pump(
    settings: Settings, subscribers: Sequence[Subscriber], group_id: str, *, poll_s: float = 0.5
) -> Iterator[Pump]:
    """The intake: alerts topic -> outbox, committing offsets after each transaction."""
    client_id = "vigie-webhooks"
    events = ClientEvents(client_id)
    config = consumer_config(settings, group_id, client_id=client_id, events=events)
    rejects = DeadLetterSink(settings, client_id=client_id)
    box = Outbox(outbox_path(settings))
    route = Route(Alert, OutboxSink(box, subscribers))
    pump = Pump(
        config,
        {settings.topic(ALERTS.name): route},
        rejects,
        events,
        name="webhooks-intake",
        poll_s=poll_s,
    )
    try:
        yield pump
    finally:
        pump.close()
        rejects.close()
        box.close()


def intake(
    settings: Settings,
    subscribers: Sequence[Subscriber],
    *,
    group_id: str = "vigie-webhooks",
    max_records: int | None = None,
    idle_exit_s: float | None = None,
) -> SinkStats:
    """Only the intake: alerts topic -> outbox, committing offsets after each transaction."""
    with intake_pump(settings, subscribers, group_id) as pump:
        return pump.run(max_records=max_records, idle_exit_s=idle_exit_s)


async def run_dispatcher(
    settings: Settings,
    subscribers: Sequence[Subscriber],
    transport: Transport,
    *,
    group_id: str = "vigie-webhooks",
    policy: RetryPolicy | None = None,
    lease_s: float = 60.0,
    until_idle_s: float | None = None,
    poll_s: float = 0.5,
    stop: asyncio.Event | None = None,
    on_start: Callable[[Pump, Dispatcher], None] = lambda pump, dispatcher: None,
) -> DispatchReport:
    """Run intake and deliveries until ``stop`` is set, or, with ``until_idle_s``, until
    no alert arrived for that long and nothing is pending in the outbox any more.

    Delivered rows older than ``settings.webhooks_retention_days`` are pruned at start and
    then every ``PRUNE_EVERY_S``. ``on_start`` receives the intake pump and the dispatcher
    (to serve their state).
    """
    stop = stop or asyncio.Event()
    halt = threading.Event()
    box = Outbox(outbox_path(settings))
    dispatcher = Dispatcher(box, subscribers, transport, policy=policy, lease_s=lease_s)
    report = DispatchReport()
    with intake_pump(settings, subscribers, group_id, poll_s=poll_s) as pump:
        on_start(pump, dispatcher)
        intake = asyncio.create_task(
            asyncio.to_thread(pump.run, idle_exit_s=until_idle_s, should_stop=halt.is_set)
        )
        try:
            await _deliver(dispatcher, intake, stop, poll_s, settings, report)
        finally:
            halt.set()
            await asyncio.wait({intake})
            report.outbox = box.counts()
            box.close()
        report.intake = intake.result().as_dict()
    return report


PRUNE_EVERY_S = 3600.0
FORGET_AFTER_S = int(ALERTS.config["retention.ms"]) / 1000
"""A delivered id is kept as long as the alerts topic could bring its alert back."""


async def _deliver(
    dispatcher: Dispatcher,
    intake: asyncio.Task[SinkStats],
    stop: asyncio.Event,
    poll_s: float,
    settings: Settings,
    report: DispatchReport,
) -> None:
    """The delivery loop: due deliveries, pauses, pruning; until stopped or idle."""
    box = dispatcher.outbox
    pruned_at = -PRUNE_EVERY_S
    while not stop.is_set():
        if intake.done():
            intake.result()  # a failed intake ends the run with its error
            if not box.counts()["pending"]:
                return
        if time.monotonic() - pruned_at >= PRUNE_EVERY_S:
            report.pruned += prune(box, settings, now=time.time())
            pruned_at = time.monotonic()
        try:
            stats = await dispatcher.deliver_due()
        except BackpressureError as exc:
            log.warning("outbox busy (%s), pausing %.1f s", exc, exc.retry_after)
            await _pause(stop, None, exc.retry_after)
            continue
        report.deliveries.add(stats)
        if not stats.attempted:
            await _pause(stop, box.next_due(), poll_s)


def prune(box: Outbox, settings: Settings, *, now: float) -> int:
    """Delete delivered rows past the retention; forget their ids once the alerts topic
    cannot bring their alert back. Returns the rows deleted."""
    retention_s = settings.webhooks_retention_days * 86400.0
    pruned, _ = box.prune(delivered_before=now - retention_s, forget_before=now - FORGET_AFTER_S)
    if pruned:
        log.info(
            "outbox: %d delivered rows older than %g days pruned",
            pruned,
            settings.webhooks_retention_days,
        )
    return pruned


async def _pause(stop: asyncio.Event, next_due: float | None, poll_s: float) -> None:
    wait = poll_s if next_due is None else min(poll_s, max(0.01, next_due - time.time()))
    try:
        await asyncio.wait_for(stop.wait(), timeout=wait)
    except TimeoutError:
        return

"""Replaying files into Kafka: read, validate, produce, dead-letter, account for everything.

:class:`Replay` reads JSONL or CSV files record by record, validates each one with
:class:`~vigie.ingest.decoding.RecordDecoder`, produces accepted records to the target
topic (and the control results a mapping yields to ``control-results``), routes rejected
ones to the dead-letter topic with their original bytes, and, once every delivery report
is in, returns a :class:`ReplayReport`.

``messages_per_second`` counts every message written to Kafka (records, control results
and dead letters) over the elapsed time, flush included.

Five records at 100 per second with a burst of one wait four times 10 ms:

>>> now = [0.0]
>>> def advance(seconds: float) -> None:
...     now[0] += seconds
>>> bucket = TokenBucket(rate=100, burst=1, clock=lambda: now[0], wait=advance)
>>> for _ in range(5):
...     bucket.take()
>>> round(now[0], 3)
0.04
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vigie.contracts.catalogue import CONTROL_RESULTS, DECLARATIONS, topic_named
from vigie.errors import ConfigurationError, DecodeError
from vigie.ingest.deadletters import DeadLetterRouter
from vigie.ingest.decoding import RecordDecoder
from vigie.ingest.mappings import ColumnMapping
from vigie.ingest.producer import KafkaProducer
from vigie.ingest.readers import ProgressHook, read_records


class TokenBucket:
    """At most ``rate`` takes per second on average, with bursts of ``burst``.

    Parameters
    ----------
    rate
        Tokens added per second.
    burst
        Most tokens held at once (default: a tenth of a second's worth, at least 1).
    clock, wait
        The monotonic clock and the way to wait (a producer's ``poll`` keeps delivery
        reports flowing while throttled).
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], Any] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ConfigurationError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self.clock = clock
        self.wait = wait
        self._tokens = self.burst
        self._last = clock()

    def take(self) -> None:
        """Take one token, waiting for it if the bucket is empty."""
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1:
            self.wait((1 - self._tokens) / self.rate)
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
        self._tokens -= 1


@dataclass(frozen=True)
class ReplayReport:
    """What a replay did; ``as_dict`` is the ``--json`` result."""

    produced: int
    rejected: int
    controls_produced: int
    delivery_errors: int
    seconds: float
    messages_per_second: float
    topic: str
    rejected_reasons: dict[str, int]
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """The first delivery failures, described."""
    first_rejected: list[str] = field(default_factory=list)
    """The first rejected records, with their file and line, and why."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Replay:
    """Replays files into one catalogue topic through one producer.

    Parameters
    ----------
    producer
        The producer (its settings give the brokers, topic prefix and size limit).
    topic
        Catalogue name of the target topic; its schema validates the records.
    mapping
        Column mapping for foreign rows, or None when rows already follow the schema.
    rate
        Records per second at most, or None for as fast as possible.
    """

    def __init__(
        self,
        producer: KafkaProducer,
        *,
        topic: str = DECLARATIONS.name,
        mapping: ColumnMapping | None = None,
        rate: float | None = None,
    ) -> None:
        settings = producer.settings
        try:
            entry = topic_named(topic)
        except KeyError as exc:
            raise ConfigurationError(str(exc.args[0])) from exc
        self.producer = producer
        self.target = settings.topic(entry.name)
        self.controls_target = settings.topic(CONTROL_RESULTS.name)
        self.decoder = RecordDecoder(entry, mapping, settings.max_message_bytes)
        self.router = DeadLetterRouter(producer)
        self.bucket = TokenBucket(rate, wait=producer.poll) if rate else None
        self.files: list[str] = []
        self._started = time.monotonic()

    def check_topics(self) -> None:
        """Fail early, naming the remedy, when a topic the replay writes to is missing."""
        wanted = [self.target, self.router.topic]
        if self.decoder.mapping is not None and self.decoder.mapping.control is not None:
            wanted.append(self.controls_target)
        missing = self.producer.missing_topics(wanted)
        if missing:
            where = self.producer.settings.bootstrap_servers
            raise ConfigurationError(
                f"missing topics {', '.join(missing)} on {where}: "
                "create them first with `vigie topics create`"
            )

    def run(self, paths: Iterable[Path], progress: ProgressHook | None = None) -> ReplayReport:
        """Replay every file, wait for every delivery report, and report."""
        self._started = time.monotonic()
        for path in paths:
            self.replay_file(path, progress)
        return self.finish()

    def replay_file(self, path: Path, progress: ProgressHook | None = None) -> None:
        """Queue every record of one file (accepted ones, control results, dead letters)."""
        self.files.append(str(path))
        produce, accept, bucket = self.producer.produce, self.decoder.accept, self.bucket
        target, controls_target = self.target, self.controls_target
        for record in read_records(path, progress):
            if bucket is not None:
                bucket.take()
            try:
                value, key, control, control_key = accept(record)
            except DecodeError as error:
                self.router.route(
                    target,
                    self.decoder.original_key(record),
                    record.raw,
                    error,
                    source=f"{path}:{record.line}",
                )
                continue
            produce(target, value, key)
            if control is not None:
                produce(controls_target, control, control_key)

    def finish(self) -> ReplayReport:
        """Flush, then count what was delivered and what was not."""
        delivery = self.producer.flush()
        seconds = time.monotonic() - self._started
        produced = delivery.delivered(self.target)
        controls = delivery.delivered(self.controls_target) if self._has_controls() else 0
        sent = sum(delivery.enqueued.values())
        return ReplayReport(
            produced=produced,
            rejected=self.router.routed,
            controls_produced=controls,
            delivery_errors=delivery.failures,
            seconds=round(seconds, 3),
            messages_per_second=round(sent / seconds, 1) if seconds > 0 else 0.0,
            topic=self.target,
            rejected_reasons=dict(self.router.reasons.most_common()),
            files=list(self.files),
            errors=list(delivery.errors),
            first_rejected=list(self.router.rejections.first),
        )

    def _has_controls(self) -> bool:
        return self.controls_target != self.target

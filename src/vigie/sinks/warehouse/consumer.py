"""The warehouse writer: a Kafka consumer loop from the output topics into ClickHouse.

It reads ``declarations``, ``scores``, ``alerts``, ``control-results`` and
``declarations.dlq`` (physical names through ``settings.topic``), routes each record to
its table's :class:`~vigie.sinks.warehouse.writer.TableWriter`, and at each checkpoint
flushes every table, then commits the offsets (``enable.auto.commit=false``). A crash
between insert and commit replays the batch; the tables' insert deduplication and
ReplacingMergeTree keys absorb it, so each record is stored once.

A message that does not decode is never fatal: it becomes a row of ``dead_letters``
with its original bytes and the reason, and the writer moves on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from vigie.contracts.catalogue import ALERTS, CONTROL_RESULTS, DEAD_LETTERS, DECLARATIONS, SCORES
from vigie.contracts.catalogue import Topic as CatalogueTopic
from vigie.contracts.codec import dead_letter, decode
from vigie.errors import BackpressureError, DecodeError, SinkError
from vigie.settings import Settings
from vigie.sinks.warehouse.rows import TABLES
from vigie.sinks.warehouse.writer import Position, TableWriter

log = logging.getLogger(__name__)

SOURCES: tuple[tuple[CatalogueTopic, str], ...] = (
    (DECLARATIONS, "declarations"),
    (SCORES, "scores"),
    (ALERTS, "alerts"),
    (CONTROL_RESULTS, "control_results"),
    (DEAD_LETTERS, "dead_letters"),
)
"""Each topic the writer reads, and the table its records go to."""

MAX_ERRORS_KEPT = 50
"""Kafka errors kept in the stats (a long-running writer must not grow without bound)."""

OUTPUT_MAX_BYTES = 4 * 1024 * 1024
"""Size limit for records Vigie itself produced (scores, alerts, dead letters)."""


@dataclass(frozen=True)
class _Route:
    schema: type[BaseModel]
    table: str
    max_bytes: int


@dataclass
class WriteStats:
    """What the writer did: messages consumed, rows sent per table, checkpoints."""

    consumed: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    rejected: int = 0
    """Messages the writer could not decode, stored in ``dead_letters``."""
    checkpoints: int = 0
    kafka_errors: list[str] = field(default_factory=list)
    first_record_at: float | None = None
    """Monotonic time of the first record consumed."""
    last_checkpoint_at: float | None = None

    @property
    def records_per_s(self) -> float | None:
        """Records consumed and written per second, first record to last checkpoint."""
        if self.first_record_at is None or self.last_checkpoint_at is None:
            return None
        elapsed = self.last_checkpoint_at - self.first_record_at
        return round(self.consumed / elapsed, 1) if elapsed > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "consumed": self.consumed,
            "rows": dict(self.rows),
            "rejected": self.rejected,
            "checkpoints": self.checkpoints,
            "records_per_s": self.records_per_s,
            "kafka_errors": list(self.kafka_errors),
        }


def consumer_config(settings: Settings, group_id: str) -> dict[str, Any]:
    """The confluent-kafka configuration of the writer's consumer: offsets by hand only.

    >>> config = consumer_config(Settings(kafka_bootstrap="kafka:9092"), "vigie-warehouse")
    >>> config["bootstrap.servers"], config["enable.auto.commit"], config["auto.offset.reset"]
    ('kafka:9092', False, 'earliest')
    >>> [Settings(topic_prefix="t-1.").topic(topic.name) for topic, _ in SOURCES][-1]
    't-1.declarations.dlq'
    """
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": group_id,
        "client.id": "vigie-warehouse",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
    }


class WarehouseConsumer:
    """Consumes Vigie's topics into the warehouse tables, committing after each insert.

    Parameters
    ----------
    settings
        Topic names and the Kafka bootstrap come from here.
    client
        A clickhouse-connect client on a migrated warehouse.
    group_id
        Consumer group; every writer of one warehouse shares it.
    max_records
        A table batch this large triggers a checkpoint.
    max_age_s
        A batch this old (seconds) triggers a checkpoint.
    poll_s
        How long one poll waits for messages.
    overrides
        Extra consumer configuration (``session.timeout.ms``, ...).
    """

    def __init__(
        self,
        settings: Settings,
        client: Any,
        group_id: str = "vigie-warehouse",
        max_records: int = 5000,
        max_age_s: float = 2.0,
        poll_s: float = 0.5,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        from confluent_kafka import Consumer

        self.settings = settings
        self.poll_s = poll_s
        self.max_records = max_records
        self.stats = WriteStats()
        self.writers = {
            name: TableWriter(client, table, max_records=max_records, max_age_s=max_age_s)
            for name, table in TABLES.items()
        }
        self._routes = {
            settings.topic(topic.name): _Route(
                schema=topic.schema or BaseModel,
                table=table,
                max_bytes=settings.max_message_bytes if topic is DECLARATIONS else OUTPUT_MAX_BYTES,
            )
            for topic, table in SOURCES
        }
        self._uncommitted = False
        self.consumer = Consumer({**consumer_config(settings, group_id), **(overrides or {})})
        self.consumer.subscribe(list(self._routes), on_revoke=self._on_revoke)

    @property
    def topics(self) -> list[str]:
        """The physical topic names read."""
        return list(self._routes)

    def poll(self) -> int:
        """Consume up to ``max_records`` messages into the table batches; return how many."""
        messages = self.consumer.consume(num_messages=self.max_records, timeout=self.poll_s)
        for message in messages:
            self._route(message)
        return len(messages)

    def due(self) -> bool:
        """Whether any table batch is full or old enough."""
        return any(w.due() for w in self.writers.values())

    def pending(self) -> int:
        """Records buffered and not yet inserted."""
        return sum(len(w) for w in self.writers.values())

    def flush(self, retries: int = 3) -> int:
        """Insert every table's batch, retrying a failed insert; return rows sent."""
        sent = 0
        for name, writer in self.writers.items():
            rows = _flush_with_retry(writer, retries)
            self.stats.rows[name] += rows
            sent += rows
        return sent

    def commit(self) -> None:
        """Commit the offsets of everything consumed so far (all of it is inserted)."""
        from confluent_kafka import KafkaError, KafkaException

        if not self._uncommitted:
            return
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                # inserted but not committed: the next commit covers it, a replay is absorbed
                log.warning("offset commit failed, will retry: %s", exc)
                return
        self._uncommitted = False

    def checkpoint(self) -> int:
        """Flush then commit: the only order that never loses a record."""
        sent = self.flush()
        self.commit()
        self.stats.checkpoints += 1
        self.stats.last_checkpoint_at = time.monotonic()
        log.info("checkpoint %d: %d rows written", self.stats.checkpoints, sent)
        return sent

    def caught_up(self) -> bool:
        """Whether every assigned partition has been read up to its high watermark.

        The watermarks cached from fetch responses answer most partitions without a broker
        round trip; only partitions not read yet are checked against the broker.
        """
        assigned = self.consumer.assignment()
        if not assigned:
            return False
        unread = []
        for tp in self.consumer.position(assigned):
            low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if tp.offset >= 0 and high >= 0:
                if tp.offset < high:
                    return False
            elif high < 0 or high > low:
                unread.append(tp)
        if not unread:
            return True
        committed = self.consumer.committed(unread, timeout=10)
        for tp, done in zip(unread, committed, strict=True):
            low, high = self.consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            offset = tp.offset if tp.offset >= 0 else done.offset if done.offset >= 0 else low
            if offset < high:
                return False
        return True

    def run(
        self,
        once: bool = False,
        until_idle: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> WriteStats:
        """Consume and write until stopped.

        ``once``: stop once the first poll that brought records (at most ``max_records``)
        is written and committed, or when caught up; ``until_idle``: stop when every
        partition is read to its end and written.
        """
        while not should_stop():
            arrived = self.poll()
            idle = arrived == 0
            if self.due() or (idle and self.pending()) or (once and arrived):
                self.checkpoint()
                if once:
                    break
            if idle and (once or until_idle) and self.caught_up():
                break
        self.checkpoint()
        return self.stats

    def close(self) -> None:
        """Leave the consumer group (buffered records are checkpointed on revocation)."""
        self.consumer.close()

    def _route(self, message: Any) -> None:
        error = message.error()
        if error is not None:
            if len(self.stats.kafka_errors) < MAX_ERRORS_KEPT:
                self.stats.kafka_errors.append(str(error))
            log.warning("kafka error on %s: %s", message.topic(), error)
            return
        self._uncommitted = True
        self.stats.consumed += 1
        if self.stats.first_record_at is None:
            self.stats.first_record_at = time.monotonic()
        topic = message.topic()
        route = self._routes[topic]
        position = Position(topic, message.partition(), message.offset())
        try:
            record = decode(route.schema, message.value(), max_bytes=route.max_bytes)
        except DecodeError as exc:
            letter = dead_letter(topic, message.key(), message.value(), exc, _kafka_time(message))
            self.writers["dead_letters"].add(letter, position)
            self.stats.rejected += 1
            log.warning(
                "dead-lettered %s[%d]@%d: %s", topic, position.partition, position.offset, exc
            )
            return
        self.writers[route.table].add(record, position)

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        try:
            self.checkpoint()
        except Exception:  # the next owner replays from the last commit: nothing is lost
            log.exception("checkpoint on partition revocation failed")


def _flush_with_retry(writer: TableWriter, retries: int) -> int:
    delay = 0.5
    for attempt in range(retries + 1):
        try:
            return writer.flush()
        except SinkError as exc:
            if attempt == retries:
                raise
            wait = exc.retry_after if isinstance(exc, BackpressureError) else delay
            log.warning("%s; retrying in %.1f s", exc, wait)
            time.sleep(wait)
            delay *= 2
    return 0


def _kafka_time(message: Any) -> datetime:
    """The broker's timestamp of a message (so a replayed rejection keeps its time)."""
    kind, millis = message.timestamp()
    if kind == 0 or millis < 0:  # TIMESTAMP_NOT_AVAILABLE
        return datetime.now(UTC)
    return datetime.fromtimestamp(millis / 1000, UTC)

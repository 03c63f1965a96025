"""A Kafka producer for bulk loads: batched, compressed, idempotent, and honest about losses.

:class:`KafkaProducer` wraps :class:`confluent_kafka.Producer` with settings tuned for
throughput (``linger.ms`` 20, 1 MB batches, lz4, a deep local queue) and with
idempotence on, so that retries never duplicate or reorder a partition's records. It
serves delivery reports every ``poll_every`` messages instead of after each one, asks
librdkafka to report only failures (one Python callback per *failed* message, none per
delivered one), waits when the local queue is full instead of dropping, and counts every
message that was not acknowledged: a produce call refused at once, a failed delivery, or
a message still in flight when :meth:`KafkaProducer.flush` gives up.

:func:`produce_records` encodes contract records with :func:`vigie.contracts.codec.encode`,
keyed by their topic's key field.

>>> from vigie.settings import Settings
>>> conf = producer_config(Settings(kafka_bootstrap=None, kafka_port=29092), compression="zstd")
>>> conf["bootstrap.servers"], conf["compression.type"], conf["enable.idempotence"]
('127.0.0.1:29092', 'zstd', True)
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from pydantic import BaseModel

from vigie import kafka
from vigie.contracts.catalogue import Topic, topic_named
from vigie.contracts.codec import encode
from vigie.errors import StackError
from vigie.kafka import ClientEvents
from vigie.settings import Settings

log = logging.getLogger(__name__)

Compression = Literal["lz4", "zstd", "none"]
Headers = list[tuple[str, str | bytes | None]]
MAX_KEPT_ERRORS = 20


def producer_config(
    settings: Settings,
    *,
    compression: Compression = "lz4",
    overrides: Mapping[str, Any] | None = None,
    events: ClientEvents | None = None,
) -> dict[str, Any]:
    """The librdkafka configuration of a bulk, idempotent producer (on :mod:`vigie.kafka`'s)."""
    conf = kafka.producer_config(settings, client_id="vigie-producer", events=events)
    conf |= {
        "linger.ms": 20,
        "batch.size": 1024 * 1024,
        "batch.num.messages": 100_000,
        "compression.type": compression,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 256 * 1024,  # at most 256 MB waiting in memory
        "message.timeout.ms": 120_000,
        "delivery.report.only.error": True,
    }
    conf.update(overrides or {})
    return conf


@dataclass
class DeliveryReport:
    """What happened to the messages given to a producer."""

    enqueued: Counter[str] = field(default_factory=Counter)
    """Messages accepted into the local queue, by topic."""
    failed: Counter[str] = field(default_factory=Counter)
    """Messages refused, failed or undelivered, by topic."""
    errors: list[str] = field(default_factory=list)
    """The first few failures, described."""

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    def delivered(self, topic: str) -> int:
        """Messages acknowledged by the broker for ``topic`` (after a complete flush)."""
        return self.enqueued[topic] - self.failed[topic]

    def _fail(self, topic: str, description: str, count: int = 1) -> None:
        self.failed[topic] += count
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(description)


class KafkaProducer:
    """A batched, idempotent producer that accounts for every message.

    Parameters
    ----------
    settings
        Where the brokers are.
    compression
        ``lz4`` (fast, the default) or ``zstd`` (smaller).
    poll_every
        Serve delivery reports after this many produce calls.
    overrides
        librdkafka properties that replace the defaults of :func:`producer_config`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        compression: Compression = "lz4",
        poll_every: int = 1000,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.compression = compression
        self.poll_every = poll_every
        self.overrides = overrides
        self.report = DeliveryReport()
        self.events = ClientEvents("vigie-producer")
        conf = producer_config(
            settings, compression=compression, overrides=overrides, events=self.events
        )
        conf["on_delivery"] = self._on_delivery
        conf["error_cb"] = self._on_error
        self._producer = Producer(conf)
        self._produce = self._producer.produce
        self._since_poll = 0

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Queue one message; wait for room when the local queue is full."""
        try:
            self._produce(topic, value, key, headers=headers)
        except BufferError:
            self._produce_when_room(topic, value, key, headers)
        except KafkaException as exc:
            self.report._fail(topic, f"{topic}: refused: {exc.args[0]}")
        enqueued = self.report.enqueued
        enqueued[topic] = enqueued[topic] + 1
        self._since_poll += 1
        if self._since_poll >= self.poll_every:
            self._producer.poll(0)
            self._since_poll = 0

    def _produce_when_room(
        self, topic: str, value: bytes, key: bytes | None, headers: Headers | None
    ) -> None:
        while True:
            self._producer.poll(0.05)
            try:
                self._produce(topic, value, key, headers=headers)
                return
            except BufferError:
                continue
            except KafkaException as exc:
                self.report._fail(topic, f"{topic}: refused: {exc.args[0]}")
                return

    def missing_topics(self, names: Iterable[str], timeout: float = 10.0) -> list[str]:
        """The topics among ``names`` that the cluster does not have.

        Raises :class:`~vigie.errors.StackError` when no broker answers in ``timeout`` s.
        """
        try:
            metadata = self._producer.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise StackError(
                f"no Kafka broker answers at {self.settings.bootstrap_servers} ({exc.args[0]}); "
                "start the local one with `vigie stack up`"
            ) from exc
        return [name for name in names if name not in metadata.topics]

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports, waiting at most ``timeout`` seconds."""
        self._producer.poll(timeout)

    def flush(self, timeout: float = 120.0) -> DeliveryReport:
        """Wait for every queued message's fate; undelivered ones count as failures."""
        deadline = time.monotonic() + timeout
        remaining = self._producer.flush(timeout)
        while remaining and time.monotonic() < deadline:
            remaining = self._producer.flush(max(0.0, deadline - time.monotonic()))
        if remaining:
            message = f"{remaining} messages undelivered after {timeout} s"
            self.report._fail("<in flight>", message, remaining)
        return self.report

    def __enter__(self) -> KafkaProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.flush()

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            topic = msg.topic() or "<unknown>"
            self.report._fail(topic, f"{topic}: {err.name()}: {err.str()}")

    def _on_error(self, err: KafkaError) -> None:
        self.events.error(err)  # logged once per state, however often librdkafka retries
        if err.fatal():
            self.report._fail("<fatal>", f"fatal producer error {err.name()}: {err.str()}")


def produce_records(
    producer: KafkaProducer,
    topic: Topic | str,
    records: Iterable[BaseModel],
) -> int:
    """Encode and queue contract records on a catalogue topic, keyed by its key field.

    The physical topic name comes from the producer's settings (topic prefix). Returns
    the number of records queued; call :meth:`KafkaProducer.flush` to learn their fate.
    """
    entry = topic_named(topic) if isinstance(topic, str) else topic
    name = producer.settings.topic(entry.name)
    count = 0
    for record in records:
        key = getattr(record, entry.key_field) if entry.key_field else None
        producer.produce(name, encode(record), None if key is None else str(key).encode())
        count += 1
    return count

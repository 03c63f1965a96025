"""A small batching sink: ``add()`` per record, ``flush()`` per checkpoint (Quix style).

A sink buffers what it is given and writes the whole batch at once when flushed; the
caller commits its Kafka offsets only after ``flush()`` returned, so a crash replays the
batch and the sink's idempotent writes absorb the replay. :func:`pump` is that loop for a
confluent-kafka consumer.

Examples
--------
>>> class Total(BatchingSink[int]):
...     def __init__(self) -> None:
...         super().__init__()
...         self.total = 0
...     def write(self, batch: Sequence[int]) -> int:
...         self.total += sum(batch)
...         return len(batch)
>>> sink = Total()
>>> for n in (3, 4, 5):
...     sink.add(n)
>>> len(sink), sink.flush(), sink.total, len(sink), sink.flush()
(3, 3, 12, 0, 0)
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from vigie.contracts.codec import decode
from vigie.errors import BackpressureError, DecodeError

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class BatchingSink(ABC, Generic[T]):
    """Buffers records; :meth:`write` receives them all at each :meth:`flush`."""

    def __init__(self) -> None:
        self._batch: list[T] = []

    def add(self, record: T) -> None:
        """Buffer one record until the next flush."""
        self._batch.append(record)

    def flush(self) -> int:
        """Write the buffered batch; the buffer is kept if the write raises.

        Returns what :meth:`write` returns: the number of records that changed the sink
        (replayed duplicates do not count).
        """
        if not self._batch:
            return 0
        changed = self.write(self._batch)
        self._batch = []
        return changed

    def __len__(self) -> int:
        return len(self._batch)

    @abstractmethod
    def write(self, batch: Sequence[T]) -> int:
        """Write ``batch`` in one go, idempotently; return the number of new records."""


@dataclass
class PumpStats:
    """What :func:`pump` did."""

    consumed: int = 0
    written: int = 0
    invalid: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)
    active_at: float = field(default_factory=time.monotonic)
    """Monotonic time of the last record, or of the last poll before partitions were
    assigned: a consumer still joining its group is not idle."""

    def idle_s(self) -> float:
        return time.monotonic() - self.active_at

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "active_at"}


LINGER_S = 0.02
"""How long a batch waits for company once its first record arrived."""


def take(consumer: Any, want: int, poll_s: float, linger_s: float = LINGER_S) -> list[Any]:
    """Up to ``want`` messages: wait up to ``poll_s`` for the first, then up to ``linger_s``
    for more. Batches still form at high rates, and a lone alert at a low rate is passed
    on within ``linger_s`` of its arrival rather than after the whole poll (which waits
    for ``want`` messages or ``poll_s``, and held single alerts back about 0.3 s)."""
    first = consumer.poll(poll_s)
    if first is None:
        return []
    if want <= 1:
        return [first]
    return [first, *consumer.consume(num_messages=want - 1, timeout=linger_s)]


def pump(
    consumer: Any,
    schema: type[M],
    sink: BatchingSink[M],
    *,
    batch_size: int = 500,
    poll_s: float = 0.5,
    idle_exit_s: float | None = None,
    max_records: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> PumpStats:
    """Consume records into ``sink``, committing offsets only after each flush succeeded.

    Stops when ``should_stop()`` is true, after ``max_records`` records, or when nothing
    arrived for ``idle_exit_s`` seconds (``None``: never). Records that do not decode are
    logged and counted, then committed past: they cannot become valid by replaying.
    """
    stats = PumpStats()
    while not should_stop():
        if max_records is not None and stats.consumed >= max_records:
            break
        want = batch_size if max_records is None else min(batch_size, max_records - stats.consumed)
        messages = take(consumer, want, poll_s)
        if messages or not consumer.assignment():
            stats.active_at = time.monotonic()
        if not messages:
            if idle_exit_s is not None and stats.idle_s() >= idle_exit_s:
                break
            continue
        if not _add_all(messages, schema, sink, stats):
            continue
        written = flush_patiently(sink, should_stop)
        if written is None:
            break  # stopped while the sink pushed back: uncommitted, the batch is replayed
        stats.written += written
        consumer.commit(asynchronous=False)
        stats.batches += 1
    return stats


def flush_patiently(sink: BatchingSink[Any], should_stop: Callable[[], bool]) -> int | None:
    """Flush, waiting out :class:`BackpressureError` (the batch stays buffered meanwhile).

    Returns the number of new records, or None if asked to stop before the flush went
    through.
    """
    while True:
        try:
            return sink.flush()
        except BackpressureError as exc:
            log.warning(
                "%s pushes back (%s): retrying in %.1f s", type(sink).__name__, exc, exc.retry_after
            )
            if should_stop():
                return None
            time.sleep(exc.retry_after)


def _add_all(messages: list[Any], schema: type[M], sink: BatchingSink[M], stats: PumpStats) -> int:
    """Decode and add the batch's records; returns how many messages carried a record."""
    records = 0
    for message in messages:
        if message.error() is not None:
            stats.errors.append(str(message.error()))
            log.warning("kafka error on %s: %s", message.topic(), message.error())
            continue
        stats.consumed += 1
        records += 1
        try:
            sink.add(decode(schema, message.value()))
        except DecodeError as exc:
            stats.invalid += 1
            log.error(
                "skipping undecodable %s at %s[%d]@%d: %s",
                schema.__name__,
                message.topic(),
                message.partition(),
                message.offset(),
                exc,
            )

    return records


def kafka_consumer(bootstrap: str, topic: str, group_id: str, *, reset: str = "earliest") -> Any:
    """A confluent-kafka consumer subscribed to ``topic``, committing only by hand."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": reset,
            "enable.partition.eof": False,
        }
    )
    consumer.subscribe([topic])
    return consumer

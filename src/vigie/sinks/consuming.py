"""Reading with a confluent-kafka consumer: timestamps, and where it stands.

Batches are taken with :func:`vigie.kafka.take`, as the worker takes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from vigie.kafka import retry_transient, watermarks


def kafka_time(message: Any) -> datetime:
    """The broker's timestamp of a message (so a replayed rejection keeps its time)."""
    kind, millis = message.timestamp()
    if kind == 0 or millis < 0:  # TIMESTAMP_NOT_AVAILABLE
        return datetime.now(UTC)
    return datetime.fromtimestamp(millis / 1000, UTC)


def reached(consumer: Any, ends: Mapping[tuple[str, int], int]) -> bool:
    """Whether every (topic, partition) in ``ends`` is read up to its offset."""
    from confluent_kafka import TopicPartition

    wanted = [TopicPartition(t, p) for (t, p), end in ends.items() if end > 0]
    positions = consumer.position(wanted) if wanted else []
    return all(tp.offset >= ends[(tp.topic, tp.partition)] for tp in positions)


def caught_up(consumer: Any) -> bool:
    """Whether every assigned partition has been read up to its high watermark.

    The watermarks cached from fetch responses answer most partitions without a broker
    round trip; only partitions not read yet are checked against the broker.
    """
    assigned = consumer.assignment()
    if not assigned:
        return False
    unread = []
    for tp in consumer.position(assigned):
        low, high = consumer.get_watermark_offsets(tp, cached=True)
        if tp.offset >= 0 and high >= 0:
            if tp.offset < high:
                return False
        elif high < 0 or high > low:
            unread.append(tp)
    if not unread:
        return True
    # A partition whose leader is moving answers with an error for a moment: asked again.
    committed = retry_transient(lambda left: consumer.committed(unread, timeout=left), 10)
    for tp, done in zip(unread, committed, strict=True):
        low, high = watermarks(consumer, tp, 10)
        offset = tp.offset if tp.offset >= 0 else done.offset if done.offset >= 0 else low
        if offset < high:
            return False
    return True

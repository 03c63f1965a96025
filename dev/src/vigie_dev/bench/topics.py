"""Reading what a scenario wrote to Kafka: record counts, keys and timestamps.

Scores are keyed by declaration id and stamped (CreateTime) by their producer when it
sends them, so a topic's keys and timestamps say which declarations were scored and when,
without decoding a single value. :func:`record_count` asks only for watermarks, cheap
enough to poll while a worker runs; :class:`TopicScan` reads the records afterwards.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from vigie.errors import VigieError

Done = Callable[[], bool]


def consumer(bootstrap: str, **overrides: Any) -> Any:
    """A consumer outside any group's offsets: nothing committed, from the beginning."""
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-scan-{uuid.uuid4().hex[:10]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **overrides,
        }
    )


def partitions(client: Any, topic: str) -> list[int]:
    metadata = client.list_topics(topic=topic, timeout=30)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        raise VigieError(f"topic {topic} does not exist")
    return sorted(found.partitions)


def record_count(client: Any, topic: str) -> int:
    """Records in ``topic`` (sum of high minus low watermarks over its partitions)."""
    from confluent_kafka import TopicPartition

    total = 0
    for p in partitions(client, topic):
        low, high = client.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        total += high - low
    return total


class TopicScan:
    """Reads a whole topic from the beginning, keeping each key's first timestamp.

    :meth:`catch_up` reads up to the watermarks of the moment and can be called again to
    read what arrived since.
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        self.topic = topic
        self.consumer = consumer(bootstrap)
        self.partitions = partitions(self.consumer, topic)
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in self.partitions])
        self.first_ms: dict[bytes, int] = {}
        """Each key's first timestamp (epoch milliseconds)."""
        self.records = 0
        self.last_ms = 0
        """The latest timestamp read."""
        self.earliest_ms: int | None = None
        """The earliest timestamp read."""

    def catch_up(self, timeout: float = 600.0) -> TopicScan:
        """Read every record written before this call."""
        from confluent_kafka import TopicPartition

        ends = {
            p: self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=30)[1]
            for p in self.partitions
        }
        at = {p: -1 for p in self.partitions}
        deadline = time.monotonic() + timeout
        while any(at[p] + 1 < ends[p] for p in self.partitions):
            if time.monotonic() > deadline:
                raise VigieError(f"reading {self.topic}: not at its end after {timeout:.0f} s")
            for msg in self.consumer.consume(num_messages=10_000, timeout=1.0):
                if msg.error() is not None:
                    continue
                at[msg.partition()] = msg.offset()
                stamp = int(msg.timestamp()[1])
                self.first_ms.setdefault(msg.key() or b"", stamp)
                self.last_ms = max(self.last_ms, stamp)
                self.earliest_ms = min(self.earliest_ms or stamp, stamp)
                self.records += 1
            for p, end in ends.items():  # an empty or compacted tail reads as done
                if at[p] < 0 and self._position(p) >= end:
                    at[p] = end - 1
        return self

    def _position(self, partition: int) -> int:
        from confluent_kafka import TopicPartition

        return int(self.consumer.position([TopicPartition(self.topic, partition)])[0].offset)

    def close(self) -> None:
        self.consumer.close()


def wait_until(done: Done, timeout: float, what: str, alive: Done = lambda: True) -> float:
    """Poll ``done`` every 0.2 s; the time it took. Raises on timeout or when ``alive``
    turns false (a child process died)."""
    began = time.monotonic()
    while not done():
        if not alive():
            raise VigieError(f"a process died while waiting for {what}")
        if time.monotonic() - began > timeout:
            raise VigieError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - began

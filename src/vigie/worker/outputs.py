"""The worker's producer: outputs sent now, known to be in Kafka at the next checkpoint.

librdkafka batches, compresses and retries; only failures come back to Python (one
callback per failed message, none per delivered one). :meth:`Outputs.flush` waits for
every message sent so far and raises if any was lost, so a checkpoint never covers an
output that is not in Kafka.
"""

from __future__ import annotations

import logging
from typing import Any

from vigie.errors import VigieError
from vigie.kafka import producer_config
from vigie.settings import Settings

log = logging.getLogger(__name__)

FLUSH_TIMEOUT_S = 120.0


def output_config(settings: Settings) -> dict[str, Any]:
    """acks=all and idempotence (retries neither lose, duplicate nor reorder), batched.

    >>> output_config(Settings(kafka_bootstrap="k:9092"))["message.timeout.ms"]
    0
    """
    return producer_config(
        settings,
        client_id="vigie-worker",
        overrides={
            "linger.ms": 5,
            "compression.type": "lz4",
            "delivery.report.only.error": True,
            "message.timeout.ms": 0,  # retry until the broker is back: never drop an output
            "queue.buffering.max.kbytes": 256 * 1024,
        },
    )


class Outputs:
    """Sends records and accounts for their delivery.

    Parameters
    ----------
    settings
        Where the broker is.
    """

    def __init__(self, settings: Settings) -> None:
        from confluent_kafka import Producer

        self._failures: list[str] = []
        self.producer = Producer({**output_config(settings), "on_delivery": self._delivered})

    def send(self, topic: str, key: bytes | None, value: bytes, partition: int = -1) -> None:
        """Queue one record (waiting while the local queue is full)."""
        while True:
            try:
                self.producer.produce(topic, value, key, partition=partition)
                return
            except BufferError:
                self.producer.poll(0.05)

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._failures.append(f"{msg.topic()}[{msg.partition()}]: {err}")

    def poll(self) -> None:
        """Serve delivery reports without waiting."""
        self.producer.poll(0)

    def flush(self) -> None:
        """Wait until every record sent so far is acknowledged; raise if any was lost."""
        left = self.producer.flush(FLUSH_TIMEOUT_S)
        if left or self._failures:
            failures, self._failures = self._failures, []
            raise VigieError(
                f"{len(failures)} outputs failed ({failures[:3]}) and {left} are still "
                "unsent: not checkpointing past them"
            )

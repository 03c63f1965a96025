"""The dead letters of a sink's undecodable records, produced to ``declarations.dlq``.

A sink never skips a record it cannot decode: the :class:`~vigie.sinks.pump.Pump` turns
it into a :class:`~vigie.contracts.schemas.DeadLetter` (original bytes, source topic,
reason) and adds it here; a flush returns only once the broker acknowledged every letter,
so the record's offset is committed after its letter is safe. A retried flush may send a
letter twice: the warehouse keeps one row per letter (``letter_id``).

The ``vigie-source`` header says where the record was read: ``topic[partition]@offset``.
"""

from __future__ import annotations

from typing import Any

from vigie.contracts.catalogue import DEAD_LETTERS
from vigie.contracts.schemas import DeadLetter
from vigie.errors import BackpressureError
from vigie.ingest.deadletters import SOURCE_HEADER, encode_letter
from vigie.ingest.producer import Headers
from vigie.kafka import ClientEvents, producer_config
from vigie.settings import Settings
from vigie.sinks.base import Batch, BatchingSink, Position


def source_of(position: Position) -> str:
    """The ``vigie-source`` header of a letter read at ``position``.

    >>> source_of(Position("alerts", 2, 41))
    'alerts[2]@41'
    """
    return f"{position.topic}[{position.partition}]@{position.offset}"


class DeadLetterSink(BatchingSink[DeadLetter]):
    """Produces dead letters to the dead-letter topic, keyed by the record's own key.

    Parameters
    ----------
    settings
        The brokers and the topic prefix.
    client_id
        The producer's ``client.id`` (the sink's name, so a broker log says whose it is).
    timeout_s
        How long a flush waits for the acknowledgements before pushing back.
    """

    def __init__(self, settings: Settings, *, client_id: str, timeout_s: float = 30.0) -> None:
        super().__init__("dead_letters")
        self.settings = settings
        self.client_id = f"{client_id}-dlq"
        self.topic = settings.topic(DEAD_LETTERS.name)
        self.timeout_s = timeout_s
        self._producer: Any = None

    @property
    def producer(self) -> Any:
        """The producer, made at the first letter: most sinks never need one."""
        if self._producer is None:
            from confluent_kafka import Producer

            events = ClientEvents(self.client_id)
            config = producer_config(self.settings, client_id=self.client_id, events=events)
            self._producer = Producer({**config, "linger.ms": 5})
        return self._producer

    def write(self, batch: Batch[DeadLetter]) -> int:
        failures: list[str] = []

        def report(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(f"{err.name()}: {err.str()}")

        sources = [source_of(p) for p in batch.positions] if batch.from_log else None
        for i, letter in enumerate(batch.records):
            headers: Headers | None = [(SOURCE_HEADER, sources[i].encode())] if sources else None
            key = letter.key.encode("utf-8") if letter.key is not None else None
            self.producer.produce(
                self.topic, encode_letter(letter), key, headers=headers, on_delivery=report
            )
        left = self.producer.flush(self.timeout_s)
        if left or failures:
            reason = failures[0] if failures else f"{left} not acknowledged in {self.timeout_s} s"
            raise BackpressureError(f"dead letters to {self.topic}: {reason}", 1.0)
        return len(batch)

    def close(self) -> None:
        """Wait for letters still in flight (there are none after a successful flush)."""
        if self._producer is not None:
            self._producer.flush(self.timeout_s)

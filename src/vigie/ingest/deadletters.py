"""Dead letters: routing rejected records to ``declarations.dlq``, and reading them back.

A rejected record is never dropped. :class:`DeadLetterRouter` wraps it in a
:class:`~vigie.contracts.schemas.DeadLetter` (original bytes, reason, errors, time, via
:func:`vigie.contracts.codec.dead_letter`) and produces it to the dead-letter topic, keyed by
the record's original key, with a ``vigie-source`` header naming where it came from
(``file:line`` for a replay). :func:`tail` reads the last letters back for
``vigie dlq tail``.

>>> from vigie.errors import DecodeError
>>> error = DecodeError("invalid_json", [{"loc": [], "msg": "not valid JSON", "type": "json"}])
>>> print(describe_errors(error.errors))
<record>: not valid JSON
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition
from pydantic import ValidationError

from vigie.contracts.catalogue import DEAD_LETTERS
from vigie.contracts.codec import dead_letter, original_bytes
from vigie.contracts.schemas import DeadLetter
from vigie.errors import ConfigurationError, DecodeError
from vigie.ingest.producer import Headers, KafkaProducer
from vigie.ingest.rejections import Rejections
from vigie.kafka import consumer_config, watermarks
from vigie.settings import Settings

log = logging.getLogger(__name__)

SOURCE_HEADER = "vigie-source"


class DeadLetterRouter:
    """Sends rejected records to the dead-letter topic, counts them by reason and keeps
    the first few described (:class:`~vigie.ingest.rejections.Rejections`)."""

    def __init__(self, producer: KafkaProducer) -> None:
        self.producer = producer
        self.topic = producer.settings.topic(DEAD_LETTERS.name)
        self.rejections = Rejections()

    @property
    def reasons(self) -> Counter[str]:
        return self.rejections.reasons

    @property
    def routed(self) -> int:
        return self.rejections.count

    def route(
        self,
        source_topic: str,
        key: bytes | None,
        value: bytes | None,
        error: DecodeError,
        *,
        source: str | None = None,
        received_at: datetime | None = None,
    ) -> DeadLetter:
        """Queue the dead letter of a rejected record; return it."""
        letter = dead_letter(source_topic, key, value, error, received_at)
        headers: Headers | None = [(SOURCE_HEADER, source.encode())] if source else None
        self.producer.produce(self.topic, encode_letter(letter), key, headers=headers)
        self.rejections.add(source or source_topic, error)
        return letter


@dataclass(frozen=True)
class TailEntry:
    """One message of the dead-letter topic, decoded."""

    partition: int
    offset: int
    source: str | None
    letter: DeadLetter

    @property
    def original(self) -> bytes:
        """The rejected record's bytes, exactly as they arrived."""
        return original_bytes(self.letter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "offset": self.offset,
            "source": self.source,
            "source_topic": self.letter.source_topic,
            "key": self.letter.key,
            "reason": self.letter.reason,
            "errors": list(self.letter.errors),
            "received_at": self.letter.received_at.isoformat(),
            "original": self.letter.value,
            "original_encoding": self.letter.value_encoding,
        }


def tail(settings: Settings, n: int = 20, *, timeout: float = 15.0) -> list[TailEntry]:
    """The last ``n`` dead letters (oldest first), read without joining a consumer group."""
    with LetterTail(settings, timeout=timeout) as letters:
        return letters.latest(n)


class LetterTail:
    """Reads the dead-letter topic without a consumer group: the latest letters, then
    (:meth:`new`) the letters written after them.

    Raises :class:`~vigie.errors.ConfigurationError` when the topic does not exist.
    """

    def __init__(self, settings: Settings, *, timeout: float = 15.0) -> None:
        self.topic = settings.topic(DEAD_LETTERS.name)
        self.timeout = timeout
        group = f"vigie-dlq-tail-{uuid4().hex[:8]}"
        self.consumer = Consumer(consumer_config(settings, group, client_id="vigie-dlq-tail"))

    def latest(self, n: int) -> list[TailEntry]:
        """The last ``n`` letters, oldest first; reading goes on after the newest."""
        ends = _start_positions(self.consumer, self.topic, n, self.timeout)
        entries = list(_read_until(self.consumer, ends, self.timeout))
        entries.sort(key=lambda e: (e.letter.received_at, e.partition, e.offset))
        return entries[-n:] if n > 0 else []

    def new(self, timeout: float = 0.5) -> list[TailEntry]:
        """The letters that arrived since the previous call (waiting up to ``timeout`` s)."""
        found = []
        for msg in self.consumer.consume(500, timeout=timeout):
            if msg.error() is not None:
                raise KafkaException(msg.error())
            partition, offset = msg.partition(), msg.offset()
            if partition is None or offset is None:
                continue
            entry = _entry(partition, offset, msg.headers(), msg.value())
            if entry is not None:
                found.append(entry)
        return found

    def close(self) -> None:
        self.consumer.close()

    def __enter__(self) -> LetterTail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _start_positions(consumer: Consumer, topic: str, n: int, timeout: float) -> dict[int, int]:
    """Assign the last ``n`` offsets of every partition; return each partition's end.

    A partition with no letter is assigned at its end, so that new letters are read.
    """
    metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise ConfigurationError(
            f"no dead-letter topic {topic!r} on the broker: "
            "create the topics first (vigie topics create)"
        )
    assignment, ends = [], {}
    for partition in metadata.partitions:
        low, high = watermarks(consumer, TopicPartition(topic, partition), timeout)
        if high > low:
            ends[partition] = high
        assignment.append(TopicPartition(topic, partition, max(low, high - n)))
    consumer.assign(assignment)
    return ends


def _read_until(consumer: Consumer, ends: Mapping[int, int], timeout: float) -> Iterable[TailEntry]:
    waiting = dict(ends)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for msg in consumer.consume(500, timeout=0.5):
            if msg.error() is not None:
                raise KafkaException(msg.error())
            partition, offset = msg.partition(), msg.offset()
            if partition is None or offset is None:
                continue
            if offset + 1 >= waiting.get(partition, 0):
                waiting.pop(partition, None)
            entry = _entry(partition, offset, msg.headers(), msg.value())
            if entry is not None:
                yield entry
    if waiting:
        log.warning("dead-letter tail: partitions %s not read to the end", sorted(waiting))


def _entry(
    partition: int,
    offset: int,
    headers: Headers | dict[str, str | bytes | None] | None,
    value: bytes | None,
) -> TailEntry | None:
    pairs = headers.items() if isinstance(headers, dict) else headers or []
    source = next((_text(v) for k, v in pairs if k == SOURCE_HEADER and v), None)
    try:
        letter = decode_letter(value or b"")
    except DecodeError as exc:
        log.warning(
            "dead-letter topic: offset %s:%s is not a DeadLetter: %s", partition, offset, exc
        )
        return None
    return TailEntry(partition, offset, source, letter)


def encode_letter(letter: DeadLetter) -> bytes:
    """A dead letter's wire bytes.

    Unlike :func:`vigie.contracts.codec.encode`, null fields are kept: ``key`` is a required
    field of :class:`DeadLetter`, even when it is None.
    """
    return orjson.dumps(letter.model_dump(mode="json"))


def decode_letter(raw: bytes) -> DeadLetter:
    """A dead letter from its wire bytes, or :class:`DecodeError`.

    Validated in pydantic's JSON mode, where a JSON array is a valid tuple (``errors``);
    strict Python-mode validation of the parsed object would refuse the list.

    >>> letter = dead_letter("declarations", None, b"\\xff", DecodeError("empty", []))
    >>> decode_letter(encode_letter(letter)) == letter
    True
    """
    try:
        return DeadLetter.model_validate_json(raw)
    except ValidationError as exc:
        errors = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False)
        ]
        raise DecodeError("schema", errors) from exc


def _text(value: str | bytes | None) -> str | None:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def describe_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """The errors of a dead letter, one per line, as a person reads them."""
    lines = []
    for error in errors:
        loc = ".".join(str(p) for p in error.get("loc", ())) or "<record>"
        lines.append(f"{loc}: {error.get('msg', '')}")
    return "\n".join(lines)

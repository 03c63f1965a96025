"""What the ``declarations`` topic says must have followed, message by message.

:func:`read_topic` reads a whole topic (every partition, from the beginning to the end
it had when asked). :func:`ledger` walks each partition of ``declarations`` in offset
order as the worker does: a message that does not decode must be a dead letter; an item
not seen before on its partition must be scored (revision 1) and learnt; the same item
with the same content is a repeat (no Score); with other content, an amendment (the next
revision, scored, not learnt). For each Score it also says how many declarations the
partition's engine had learnt before it, which is what the Score's
``model_versions["atypicality"]`` must say if nothing was learnt twice or skipped.

>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
>>> first = orjson.dumps(EXAMPLE_DECLARATION)
>>> amended = orjson.dumps({**EXAMPLE_DECLARATION, "customs_value_eur": 1.0})
>>> other = orjson.dumps({**EXAMPLE_DECLARATION, "declaration_id": "D-2"})
>>> messages = [Message(0, n, b"k", raw) for n, raw in enumerate(
...     [first, b"{oops", first, amended, other])]
>>> book = ledger(messages, max_bytes=65536)
>>> book.scores
{('FR26IM0000001', 1, 1): 0, ('FR26IM0000001', 1, 2): 1, ('D-2', 1, 1): 1}
>>> len(book.rejected), book.repeats
(1, 1)
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from vigie.contracts.codec import content_digest, dead_letter, decode
from vigie.contracts.schemas import Declaration
from vigie.errors import DecodeError, VigieError
from vigie.settings import Settings
from vigie.sinks.warehouse.rows import letter_id

Identity = tuple[str, int, int]
"""(declaration id, item number, revision)."""


class Message(NamedTuple):
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Ledger:
    """The records the declarations topic calls for."""

    scores: dict[Identity, int] = field(default_factory=dict)
    """Every Score due, with the count of declarations learnt before it on its partition."""
    rejected: dict[str, str] = field(default_factory=dict)
    """letter_id -> ``partition@offset`` of every message that must be dead-lettered."""
    repeats: int = 0
    amendments: int = 0


def ledger(messages: list[Message], max_bytes: int) -> Ledger:
    """Walk ``messages`` (of ``declarations``) per partition, in offset order."""
    book = Ledger()
    by_partition: dict[int, list[Message]] = defaultdict(list)
    for message in messages:
        by_partition[message.partition].append(message)
    for partition in sorted(by_partition):
        learnt = 0
        seen: dict[tuple[str, int], tuple[int, int]] = {}
        for message in sorted(by_partition[partition], key=lambda m: m.offset):
            try:
                decl = decode(Declaration, message.value, max_bytes=max_bytes)
            except DecodeError as exc:
                letter = dead_letter("declarations", message.key, message.value, exc)
                book.rejected[letter_id(letter)] = f"{partition}@{message.offset}"
                continue
            item, digest = (decl.declaration_id, decl.item_number), content_digest(decl)
            known = seen.get(item)
            if known is not None and known[0] == digest:
                book.repeats += 1
                continue
            revision = 1 if known is None else known[1] + 1
            book.scores[(*item, revision)] = learnt
            seen[item] = (digest, revision)
            if known is None:
                learnt += 1
            else:
                book.amendments += 1
    return book


def learnt_before(score: dict[str, Any]) -> int:
    """How many declarations the engine had learnt when it scored this one."""
    return int(score["model_versions"]["atypicality"].rsplit("-", 1)[1])


def identity(score: dict[str, Any]) -> Identity:
    """A Score's (or an Alert's Score's) identity."""
    return (str(score["declaration_id"]), int(score["item_number"]), int(score["revision"]))


def read_topic(settings: Settings, topic: str, timeout: float = 300.0) -> list[Message]:
    """Every message of a catalogue topic, up to the end each partition had when asked."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    name = settings.topic(topic)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"ledger-{uuid.uuid4().hex[:10]}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        partitions = sorted(consumer.list_topics(name, timeout=30).topics[name].partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(name, p), timeout=30)[1]
                for p in partitions}  # fmt: skip
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in partitions])
        messages: list[Message] = []
        done = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + timeout
        while len(done) < len(partitions):
            if time.monotonic() > deadline:
                raise VigieError(f"reading {name}: timed out after {timeout:.0f} s")
            for msg in consumer.consume(num_messages=10_000, timeout=1.0):
                if msg.error() is not None:
                    continue
                partition, offset = int(msg.partition() or 0), int(msg.offset() or 0)
                messages.append(Message(partition, offset, msg.key(), msg.value()))
                if offset + 1 >= ends[partition]:
                    done.add(partition)
        return messages
    finally:
        consumer.close()


def values(messages: list[Message]) -> list[dict[str, Any]]:
    """The decoded JSON objects of messages written by Vigie (Scores, Alerts, letters)."""
    return [orjson.loads(m.value) for m in messages if m.value]

"""Replaying files into Kafka (``vigie replay``), the shared bulk producer, and dead letters.

- :mod:`~vigie.replay.readers`: JSONL and CSV row sources, keeping each record's bytes;
- :mod:`~vigie.replay.decoding`: validation, mapping and re-encoding of one record;
- :mod:`~vigie.replay.producer`: :class:`KafkaProducer`, batched, compressed, idempotent;
- :mod:`~vigie.replay.deadletters`: routing rejects to ``declarations.dlq``, reading them;
- :mod:`~vigie.replay.pipeline`: :class:`Replay`, the whole job, and its report.
"""

from __future__ import annotations

from vigie.replay.deadletters import DeadLetterRouter, TailEntry, tail
from vigie.replay.decoding import Accepted, RecordDecoder
from vigie.replay.pipeline import Replay, ReplayReport, TokenBucket
from vigie.replay.producer import DeliveryReport, KafkaProducer, produce_records, producer_config
from vigie.replay.readers import SourceRecord, read_records

__all__ = [
    "Accepted",
    "DeadLetterRouter",
    "DeliveryReport",
    "KafkaProducer",
    "RecordDecoder",
    "Replay",
    "ReplayReport",
    "SourceRecord",
    "TailEntry",
    "TokenBucket",
    "produce_records",
    "producer_config",
    "read_records",
    "tail",
]

"""Replaying files into Kafka (``vigie replay``), the shared bulk producer, and dead letters.

- :mod:`~vigie.ingest.readers`: JSONL and CSV row sources, keeping each record's bytes;
- :mod:`~vigie.ingest.decoding`: validation, mapping and re-encoding of one record;
- :mod:`~vigie.ingest.producer`: :class:`KafkaProducer`, batched, compressed, idempotent;
- :mod:`~vigie.ingest.deadletters`: routing rejects to ``declarations.dlq``, reading them;
- :mod:`~vigie.ingest.pipeline`: :class:`Replay`, the whole job, and its report.
"""

from __future__ import annotations

from vigie.ingest.deadletters import DeadLetterRouter, TailEntry, tail
from vigie.ingest.decoding import Accepted, RecordDecoder
from vigie.ingest.pipeline import Replay, ReplayReport, TokenBucket
from vigie.ingest.producer import DeliveryReport, KafkaProducer, produce_records, producer_config
from vigie.ingest.readers import SourceRecord, read_records

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

"""The warehouse writer SIGKILLed mid-stream: every record still in one raw row.

Records of every table (generated declarations scored by the real detectors, their
alerts, control results and dead letters) are produced while ``vigie warehouse write``
runs, hosted so that its tables never merge (:mod:`vigie_dev.testing.chdb_host`): a
duplicate inserted stays a duplicate row. The writer is SIGKILLed three times mid-stream
and restarted; a tenth of the Scores and Alerts are produced a second time at new
offsets, as a worker restarted from its last snapshot sends them again. At the end each
table holds each record once, counted in raw rows (no ``FINAL``).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from vigie.contracts import encode
from vigie.contracts.catalogue import ALERTS, CONTROL_RESULTS, DEAD_LETTERS, DECLARATIONS, SCORES
from vigie.settings import Settings
from vigie_dev.testing import free_port, wait_for
from vigie_dev.testing.chdb_host import HostedWarehouse, hosted_env
from vigie_dev.testing.warehouse import scored_traffic

pytestmark = [pytest.mark.faults, pytest.mark.integration]

KILLS = 3
RATE = 800.0
"""Messages per second: the stream lasts about twenty seconds."""
DUPLICATES = [
    ("declarations", "SELECT declaration_id, item_number, revision, count() AS n "
     "FROM declarations GROUP BY declaration_id, item_number, revision HAVING n > 1"),
    ("scores", "SELECT declaration_id, item_number, revision, count() AS n "
     "FROM scores GROUP BY declaration_id, item_number, revision HAVING n > 1"),
    ("alerts", "SELECT alert_id, count() AS n FROM alerts GROUP BY alert_id HAVING n > 1"),
    ("control_results", "SELECT declaration_id, digest, count() AS n FROM control_results "
     "GROUP BY declaration_id, digest HAVING n > 1"),
    ("dead_letters", "SELECT letter_id, count() AS n FROM dead_letters "
     "GROUP BY letter_id HAVING n > 1"),
]  # fmt: skip
TOPICS = {
    "declarations": (DECLARATIONS.name, "importer"),
    "scores": (SCORES.name, "declaration_id"),
    "alerts": (ALERTS.name, "declaration_id"),
    "control_results": (CONTROL_RESULTS.name, "declaration_id"),
    "dead_letters": (DEAD_LETTERS.name, None),
}


def messages(traffic: dict[str, list[Any]], seed: int) -> list[tuple[str, bytes | None, bytes]]:
    """Every record as (topic, key, value), interleaved; a tenth of the Scores and Alerts
    again near the end, at new offsets."""
    out = []
    for table, records in traffic.items():
        topic, field = TOPICS[table]
        for record in records:
            owner = record.score if table == "alerts" else record
            key = None if field is None else str(getattr(owner, field)).encode()
            out.append((topic, key, encode(record)))
    rng = random.Random(seed)
    rng.shuffle(out)
    replayed = [m for m in out if m[0] in (SCORES.name, ALERTS.name) and rng.random() < 0.1]
    return out + replayed


@pytest.fixture
def writer(isolated_settings: Settings, tmp_path: Path) -> Iterator[HostedWarehouse]:
    settings = isolated_settings.model_copy(update={"clickhouse_url": None})
    args = ["warehouse", "write", "--group", f"{settings.topic_prefix}warehouse",
            "--batch-size", "300", "--max-age", "0.5", "--http-port", str(free_port())]  # fmt: skip
    hosted = HostedWarehouse(hosted_env(settings), tmp_path / "warehouse.log", args)
    yield hosted
    hosted.stop()


def test_a_killed_writer_stores_every_record_once_in_raw_rows(
    isolated_settings: Settings, writer: HostedWarehouse
) -> None:
    traffic = scored_traffic(3000, seed=5, start=datetime(2026, 2, 1, tzinfo=UTC))
    expected = {table: len(records) for table, records in traffic.items()}
    stream = messages(traffic, seed=5)
    sender = Sender(isolated_settings, stream)
    writer.start()
    wait_for(writer.answers, 120, "the hosted writer")
    sender.start()
    kills = 0
    for kills in range(1, KILLS + 1):
        target = len(stream) * kills // (KILLS + 1)
        wait_for(lambda t=target: sender.sent >= t, 120, f"{target} messages sent")  # type: ignore[misc]
        writer.kill()  # mid-stream: batches inserted and not committed, others half-read
        writer.start()
        wait_for(writer.answers, 120, "the restarted writer")
    sender.join(120)
    assert sender.error is None, sender.error

    def stored() -> dict[str, int]:
        return {t: int(writer.scalar(f"SELECT count() FROM {t}")) for t in expected}

    def complete() -> bool:
        return all(n >= expected[t] for t, n in stored().items())

    wait_for(complete, 180, f"every record stored: {expected}")
    time.sleep(3)  # a late duplicate would show now
    raw = stored()
    duplicates = {table: writer.query(sql) for table, sql in DUPLICATES}
    assert kills == KILLS
    assert raw == expected, raw  # raw rows, no FINAL: nothing twice
    assert duplicates == {table: [] for table, _ in DUPLICATES}


class Sender(threading.Thread):
    """Produces the messages at ``RATE`` per second, counting them."""

    def __init__(self, settings: Settings, stream: list[tuple[str, bytes | None, bytes]]) -> None:
        super().__init__(name="sender", daemon=True)
        self.settings, self.stream = settings, stream
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        from confluent_kafka import Producer

        try:
            producer = Producer(
                {"bootstrap.servers": self.settings.bootstrap_servers, "linger.ms": 5}
            )
            began = time.monotonic()
            for topic, key, value in self.stream:
                producer.produce(self.settings.topic(topic), value, key)
                self.sent += 1
                ahead = self.sent / RATE - (time.monotonic() - began)
                producer.poll(max(0.0, ahead))
            assert producer.flush(60) == 0, "messages not delivered"
        except BaseException as exc:  # reported by the test
            self.error = exc

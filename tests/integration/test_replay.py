"""``vigie replay`` against the real broker: counts, keys, partitions, controls, failures."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from vigie.contracts.codec import decode, encode
from vigie.contracts.schemas import EXAMPLE_DECLARATION, ControlResult, Declaration
from vigie.errors import ConfigurationError
from vigie.ingest.pipeline import Replay
from vigie.ingest.producer import KafkaProducer, produce_records
from vigie.settings import Settings

pytestmark = pytest.mark.integration

KR_TRAIN = Path(__file__).resolve().parents[2].parent / "shared/data/customs-kr/train.csv"
KR_TRAIN_ROWS = 37_385
START = datetime(2026, 3, 2, tzinfo=UTC)


def declarations(n: int, importers: int = 7) -> list[bytes]:
    return [
        orjson.dumps(
            {
                **EXAMPLE_DECLARATION,
                "declaration_id": f"D-{i}",
                "importer": f"IMP-{i % importers}",
                "lodged_at": (START + timedelta(minutes=i)).isoformat(),
            }
        )
        for i in range(n)
    ]


def read_topic(settings: Settings, topic: str, timeout: float = 60.0) -> list[Message]:
    """Every message of a (fresh) topic, from the beginning to its current end."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        total = topic_size(consumer, topic, partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(messages) < total and time.monotonic() < deadline:
            messages.extend(m for m in consumer.consume(1000, timeout=1) if m.error() is None)
        assert len(messages) == total, f"read {len(messages)} of {total} messages of {topic}"
        return messages
    finally:
        consumer.close()


def topic_size(consumer: Consumer, topic: str, partitions: Any) -> int:
    offsets = (
        consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions
    )
    return sum(high - low for low, high in offsets)


def count_messages(settings: Settings, name: str) -> int:
    topic = settings.topic(name)
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "count"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return topic_size(consumer, topic, partitions)
    finally:
        consumer.close()


def test_declarations_are_produced_keyed_and_partitioned_by_importer(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\n".join(declarations(300)) + b"\n")
    report = Replay(KafkaProducer(isolated_settings)).run([path])
    assert (report.produced, report.rejected, report.delivery_errors) == (300, 0, 0)
    assert report.topic == isolated_settings.topic("declarations")
    messages = read_topic(isolated_settings, report.topic)
    partitions: dict[str, set[int | None]] = defaultdict(set)
    for message in messages:
        declaration = decode(Declaration, message.value())
        assert message.key() == declaration.importer.encode()
        partitions[declaration.importer].add(message.partition())
    assert sorted(decode(Declaration, m.value()).declaration_id for m in messages) == sorted(
        f"D-{i}" for i in range(300)
    )
    assert all(len(p) == 1 for p in partitions.values())
    assert len({p for ps in partitions.values() for p in ps}) > 1


@pytest.mark.slow
def test_customs_kr_train_through_the_command(isolated_settings: Settings) -> None:
    assert KR_TRAIN.is_file(), f"customs-kr data missing: {KR_TRAIN}"
    env = {
        **os.environ,
        "VIGIE_KAFKA_BOOTSTRAP": isolated_settings.bootstrap_servers,
        "VIGIE_TOPIC_PREFIX": isolated_settings.topic_prefix,
    }
    vigie = str(Path(sys.executable).with_name("vigie"))
    command = [vigie, "replay", str(KR_TRAIN), "--mapping", "customs-kr", "--json"]
    done = subprocess.run(command, env=env, capture_output=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    result = orjson.loads(done.stdout)
    assert result["produced"] == KR_TRAIN_ROWS
    assert result["rejected"] == 0
    assert result["controls_produced"] == KR_TRAIN_ROWS
    assert result["delivery_errors"] == 0
    assert result["rejected_reasons"] == {}
    assert result["messages_per_second"] > 0
    assert count_messages(isolated_settings, "declarations") == KR_TRAIN_ROWS
    assert count_messages(isolated_settings, "control-results") == KR_TRAIN_ROWS
    assert count_messages(isolated_settings, "declarations.dlq") == 0


def test_control_results_file_goes_to_its_topic_keyed_by_declaration(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    controls = [
        ControlResult(
            declaration_id=f"D-{i}",
            controlled_at=START + timedelta(days=7),
            outcome="infraction" if i % 3 else "compliant",
            recovered_eur=10.0 * i,
            selection="random_audit",
            selection_probability=0.01,
        )
        for i in range(20)
    ]
    path = tmp_path / "controls.jsonl"
    path.write_bytes(b"\n".join([*map(encode, controls), declarations(1)[0]]) + b"\n")
    report = Replay(KafkaProducer(isolated_settings), topic="control-results").run([path])
    assert (report.produced, report.rejected, report.controls_produced) == (20, 1, 0)
    assert report.rejected_reasons == {"schema": 1}
    messages = read_topic(isolated_settings, isolated_settings.topic("control-results"))
    received = {m.key(): decode(ControlResult, m.value()) for m in messages}
    assert received == {c.declaration_id.encode(): c for c in controls}


def test_produce_records_keys_by_the_topic_key_field(isolated_settings: Settings) -> None:
    records = [Declaration.model_validate_json(raw) for raw in declarations(10, importers=2)]
    producer = KafkaProducer(isolated_settings, compression="zstd")
    assert produce_records(producer, "declarations", records) == 10
    assert producer.flush().failures == 0
    messages = read_topic(isolated_settings, isolated_settings.topic("declarations"))
    assert sorted(m.key() or b"" for m in messages) == [b"IMP-0"] * 5 + [b"IMP-1"] * 5


def test_throttled_replay_still_delivers_everything(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\n".join(declarations(200)))
    report = Replay(KafkaProducer(isolated_settings), rate=1000).run([path])
    assert (report.produced, report.delivery_errors) == (200, 0)
    assert report.seconds >= 0.1  # 200 records at 1000/s with a burst of 100: >= 100 ms


def test_delivery_failures_are_counted_not_dropped(
    make_topic: Any, stack_settings: Settings
) -> None:
    tiny = make_topic("tiny", config={"max.message.bytes": "1024"})
    producer = KafkaProducer(stack_settings)
    producer.produce(tiny, os.urandom(8192), b"k")
    producer.flush()  # alone in its batch: the broker refuses a batch as a whole
    producer.produce(tiny, b"small", b"k")
    report = producer.flush()
    assert report.failed[tiny] == 1
    assert report.delivered(tiny) == 1
    assert "MSG_SIZE_TOO_LARGE" in report.errors[0]


def test_missing_topics_are_named_before_anything_is_produced(
    kafka_bootstrap: str, stack_settings: Settings
) -> None:
    fields = stack_settings.model_dump() | {"topic_prefix": f"absent-{uuid.uuid4().hex[:8]}."}
    settings = Settings(**fields)
    with pytest.raises(ConfigurationError, match="vigie topics create"):
        Replay(KafkaProducer(settings)).check_topics()


KR_ROW = {
    "Declaration ID": "97061800", "Date": "2020-01-01", "Office ID": "30",
    "Process Type": "B", "Import Type": "11", "Import Use": "21", "Payment Type": "11",
    "Mode of Transport": "10", "Declarant ID": "ZZR1LT6", "Importer ID": "QLRUBN9",
    "Seller ID": "0VKY2BR", "Courier ID": "", "HS6 Code": "440890",
    "Country of Departure": "BE", "Country of Origin": "BE", "Tax Rate": "0.0",
    "Tax Type": "FEU1", "Country of Origin Indicator": "G", "Net Mass": "108.0",
    "Item Price": "372254.4", "Fraud": "0", "Critical Fraud": "0",
}  # fmt: skip
"""A row of the customs-kr CSV (the header of ../shared/data/customs-kr/train.csv)."""


def _replay_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "VIGIE_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "VIGIE_TOPIC_PREFIX": settings.topic_prefix,
    }
    vigie = str(Path(sys.executable).with_name("vigie"))
    return subprocess.run(
        [vigie, "replay", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("mapping", "hint"),
    [
        ((), "Missing mapping? Without --mapping, a CSV header must name the declaration's"),
        (("-m", "{mapping}"), "Wrong mapping? {mapping} does not fit these files"),
    ],
)
def test_a_replay_whose_rows_are_mostly_rejected_fails_naming_them(
    isolated_settings: Settings, tmp_path: Path, mapping: tuple[str, ...], hint: str
) -> None:
    rows = tmp_path / "kr.csv"
    rows.write_text("\n".join([",".join(KR_ROW), *(",".join(KR_ROW.values()),) * 200]) + "\n")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[declaration]\ndeclaration_id = {column = "ID"}\n')
    args = [a.format(mapping=wrong) for a in mapping]
    done = _replay_cli(isolated_settings, str(rows), *args, "--json")
    assert done.returncode == 1, done.stderr
    report = orjson.loads(done.stdout)
    assert (report["produced"], report["rejected"]) == (0, 200)
    lines = done.stderr.splitlines()
    assert lines[0] == "error: 200 of 200 records rejected, none accepted. The first:"
    assert [line.split(": ")[0] for line in lines[1:4]] == [f"  {rows}:{n}" for n in (2, 3, 4)]
    assert hint.format(mapping=wrong) in done.stderr
    assert lines[-1] == "Every rejected record is in the dead-letter topic: vigie dlq tail"
    assert count_messages(isolated_settings, "declarations.dlq") == 200


def test_a_replay_with_a_few_rejects_succeeds(isolated_settings: Settings, tmp_path: Path) -> None:
    lines = declarations(5)
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\n".join([*lines, b"{not json"]) + b"\n")
    done = _replay_cli(isolated_settings, str(path), "--json")
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    assert (report["produced"], report["rejected"]) == (5, 1)
    (first,) = report["first_rejected"]
    assert first.startswith(f"{path}:6: invalid_json: <record>: not valid JSON: ")

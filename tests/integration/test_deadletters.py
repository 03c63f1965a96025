"""Every kind of bad record lands in the real dead-letter topic, with its reason and bytes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from vigie.contracts.codec import decode, original_bytes
from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
from vigie.ingest.deadletters import SOURCE_HEADER, decode_letter, tail
from vigie.ingest.mappings import load_mapping
from vigie.ingest.pipeline import Replay
from vigie.ingest.producer import KafkaProducer
from vigie.settings import Settings

pytestmark = pytest.mark.integration

KR_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "customs-kr"


def line(**changes: Any) -> bytes:
    record = {**EXAMPLE_DECLARATION, **changes}
    return orjson.dumps({k: v for k, v in record.items() if v is not None})


# (kind, original line, reason, error location, fragment of the error message)
BAD_LINES: list[tuple[str, bytes, str, list[str], str]] = [
    ("invalid JSON", b'{"declaration_id": "D-9", "office": ', "invalid_json", [], "not valid JSON"),
    ("array", b'[{"declaration_id": "D-9"}]', "not_an_object", [], "got list"),
    ("number", b"42", "not_an_object", [], "got int"),
    ("missing field", line(importer=None), "schema", ["importer"], "Field required"),
    ("wrong type", line(customs_value_eur="25000"), "schema", ["customs_value_eur"], "number"),
    ("negative mass", line(net_mass_kg=-1.0), "schema", ["net_mass_kg"], "greater than or equal"),
    ("unknown country", line(origin="QQ"), "schema", ["origin"], "unknown country code 'QQ'"),
    ("bad commodity", line(commodity_code="62-03"), "schema", ["commodity_code"], "malformed"),
    ("oversized", line(attributes={"pad": "x" * 70_000}), "oversized", [], "the limit is 65536"),
    ("naive timestamp", line(lodged_at="2026-03-02T09:15:00"), "schema", ["lodged_at"], "zone"),
    ("unparsable date", line(lodged_at="02/03/2026"), "schema", ["lodged_at"], "datetime"),
    ("invalid UTF-8", b'{"declaration_id": "D-\xff\xfe"}', "invalid_utf8", [], "UTF-8"),
    ("extra field", line(colour="red"), "schema", ["colour"], "Extra inputs"),
    ("empty line", b"", "empty", [], "no value"),
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
        total = sum(
            high - low
            for low, high in (
                consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                for p in partitions
            )
        )
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(messages) < total and time.monotonic() < deadline:
            messages.extend(m for m in consumer.consume(1000, timeout=1) if m.error() is None)
        assert len(messages) == total, f"read {len(messages)} of {total} messages of {topic}"
        return messages
    finally:
        consumer.close()


def source_of(message: Message) -> str:
    headers = dict(message.headers() or [])
    value = headers[SOURCE_HEADER]
    assert isinstance(value, bytes)
    return value.decode()


@pytest.fixture
def replayed(isolated_settings: Settings, tmp_path: Path) -> dict[str, Any]:
    """A JSONL file mixing valid and bad lines, and a customs-kr CSV with broken rows."""
    valid = [line(declaration_id=f"OK-{i}", importer=f"IMP-{i % 3}") for i in range(12)]
    lines: list[bytes] = []
    for i in range(max(len(valid), len(BAD_LINES))):
        lines += valid[i : i + 1] + [raw for _, raw, *_ in BAD_LINES[i : i + 1]]
    jsonl = tmp_path / "mixed.jsonl"
    jsonl.write_bytes(b"\n".join(lines) + b"\n")

    assert (KR_DATA / "train.csv").is_file(), f"customs-kr data missing under {KR_DATA}"
    kr_lines = (KR_DATA / "train.csv").read_bytes().splitlines()[:3]
    short_row = kr_lines[2].rsplit(b",", 2)[0]  # the two label columns are gone
    csv = tmp_path / "kr.csv"
    csv.write_bytes(b"\n".join([kr_lines[0], kr_lines[1], short_row]) + b"\n")

    jsonl_report = Replay(KafkaProducer(isolated_settings)).run([jsonl])
    mapping = load_mapping("customs-kr")
    csv_report = Replay(KafkaProducer(isolated_settings), mapping=mapping).run([csv])
    return {"lines": lines, "jsonl": jsonl, "csv": csv, "short_row": short_row,
            "jsonl_report": jsonl_report, "csv_report": csv_report}  # fmt: skip


def test_each_bad_line_is_dead_lettered_with_reason_and_exact_bytes(
    isolated_settings: Settings, replayed: dict[str, Any]
) -> None:
    report = replayed["jsonl_report"]
    assert (report.produced, report.rejected, report.delivery_errors) == (12, len(BAD_LINES), 0)
    dlq = read_topic(isolated_settings, isolated_settings.topic("declarations.dlq"))
    letters = {source_of(m): (m, decode_letter(m.value() or b"")) for m in dlq}
    for number, raw in enumerate(replayed["lines"], start=1):
        kind = next((bad for bad in BAD_LINES if bad[1] == raw), None)
        source = f"{replayed['jsonl']}:{number}"
        if kind is None:
            assert source not in letters
            continue
        name, _, reason, loc, fragment = kind
        message, letter = letters[source]
        assert letter.reason == reason, name
        assert original_bytes(letter) == raw, name
        assert any(list(e["loc"]) == loc and fragment in e["msg"] for e in letter.errors), name
        assert letter.source_topic == isolated_settings.topic("declarations")
        expected_key = b"FR12345678901" if b'"importer":"FR12345678901"' in raw else None
        assert message.key() == expected_key, name


def test_broken_csv_row_is_dead_lettered_and_valid_rows_go_through(
    isolated_settings: Settings, replayed: dict[str, Any]
) -> None:
    report = replayed["csv_report"]
    assert (report.produced, report.rejected, report.controls_produced) == (1, 1, 1)
    assert report.rejected_reasons == {"csv_columns": 1}
    dlq = read_topic(isolated_settings, isolated_settings.topic("declarations.dlq"))
    (letter,) = [
        decode_letter(m.value() or b"") for m in dlq if source_of(m) == f"{replayed['csv']}:3"
    ]
    assert original_bytes(letter) == replayed["short_row"]
    assert "missing: 'Fraud', 'Critical Fraud'" in letter.errors[0]["msg"]


def test_valid_lines_reach_the_declarations_topic_keyed_by_importer(
    isolated_settings: Settings, replayed: dict[str, Any]
) -> None:
    messages = read_topic(isolated_settings, isolated_settings.topic("declarations"))
    from_jsonl = {}
    for message in messages:
        declaration = decode(Declaration, message.value())
        assert message.key() == declaration.importer.encode()
        from_jsonl[declaration.declaration_id] = declaration
    assert len(messages) == 13
    assert {f"OK-{i}" for i in range(12)} < set(from_jsonl)
    assert from_jsonl["OK-4"].importer == "IMP-1"


def test_dlq_tail_lists_the_latest_letters(
    isolated_settings: Settings, replayed: dict[str, Any]
) -> None:
    last = tail(isolated_settings, 3)
    assert [e.letter.reason for e in last][-1] == "csv_columns"
    assert last[-1].original == replayed["short_row"]
    env = {
        **os.environ,
        "VIGIE_KAFKA_BOOTSTRAP": isolated_settings.bootstrap_servers,
        "VIGIE_TOPIC_PREFIX": isolated_settings.topic_prefix,
    }
    vigie = Path(sys.executable).with_name("vigie")
    done = subprocess.run(
        [str(vigie), "dlq", "tail", "--limit", "40", "--json"],
        env=env, capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    result = orjson.loads(done.stdout)
    assert result["count"] == len(BAD_LINES) + 1
    reasons = [letter["reason"] for letter in result["dead_letters"]]
    assert sorted(set(reasons)) == sorted({b[2] for b in BAD_LINES} | {"csv_columns"})
    empty = next(d for d in result["dead_letters"] if d["reason"] == "empty")
    assert (empty["original"], empty["source"].rsplit(":", 1)[0]) == ("", str(replayed["jsonl"]))


def test_dlq_tail_follows_new_letters_until_idle(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "VIGIE_KAFKA_BOOTSTRAP": isolated_settings.bootstrap_servers,
        "VIGIE_TOPIC_PREFIX": isolated_settings.topic_prefix,
    }
    vigie = Path(sys.executable).with_name("vigie")
    argv = [str(vigie), "dlq", "tail", "--follow", "--idle-seconds", "15", "--json"]
    follower = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"{broken\n")
    # written before or after the tail read the end: either way it is shown once
    Replay(KafkaProducer(isolated_settings)).run([bad])
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, err.decode()
    (letter,) = [orjson.loads(line) for line in out.splitlines()]
    assert (letter["reason"], letter["original"]) == ("invalid_json", "{broken")
    assert letter["source"] == f"{bad}:1"

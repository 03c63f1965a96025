"""Topic creation on the real broker, and every record schema through it and back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from pydantic import BaseModel

from vigie.contracts import (
    ALERTS,
    CATALOGUE,
    CONTROL_RESULTS,
    DEAD_LETTERS,
    DECLARATIONS,
    MODEL_STATE,
    SCORES,
    Alert,
    AtypicalityEvidence,
    Contribution,
    ControlResult,
    DeadLetter,
    Declaration,
    Reason,
    Score,
    Topic,
    ValuationEvidence,
    dead_letter,
    decode,
    encode,
    original_bytes,
)
from vigie.contracts.codec import EXAMPLE_DECLARATION
from vigie.errors import DecodeError
from vigie.ingest.topics import (
    create_topic,
    current_partitions,
    delete_topics,
    ensure_topics,
    topic_config,
    wanted_partitions,
)
from vigie.settings import Settings

pytestmark = pytest.mark.integration


def test_catalogue_topics_have_their_partitions_and_config(
    kafka_bootstrap: str, kafka_admin: AdminClient, stack_settings: Settings
) -> None:
    for topic in CATALOGUE:
        name = stack_settings.topic(topic.name)
        assert current_partitions(kafka_admin, name) == wanted_partitions(topic, stack_settings)
        effective = topic_config(kafka_admin, name)
        assert {k: effective[k] for k in topic.config} == topic.config, name
    model_state = topic_config(kafka_admin, stack_settings.topic(MODEL_STATE.name))
    assert model_state["cleanup.policy"] == "compact"


def test_ensure_topics_twice_reports_existing_topics(isolated_settings: Settings) -> None:
    again = ensure_topics(isolated_settings)["topics"]
    assert set(again) == {isolated_settings.topic(t.name) for t in CATALOGUE}
    assert {entry["status"] for entry in again.values()} == {"exists"}


def test_an_existing_topic_with_too_few_partitions_is_grown(
    kafka_admin: AdminClient, make_topic: Callable[..., str]
) -> None:
    name = make_topic("grow", partitions=1)
    assert create_topic(kafka_admin, name, 3) == "extended"
    assert current_partitions(kafka_admin, name) == 3
    assert create_topic(kafka_admin, name, 2) == "exists"
    assert current_partitions(kafka_admin, name) == 3


def test_delete_topics_removes_exactly_the_prefixed_topics(
    kafka_admin: AdminClient, make_topic: Callable[..., str]
) -> None:
    keep = make_topic("keep")
    prefix = f"gone-{uuid.uuid4().hex[:8]}."
    for suffix in ("a", "b"):
        assert create_topic(kafka_admin, prefix + suffix, 1) == "created"
    assert delete_topics(kafka_admin, prefix=prefix) == [prefix + "a", prefix + "b"]
    for _ in range(300):
        if current_partitions(kafka_admin, prefix + "a") is None:
            break
        time.sleep(0.1)
    assert current_partitions(kafka_admin, prefix + "a") is None
    assert current_partitions(kafka_admin, keep) == 1
    with pytest.raises(ValueError, match="empty prefix"):
        delete_topics(kafka_admin, prefix="")


def test_existing_topic_config_is_aligned_with_the_catalogue(
    kafka_admin: AdminClient, make_topic: Callable[..., str]
) -> None:
    name = make_topic("drift", partitions=1, config={"retention.ms": "1000"})
    assert create_topic(kafka_admin, name, 1, {"retention.ms": "86400000"}) == "exists"
    assert topic_config(kafka_admin, name)["retention.ms"] == "86400000"


BAD = b'{"declaration_id": "X", "customs_value_eur": "lots"}'


def _rejection(raw: bytes) -> DecodeError:
    try:
        decode(Declaration, raw)
    except DecodeError as error:
        return error
    raise AssertionError(f"{raw!r} should not decode as a Declaration")


def _examples() -> list[tuple[Topic, BaseModel]]:
    declaration = Declaration.model_validate(EXAMPLE_DECLARATION)
    lodged = declaration.lodged_at
    control = ControlResult(
        declaration_id=declaration.declaration_id,
        controlled_at=lodged + timedelta(days=4),
        outcome="infraction",
        recovered_eur=3120.5,
        selection="random_audit",
        selection_probability=0.02,
    )
    score = Score(
        declaration_id=declaration.declaration_id,
        importer=declaration.importer,
        office=declaration.office,
        commodity_code=declaration.commodity_code,
        lodged_at=lodged,
        scored_at=datetime(2026, 3, 2, 8, 15, 1, tzinfo=UTC),
        valuation=ValuationEvidence(
            score=0.91,
            reference_unit_value=31.2,
            unit="kg",
            support_level="cn8:CN",
            support_count=420,
            ratio=0.40,
            robust_z=-4.2,
            below_lowest_acceptable=True,
            duty_at_risk_eur=4500.0,
        ),
        atypicality=AtypicalityEvidence(
            score=0.35, contributions=(Contribution(name="new_route", value=1.0, weight=0.6),)
        ),
        supervised_probability=0.12,
        risk=0.88,
        expected_recoverable_eur=3960.0,
        selected=True,
        selection="engine",
        selection_probability=1.0,
        threshold=0.8,
        reasons=(Reason(code="VAL_BELOW_50PCT", text="declared unit value is 40 % of reference"),),
        model_versions={"valuation": "v1", "atypicality": "v1"},
        latency_ms=3.5,
    )
    alert = Alert(
        alert_id=Alert.id_for(score.declaration_id),
        raised_at=score.scored_at,
        score=score,
    )
    letter = dead_letter(DECLARATIONS.name, b"FR123", BAD, _rejection(BAD), received_at=lodged)
    return [
        (DECLARATIONS, declaration),
        (CONTROL_RESULTS, control),
        (SCORES, score),
        (ALERTS, alert),
        (DEAD_LETTERS, letter),
    ]


def _key(topic: Topic, record: BaseModel) -> bytes:
    """The record's key: its ``key_field`` (an alert's is on its score); dead letters keep
    the original key."""
    if topic.key_field is None:
        return b"FR123"
    holder = record.score if isinstance(record, Alert) else record
    return str(getattr(holder, topic.key_field)).encode()


def _consume(bootstrap: str, topics: list[str], expected: int) -> list[tuple[str, bytes, bytes]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-roundtrip-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    received: list[tuple[str, bytes, bytes]] = []
    try:
        for _ in range(120):
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            topic, key, value = msg.topic(), msg.key(), msg.value()
            assert topic is not None and key is not None and value is not None
            received.append((topic, key, value))
            if len(received) == expected:
                break
    finally:
        consumer.close()
    return received


def test_every_schema_round_trips_through_the_broker(
    isolated_settings: Settings, kafka_bootstrap: str
) -> None:
    examples = _examples()
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    sent: dict[str, tuple[bytes, BaseModel]] = {}
    for topic, record in examples:
        key = _key(topic, record)
        name = isolated_settings.topic(topic.name)
        producer.produce(name, key=key, value=encode(record))
        sent[name] = (key, record)
    assert producer.flush(30) == 0

    received = _consume(kafka_bootstrap, list(sent), len(examples))

    assert sorted(t for t, _, _ in received) == sorted(sent)
    for name, key, value in received:
        want_key, record = sent[name]
        assert key == want_key
        assert decode(type(record), value) == record
    letter = next(r for t, r in examples if t is DEAD_LETTERS)
    assert isinstance(letter, DeadLetter)
    assert original_bytes(letter) == BAD

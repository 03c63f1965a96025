"""The Redis alert feed on the real Kafka and Redis: one entry per alert id, reclaims."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from confluent_kafka import Producer

from vigie.contracts.codec import encode
from vigie.contracts.schemas import Alert
from vigie.errors import BackpressureError
from vigie.settings import Settings
from vigie.sinks.alert_feed import AlertFeed
from vigie.sinks.examples import example_alert
from vigie.sinks.redis_alerts import AlertKeys, RedisAlertSink, publish, redis_client

pytestmark = pytest.mark.integration

VIGIE = str(Path(sys.executable).parent / "vigie")


@pytest.fixture
def settings(isolated_settings: Settings) -> Settings:
    """Unique topic prefix (from the shared fixture) and a unique Redis key prefix."""
    return isolated_settings.model_copy(update={"redis_prefix": f"t-{uuid.uuid4().hex[:10]}"})


@pytest.fixture
def client(settings: Settings) -> Iterator[redis.Redis]:
    conn = redis_client(settings)
    yield conn
    keys = list(conn.scan_iter(f"{settings.redis_prefix}:*"))
    if keys:
        conn.delete(*keys)
    conn.close()


def produce(settings: Settings, alerts: list[Alert], garbage: bytes = b"") -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for alert in alerts:
        producer.produce(
            settings.topic("alerts"), key=alert.score.declaration_id, value=encode(alert)
        )
    if garbage:
        producer.produce(settings.topic("alerts"), key=b"bad", value=garbage)
    assert producer.flush(30) == 0


def test_replays_and_restarts_leave_one_entry_per_alert(
    settings: Settings, client: redis.Redis
) -> None:
    alerts = [example_alert(f"D-{i}", risk=0.8 + i / 100, importer=f"IMP{i % 2}") for i in range(6)]
    # The producer retried: two alerts arrive twice in the same run.
    # ... and a record that is not an alert is dead-lettered, not fatal.
    produce(settings, [*alerts, alerts[0], alerts[3]], garbage=b'{"alert_id": 1}')

    first = publish(settings, group_id=f"g1-{uuid.uuid4().hex}", max_records=9, idle_exit_s=20)
    # A new run re-consumes everything from offset 0, as after a lost commit.
    second = publish(settings, group_id=f"g2-{uuid.uuid4().hex}", max_records=9, idle_exit_s=20)

    keys = AlertKeys(settings.redis_prefix)
    entries: Any = client.xrange(keys.stream)
    assert (first.consumed, first.written, first.dead_lettered) == (9, 6, 1)
    assert (second.consumed, second.written, second.dead_lettered) == (9, 0, 1)
    assert sorted(fields["alert_id"] for _id, fields in entries) == sorted(
        a.alert_id for a in alerts
    )
    details = client.hgetall(keys.alert(alerts[4].alert_id))
    assert details["importer"] == "IMP0" and float(details["risk"]) == pytest.approx(0.84)
    assert 0 < client.ttl(keys.alert(alerts[4].alert_id)) <= 7 * 24 * 3600


def test_latest_risk_per_importer_follows_lodging_time(
    settings: Settings, client: redis.Redis
) -> None:
    keys = AlertKeys(settings.redis_prefix)
    sink = RedisAlertSink(client, keys)
    later = example_alert("D-late", risk=0.6, importer="IMP", minutes=60)
    earlier = example_alert("D-early", risk=0.99, importer="IMP", minutes=0)
    for alert in (later, earlier, example_alert("D-other", risk=0.9, importer="OTHER")):
        sink.add(alert)
    assert sink.flush() == 3

    latest = orjson.loads(client.hget(keys.importer_risk, "IMP") or "null")
    assert latest["alert_id"] == later.alert_id and latest["risk"] == 0.6
    assert client.zrange(keys.importer_rank, 0, -1, withscores=True) == [
        ("IMP", 0.6),
        ("OTHER", 0.9),
    ]


def test_stream_length_is_bounded(settings: Settings, client: redis.Redis) -> None:
    keys = AlertKeys(settings.redis_prefix)
    sink = RedisAlertSink(client, keys, maxlen=50)
    for i in range(400):
        sink.add(example_alert(f"D-{i}"))
    assert sink.flush() == 400
    length = client.xlen(keys.stream)
    # Approximate trimming keeps whole radix-tree nodes (100 entries by default).
    assert 50 <= length <= 150


def test_crashed_consumer_entries_are_reclaimed(settings: Settings, client: redis.Redis) -> None:
    keys = AlertKeys(settings.redis_prefix)
    sink = RedisAlertSink(client, keys)
    for i in range(5):
        sink.add(example_alert(f"D-{i}"))
    sink.flush()

    crashed = AlertFeed(client, keys, "targeting", "worker-a", claim_idle_ms=1)
    assert crashed.ensure_group() and not crashed.ensure_group()
    taken = crashed.read(count=3)  # ... and dies before XACK
    survivor = AlertFeed(client, keys, "targeting", "worker-b", claim_idle_ms=1)
    fresh = survivor.read(count=10)
    assert survivor.ack(fresh) == 2 and survivor.pending_count() == 3

    time.sleep(0.05)  # let worker-a's entries become idle for longer than claim_idle_ms
    reclaimed = survivor.next_batch(count=10)
    assert [e.entry_id for e in reclaimed] == [e.entry_id for e in taken]
    assert all(e.claimed for e in reclaimed)
    assert survivor.ack(reclaimed) == 3 and survivor.pending_count() == 0
    assert survivor.next_batch(count=10) == []
    assert survivor.leave() and crashed.leave()
    assert client.xinfo_groups(keys.stream)[0]["consumers"] == 0


def test_unreachable_redis_pushes_back_and_keeps_the_batch(settings: Settings) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    down = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=1)
    sink = RedisAlertSink(down, AlertKeys(settings.redis_prefix))
    sink.add(example_alert("D-1"))
    with pytest.raises(BackpressureError) as caught:
        sink.flush()
    assert caught.value.retry_after > 0 and len(sink) == 1
    down.close()


def test_cli_tail_reads_with_a_consumer_group(settings: Settings, client: redis.Redis) -> None:
    sink = RedisAlertSink(client, AlertKeys(settings.redis_prefix))
    for i in range(4):
        sink.add(example_alert(f"D-{i}"))
    sink.flush()
    env = {
        "VIGIE_REDIS_URL": settings.redis_dsn,
        "VIGIE_REDIS_PREFIX": settings.redis_prefix,
        "PATH": "/usr/bin:/bin",
    }
    argv = [VIGIE, "alerts", "tail", "--group", "cli", "--json"]
    first = _run([*argv, "--count", "3"], env)
    rest = _run([*argv, "--count", "5", "--timeout", "1"], env)

    assert first["count"] == 3 and rest["count"] == 1
    ids = [a["alert_id"] for a in first["alerts"] + rest["alerts"]]
    assert ids == [f"alert:D-{i}" for i in range(4)]
    assert first["alerts"][0]["alert"]["score"]["risk"] == 0.93


def _run(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(argv, env=env, capture_output=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def test_cli_publish_copies_the_topic(settings: Settings, client: redis.Redis) -> None:
    produce(settings, [example_alert("D-1"), example_alert("D-2"), example_alert("D-1")])
    env = {
        "VIGIE_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "VIGIE_TOPIC_PREFIX": settings.topic_prefix,
        "VIGIE_REDIS_URL": settings.redis_dsn,
        "VIGIE_REDIS_PREFIX": settings.redis_prefix,
        "PATH": "/usr/bin:/bin",
    }
    stats = _run([VIGIE, "alerts", "publish", "--count", "3", "--until-idle", "30", "--json"], env)
    assert (stats["consumed"], stats["written"], stats["dead_lettered"]) == (3, 2, 0)
    assert client.xlen(AlertKeys(settings.redis_prefix).stream) == 2

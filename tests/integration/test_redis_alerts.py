"""The Redis alert feed on the real Kafka and Redis: one entry per alert id, reclaims."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
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
from vigie_dev.stack import process
from vigie_dev.stack import redis as stack_redis
from vigie_dev.testing import TopicReader, free_port, wait_for

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
    first = _run([*argv, "--limit", "3"], env)
    rest = _run([*argv, "--limit", "5"], env)

    assert first["count"] == 3 and rest["count"] == 1
    ids = [a["alert_id"] for a in first["alerts"] + rest["alerts"]]
    assert ids == [f"alert:D-{i}" for i in range(4)]
    assert first["alerts"][0]["alert"]["score"]["risk"] == 0.93


def test_cli_tail_shows_the_latest_alerts_and_marks_random_audits(
    settings: Settings, client: redis.Redis
) -> None:
    keys = AlertKeys(settings.redis_prefix)
    sink = RedisAlertSink(client, keys)
    for i in range(12):
        sink.add(example_alert(f"D-{i}", kind="random_audit" if i == 11 else "risk"))
    sink.flush()
    assert [f["kind"] for _i, f in client.xrange(keys.stream)][-2:] == ["risk", "random_audit"]  # type: ignore[union-attr,index]
    env = {
        "VIGIE_REDIS_URL": settings.redis_dsn,
        "VIGIE_REDIS_PREFIX": settings.redis_prefix,
        "PATH": "/usr/bin:/bin",
    }
    argv = [VIGIE, "alerts", "tail"]
    latest = _run([*argv, "--json"], env)
    again = _run([*argv, "--json"], env)  # a view acknowledges nothing
    assert latest == again and latest["stream"] == keys.stream
    assert [a["alert_id"] for a in latest["alerts"]] == [f"alert:D-{i}" for i in range(2, 12)]
    assert latest["alerts"][-1]["kind"] == "random_audit"
    shown = subprocess.run([*argv, "-n", "2"], env=env, capture_output=True, text=True, check=True)
    first, last = shown.stdout.splitlines()
    assert first.endswith("risk 0.930 VAL_LOW") and "D-10" in first
    assert last.endswith("random audit (risk 0.930)") and "D-11" in last


def test_cli_tail_follows_new_alerts_until_idle(settings: Settings, client: redis.Redis) -> None:
    sink = RedisAlertSink(client, AlertKeys(settings.redis_prefix))
    sink.add(example_alert("D-0"))
    sink.flush()
    argv = [VIGIE, "alerts", "tail", "--follow", "--idle-seconds", "10", "--json"]
    with subprocess.Popen(argv, env=_env(settings), stdout=subprocess.PIPE, text=True) as tail:
        assert tail.stdout is not None
        assert orjson.loads(tail.stdout.readline())["alert_id"] == "alert:D-0"
        sink.add(example_alert("D-1", kind="random_audit"))
        sink.flush()
        line = orjson.loads(tail.stdout.readline())
        assert (line["alert_id"], line["kind"]) == ("alert:D-1", "random_audit")
        assert tail.wait(timeout=60) == 0  # idle for 10 s: it stops by itself
        assert tail.stdout.read() == ""


def test_cli_tail_reads_a_demo_run(settings: Settings, client: redis.Redis) -> None:
    from vigie.cli.runs import run_settings

    run = run_settings(settings, "20261204t101500")
    (settings.state_dir / "demo" / "20261204t101500").mkdir(parents=True)
    sink = RedisAlertSink(client, AlertKeys(run.redis_prefix))
    sink.add(example_alert("D-run"))
    sink.flush()
    try:
        for which in ("latest", "20261204t101500"):
            found = _run([VIGIE, "alerts", "tail", "--run", which, "--json"], _env(settings))
            assert [a["alert_id"] for a in found["alerts"]] == ["alert:D-run"]
        assert _run([VIGIE, "alerts", "tail", "--json"], _env(settings))["count"] == 0
    finally:
        client.delete(*client.scan_iter(f"{run.redis_prefix}:*"))


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
    stats = _run(
        [VIGIE, "alerts", "publish", "--limit", "3", "--idle-seconds", "30", "--json"], env
    )
    assert (stats["consumed"], stats["written"], stats["dead_lettered"]) == (3, 2, 0)
    assert client.xlen(AlertKeys(settings.redis_prefix).stream) == 2


def test_an_undecodable_alert_is_dead_lettered_before_its_offset_moves(
    settings: Settings, client: redis.Redis
) -> None:
    garbage = b'{"alert_id": "alert:D-x", "score": {"risk": "Infinity"}}'
    produce(settings, [example_alert("D-1"), example_alert("D-2")], garbage=garbage)
    group = f"g-{uuid.uuid4().hex}"
    stats = publish(settings, group_id=group, max_records=3, idle_exit_s=20)
    assert (stats.consumed, stats.written, stats.dead_lettered) == (3, 2, 1)
    assert stats.dead_letter_reasons == {"schema": 1}

    letters = TopicReader(settings, "declarations.dlq")
    try:
        letters.read_until(lambda r: len(r.records) >= 1, 60, "the dead letter")
    finally:
        letters.close()
    [(key, letter, _)] = letters.records
    assert key == b"bad" and letter["source_topic"] == settings.topic("alerts")
    assert letter["reason"] == "schema" and letter["value"] == garbage.decode()
    again = publish(settings, group_id=group, idle_exit_s=3)
    assert again.consumed == 0  # the letter is safe, the offset moved past it


def test_republish_rebuilds_a_flushed_feed_exactly_once(
    settings: Settings, client: redis.Redis
) -> None:
    alerts = [example_alert(f"D-{i}", importer=f"IMP{i % 3}") for i in range(12)]
    produce(settings, alerts)
    publish(settings, group_id=f"g-{uuid.uuid4().hex}", max_records=12, idle_exit_s=20)
    keys = AlertKeys(settings.redis_prefix)
    before = sorted(f["alert_id"] for _i, f in client.xrange(keys.stream))  # type: ignore[union-attr,index]
    client.delete(*client.scan_iter(f"{settings.redis_prefix}:*"))  # the feed is lost

    env = _env(settings)
    first = _run([VIGIE, "alerts", "republish", "--since", "1h", "--json"], env)
    second = _run([VIGIE, "alerts", "republish", "--since", "1h", "--json"], env)
    future = _run([VIGIE, "alerts", "republish", "--since", "2999-01-01T00:00", "--json"], env)

    assert (first["consumed"], first["written"]) == (12, 12)
    assert (second["consumed"], second["written"]) == (12, 0)
    assert future["consumed"] == 0
    after = sorted(f["alert_id"] for _i, f in client.xrange(keys.stream))  # type: ignore[union-attr,index]
    assert after == before == sorted(a.alert_id for a in alerts)
    assert client.hlen(keys.importer_risk) == 3


def _env(settings: Settings) -> dict[str, str]:
    return {
        "VIGIE_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "VIGIE_TOPIC_PREFIX": settings.topic_prefix,
        "VIGIE_REDIS_URL": settings.redis_dsn,
        "VIGIE_REDIS_PREFIX": settings.redis_prefix,
        "VIGIE_STATE_DIR": str(settings.state_dir),
        "PATH": "/usr/bin:/bin",
    }


class PrivateRedis:
    """A redis-server of this test alone, configured as the local stack's (append-only
    file, fsync every second), which the test may stop, restart and freeze."""

    def __init__(self, state_dir: Path) -> None:
        port = free_port()
        self.url = f"redis://127.0.0.1:{port}/0"
        self.settings = Settings(state_dir=state_dir, redis_port=port, redis_url=self.url)
        self.pid = 0

    def start(self) -> PrivateRedis:
        self.pid = stack_redis.start(self.settings)
        wait_for(lambda: stack_redis.answers(self.url, 1.0), 60, "the private Redis")
        return self

    def stop(self) -> None:
        process.stop(self.pid, stack_redis.marker(self.settings), grace_s=30)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis-state").start()
    try:
        yield server
    finally:
        os.kill(server.pid, signal.SIGCONT)
        server.stop()


@pytest.mark.slow
def test_a_restarted_redis_keeps_the_feed_and_the_tail_goes_on(
    settings: Settings, private_redis: PrivateRedis
) -> None:
    mine = settings.model_copy(update={"redis_url": private_redis.url})
    conn = redis_client(mine)
    keys = AlertKeys(mine.redis_prefix)
    sink = RedisAlertSink(conn, keys)
    for i in range(5):
        sink.add(example_alert(f"D-{i}"))
    assert sink.flush() == 5
    argv = [VIGIE, "alerts", "tail", "--group", "desk", "--follow", "--json"]
    tail = subprocess.Popen(argv, env=_env(mine), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(tail.stdout.readline, b"")))  # type: ignore[union-attr]
    reader.start()
    try:
        wait_for(lambda: len(lines) == 5, 60, "the tail's first alerts")
        private_redis.stop()
        time.sleep(2)  # down long enough for the tail to notice
        private_redis.start()
        assert [f["alert_id"] for _i, f in conn.xrange(keys.stream)] == [  # type: ignore[union-attr,index]
            f"alert:D-{i}" for i in range(5)
        ]
        assert conn.xpending(keys.stream, "desk")["pending"] == 0  # acks survived too
        for i in range(5, 8):
            sink.add(example_alert(f"D-{i}"))
        assert sink.flush() == 3
        wait_for(lambda: len(lines) == 8, 120, "the tail's alerts after the restart")
    finally:
        tail.terminate()
        _, err = tail.communicate(timeout=60)
        reader.join()
        conn.close()
    assert tail.returncode == 0, err.decode()
    said = err.decode()
    assert said.count("Redis unreachable") == 1 and said.count("Redis reachable again") == 1
    assert [orjson.loads(line)["alert_id"] for line in lines] == [f"alert:D-{i}" for i in range(8)]


@pytest.mark.slow
def test_a_frozen_redis_blocks_nothing_and_loses_nothing(
    settings: Settings, private_redis: PrivateRedis
) -> None:
    mine = settings.model_copy(update={"redis_url": private_redis.url})
    alerts = [example_alert(f"D-{i}") for i in range(25)]
    produce(mine, alerts[:10])
    pumps: list[Any] = []
    stop = threading.Event()
    done: dict[str, Any] = {}
    group = f"g-{uuid.uuid4().hex}"

    def run() -> None:
        done["stats"] = publish(
            mine, group_id=group, should_stop=stop.is_set, on_start=pumps.append
        )

    thread = threading.Thread(target=run)
    thread.start()
    conn = redis_client(mine)
    stream = AlertKeys(mine.redis_prefix).stream
    try:
        wait_for(lambda: conn.xlen(stream) == 10, 60, "the first alerts in Redis")
        os.kill(private_redis.pid, signal.SIGSTOP)
        try:
            produce(mine, alerts[10:])
            # the publisher's write times out and it waits with backoff: not blocked
            wait_for(lambda: pumps[0].health.state == "failing", 120, "the publisher to push back")
            assert "Redis unavailable" in pumps[0].health.last_error
        finally:
            os.kill(private_redis.pid, signal.SIGCONT)
        wait_for(lambda: conn.xlen(stream) == 25, 120, "every alert in Redis")
        wait_for(lambda: pumps[0].health.state == "healthy", 60, "the publisher to recover")
    finally:
        stop.set()
        thread.join(120)
    assert not thread.is_alive()
    ids = [f["alert_id"] for _i, f in conn.xrange(stream)]  # type: ignore[union-attr,index]
    assert sorted(ids) == sorted(a.alert_id for a in alerts)
    assert done["stats"].consumed == 25
    conn.close()


def test_the_publisher_serves_health_readiness_and_metrics(
    settings: Settings, client: redis.Redis
) -> None:
    produce(settings, [example_alert("D-1"), example_alert("D-2")], garbage=b"[]")
    port = free_port()
    argv = [VIGIE, "alerts", "publish", "--idle-seconds", "20", "--http-port", str(port), "--json"]
    publisher = subprocess.Popen(
        argv, env=_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(url + "/health")[0] == 200, 60, "/health")
        wait_for(
            lambda: b'consumed_total{sink="alerts-redis"} 3.0' in _get(url + "/metrics")[1],
            60,
            "the records in /metrics",
        )
        status, body = _get(url + "/ready")
        metrics = _get(url + "/metrics")[1].decode()
    finally:
        publisher.terminate()
        out, err = publisher.communicate(timeout=60)
    assert publisher.returncode == 0, err.decode()
    ready = orjson.loads(body)
    assert status == 200 and ready["ready"] and ready["state"] == "healthy"
    assert ready["kafka"]["connected"] and ready["stats"]["dead_lettered"] == 1
    assert ready["failing_since"] is None and ready["last_error"] is None
    assert 'vigie_sink_records_written_total{sink="alerts-redis",target="redis"} 2.0' in metrics
    assert (
        'vigie_sink_dead_letters_total{reason="not_an_object",sink="alerts-redis"} 1.0' in metrics
    )
    assert 'vigie_sink_failing{sink="alerts-redis"} 0.0' in metrics
    assert 'vigie_sink_consumer_rejoins_total{sink="alerts-redis"} 0.0' in metrics
    assert orjson.loads(out)["consumed"] == 3


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, b""

"""Waiting out failures: backoff, the sink's state logged once per change, Kafka's chatter
said once per state (no services: the errors are real exceptions, the logs real records)."""

from __future__ import annotations

import logging
import random

import pytest

from vigie.errors import BackpressureError, SinkError
from vigie.kafka import ClientEvents
from vigie.sinks.retry import Backoff, SinkHealth, persist


def test_backoff_grows_is_capped_and_jittered() -> None:
    backoff = Backoff(base_s=0.5, factor=2.0, cap_s=30.0, jitter=0.2)
    rng = random.Random(3)
    for attempt in (1, 2, 5, 10, 1000):
        full = min(30.0, 0.5 * 2.0 ** (attempt - 1))
        assert 0.8 * full <= backoff.delay(attempt, rng) <= full
    assert len({backoff.delay(4, rng) for _ in range(20)}) > 1


def test_a_failing_sink_is_retried_until_it_writes_and_logs_two_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes: list[Exception | None] = [SinkError("disk full")] * 7 + [
        BackpressureError("busy", 0.0),
        None,
    ]
    waits: list[float] = []

    def write() -> int:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return 5

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return True

    health = SinkHealth("warehouse", logger=logging.getLogger("test.sink"))
    with caplog.at_level(logging.INFO, logger="test.sink"):
        assert persist(write, health, wait, Backoff(base_s=0.01, cap_s=0.04, jitter=0.0)) == 5
    assert len(waits) == 8 and max(waits) == 0.04
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "warehouse failing",
        "warehouse recovered after 0.0 s and 8 failed attempts",
    ]
    assert health.state == "healthy" and health.total_failures == 8


def test_a_stop_while_failing_gives_up_and_bugs_are_not_retried() -> None:
    def failing() -> int:
        raise SinkError("down")

    health = SinkHealth("redis")
    assert persist(failing, health, lambda seconds: False) is None
    assert health.state == "failing" and health.last_error == "down"

    def buggy() -> int:
        raise KeyError("route")

    with pytest.raises(KeyError):
        persist(buggy, SinkHealth("redis"), lambda seconds: True)


def test_kafka_chatter_is_said_once_per_state(caplog: pytest.LogCaptureFixture) -> None:
    events = ClientEvents("vigie-test", logger=logging.getLogger("test.kafka"))
    refused = "[thrd:127.0.0.1:9/bootstrap]: Connect to ipv4#127.0.0.1:9 failed (after {}ms)"
    with caplog.at_level(logging.WARNING, logger="test.kafka"):
        for attempt in range(500):
            events.log(40, "%s [%s] %s", "FAIL", "rdkafka#consumer-1", refused.format(attempt))
            if attempt == 3:
                events.unreachable("1/1 brokers are down")
        events.stats('{"brokers": {"127.0.0.1:9/1": {"state": "UP"}}, "topics": {}}')
        events.log(40, "%s [%s] %s", "FAIL", "rdkafka#consumer-1", refused.format(1))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5, lines
    assert "Kafka unreachable" in lines[1] and "FAIL: Connect" in lines[2]
    assert "reachable again" in lines[3] and "(495 repeated messages not logged)" in lines[3]
    assert events.reachable and "FAIL: Connect" in lines[4]


def test_kafka_statistics_give_each_partitions_lag() -> None:
    events = ClientEvents("vigie-test")
    events.stats(
        '{"brokers": {}, "topics": {"alerts": {"partitions": {'
        '"0": {"consumer_lag": 12}, "1": {"consumer_lag": -1}, "-1": {"consumer_lag": 0}}}}}'
    )
    assert events.lag == {("alerts", 0): 12}

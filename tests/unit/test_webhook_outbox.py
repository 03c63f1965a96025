"""Outbox, subscriber configuration and retry policy, on a real SQLite file (no services)."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from vigie.errors import BackpressureError, ConfigurationError
from vigie.sinks.examples import example_alert
from vigie.sinks.retry import Backoff, SinkHealth, persist
from vigie.sinks.webhooks.dispatcher import OutboxSink, RetryPolicy, plan
from vigie.sinks.webhooks.outbox import NewDelivery, Outbox, Outcome
from vigie.sinks.webhooks.signing import new_secret, webhook_id
from vigie.sinks.webhooks.subscribers import Subscriber, load_subscribers


def subscriber(name: str = "desk", **filters: object) -> Subscriber:
    return Subscriber.model_validate(
        {"name": name, "url": f"http://127.0.0.1:9/{name}", "secret": new_secret(), **filters}
    )


def test_enqueue_is_idempotent_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    subs = [subscriber("desk"), subscriber("audit")]
    alerts = [example_alert(f"D-{i}") for i in range(3)]
    with Outbox(path) as box:
        assert box.enqueue([d for a in alerts for d in plan(a, subs)], now=1.0) == 6
    with Outbox(path) as box:  # a restart replaying the same alerts
        assert box.enqueue([d for a in alerts for d in plan(a, subs)], now=2.0) == 0
        assert box.counts() == {"pending": 6, "delivered": 0, "failed": 0}
        stored = box.get(webhook_id("alert:D-2", "audit"))
    assert stored is not None and stored.alert_id == "alert:D-2" and stored.attempts == 0


def test_claimed_rows_come_back_when_the_lease_expires(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        box.enqueue([NewDelivery("msg_1", "desk", "alert:D-1", b"{}")], now=10.0)
        assert len(box.claim_due(now=10.0, limit=5, lease_s=30.0)) == 1
        assert box.claim_due(now=39.0, limit=5, lease_s=30.0) == []
        again = box.claim_due(now=40.0, limit=5, lease_s=30.0)
        assert [d.webhook_id for d in again] == ["msg_1"]
        box.settle([Outcome("msg_1", "delivered", 1, 40.0)], now=40.0)
        assert box.claim_due(now=1e12, limit=5, lease_s=30.0) == []
        assert box.next_due() is None


def test_a_locked_outbox_pushes_back_until_released(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path, busy_timeout_s=0.05) as box:
        sink = OutboxSink(box, [subscriber()])
        sink.add(example_alert("D-1"))
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(BackpressureError):
            sink.flush()
        assert len(sink) == 1  # the batch waits for the next flush
        release = threading.Timer(0.2, lambda: holder.execute("ROLLBACK"))
        release.start()
        tries = iter(range(30))

        def wait(seconds: float) -> bool:
            time.sleep(0.05)
            return next(tries, None) is not None

        health = SinkHealth("outbox")
        assert persist(sink.flush, health, wait, Backoff(base_s=0.01)) == 1
        assert health.state == "healthy" and health.total_failures >= 1
        release.join()
        holder.close()
        assert box.counts()["pending"] == 1


def test_retry_delays_grow_are_jittered_and_capped() -> None:
    policy = RetryPolicy(base_s=1.0, factor=2.0, cap_s=30.0, max_attempts=12, jitter=0.25)
    rng = random.Random(7)
    for attempt in range(1, 12):
        full = min(30.0, 2.0 ** (attempt - 1))
        assert 0.75 * full <= policy.delay(attempt, rng) <= full
    assert len({policy.delay(3, rng) for _ in range(20)}) > 1


def test_subscribers_load_from_toml_and_json(tmp_path: Path) -> None:
    secret = new_secret()
    (tmp_path / "s.toml").write_text(
        f'[[subscribers]]\nname = "desk"\nurl = "https://t.example/h"\nsecret = "{secret}"\n'
        'min_risk = 0.8\noffices = ["FR000730"]\n[subscribers.detectors]\natypicality = 0.6\n'
    )
    entry = {"name": "desk", "url": "https://t.example/h", "secret": secret, "min_risk": 0.8}
    entry |= {"offices": ["FR000730"], "detectors": {"atypicality": 0.6}}
    (tmp_path / "s.json").write_text(json.dumps({"subscribers": [entry]}))
    from_toml = load_subscribers(tmp_path / "s.toml")
    assert from_toml == load_subscribers(tmp_path / "s.json")
    desk = from_toml[0]
    assert desk.matches(example_alert(atypicality=0.7))
    assert not desk.matches(example_alert(atypicality=0.5))
    assert not desk.matches(example_alert(atypicality=0.7, office="FR000999"))
    assert secret not in repr(desk)


@pytest.mark.parametrize(
    ("subscribers", "message"),
    [
        ({"subscribers": [{"name": "a", "url": "https://x/h", "secret": "nope"}]}, "secret"),
        ({"subscribers": [{"name": "a", "url": "https://x/h", "secret": "S", "x": 1}]}, "x:"),
        ({"subscribers": [{"name": "a", "url": "h", "secret": "S", "chapters": ["6"]}]}, "chap"),
        ({"subscribers": [{"name": "a", "url": "h", "secret": "S", "detectors": {"z": 1}}]}, "z"),
        ({"subscribers": [{"name": "a", "url": "https://x", "secret": "S"}] * 2}, "unique"),
        ({"hooks": []}, "expected a list under 'subscribers'"),
    ],
)
def test_bad_subscriber_files_say_what_is_wrong(
    tmp_path: Path, subscribers: dict[str, object], message: str
) -> None:
    text = json.dumps(subscribers).replace('"S"', json.dumps(new_secret()))
    (tmp_path / "s.json").write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        load_subscribers(tmp_path / "s.json")

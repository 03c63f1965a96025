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


def test_deliveries_are_retried_for_days_by_default() -> None:
    policy = RetryPolicy()
    assert sum(policy.schedule()) >= 24 * 3600
    assert max(policy.schedule()) == policy.cap_s <= 3600
    assert not policy.gives_up(500, retry_at=1000.0 + 71 * 3600, retry_since=1000.0)
    assert policy.gives_up(3, retry_at=1000.0 + 73 * 3600, retry_since=1000.0)
    assert RetryPolicy(max_attempts=4).gives_up(4, retry_at=10.0, retry_since=0.0)


def test_redrive_puts_failed_deliveries_back_once(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        box.enqueue(
            [
                NewDelivery(f"msg_{i}", ("desk", "audit")[i % 2], f"alert:D-{i}", b"{}")
                for i in range(6)
            ],
            now=10.0,
        )
        box.settle(
            [Outcome(f"msg_{i}", "failed", 9, 20.0 + i, "HTTP 500") for i in range(5)]
            + [Outcome("msg_5", "delivered", 1, 20.0)],
            now=20.0,
        )
        box.settle([Outcome("msg_4", "failed", 9, 30.0, "HTTP 500")], now=30.0)
        assert box.redrive(now=40.0, subscriber="audit") == 2  # msg_1, msg_3
        assert box.redrive(now=41.0, since=25.0) == 1  # msg_4 failed at 30
        assert box.redrive(now=42.0, since=25.0) == 0
        assert box.counts() == {"pending": 3, "delivered": 1, "failed": 2}
        again = box.get("msg_3")
        assert again is not None and again.attempts == 0 and again.retry_since == 40.0
        assert [d.webhook_id for d in box.claim_due(now=41.0, limit=9, lease_s=5)] == [
            "msg_1",
            "msg_3",
            "msg_4",
        ]


def test_delivered_rows_are_pruned_and_a_replay_does_not_bring_them_back(tmp_path: Path) -> None:
    new = [NewDelivery(f"msg_{i}", "desk", f"alert:D-{i}", b"x" * 4000) for i in range(4)]
    with Outbox(tmp_path / "o.sqlite3") as box:
        box.enqueue(new, now=0.0)
        box.settle(
            [Outcome("msg_0", "delivered", 1, 10.0), Outcome("msg_1", "delivered", 1, 10.0)],
            now=10.0,
        )
        box.settle([Outcome("msg_2", "delivered", 1, 50.0)], now=50.0)
        box.settle([Outcome("msg_3", "failed", 9, 10.0, "HTTP 410")], now=10.0)
        assert box.prune(delivered_before=20.0, forget_before=0.0) == (2, 0)
        assert box.counts() == {"pending": 0, "delivered": 1, "failed": 1}
        assert box.get("msg_0") is None
        assert box.enqueue(new, now=60.0) == 0  # the alerts topic replayed: nothing new
        assert box.prune(delivered_before=20.0, forget_before=11.0) == (0, 2)
        assert box.enqueue(new[:1], now=70.0) == 1  # beyond the topic's retention


def test_an_outbox_of_the_previous_release_gets_its_new_column(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE deliveries (webhook_id TEXT PRIMARY KEY, subscriber TEXT NOT NULL,"
        " alert_id TEXT NOT NULL, payload BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
        " next_attempt_at REAL NOT NULL, status TEXT NOT NULL DEFAULT 'pending',"
        " last_error TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL);"
        "INSERT INTO deliveries VALUES ('msg_1', 'desk', 'alert:D-1', x'7b7d', 2, 5.0,"
        " 'pending', 'HTTP 500', 3.0, 4.0);"
    )
    old.commit()
    old.close()
    with Outbox(path) as box:
        found = box.get("msg_1")
        assert found is not None and found.retry_since == 3.0 and found.attempts == 2

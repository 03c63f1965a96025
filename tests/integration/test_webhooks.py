"""Webhooks on the real Kafka and a real local HTTP receiver verifying with standardwebhooks.

The receiver answers 500 to the first attempts of one subscriber, always 500 to another;
each matching (alert, subscriber) must be delivered with exactly one 2xx, filters must
hold, a restarted dispatcher must lose nothing and the hopeless deliveries end ``failed``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from asyncio.subprocess import PIPE
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from confluent_kafka import Producer
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from vigie.contracts.codec import encode
from vigie.contracts.schemas import Alert
from vigie.settings import Settings
from vigie.sinks.examples import example_alert
from vigie.sinks.webhooks.dispatcher import AiohttpTransport, Dispatcher, RetryPolicy, outbox_path
from vigie.sinks.webhooks.outbox import Outbox
from vigie.sinks.webhooks.service import intake, run_dispatcher
from vigie.sinks.webhooks.signing import new_secret, webhook_id
from vigie.sinks.webhooks.subscribers import Subscriber, load_subscribers
from vigie_dev.testing import TopicReader

pytestmark = pytest.mark.integration

VIGIE = str(Path(sys.executable).parent / "vigie")
FAST = RetryPolicy(base_s=0.3, factor=2.0, cap_s=1.0, max_attempts=4, jitter=0.2)

ALERTS = [
    example_alert("D-1", risk=0.95, valuation=0.9),  # desk + audit
    example_alert("D-2", risk=0.90, valuation=0.8, office="FR000999"),  # desk only
    example_alert("D-3", risk=0.90, valuation=0.3),  # audit only: valuation too low
    example_alert("D-4", risk=0.70, valuation=0.9),  # audit only: risk too low
    example_alert("D-5", risk=0.99, commodity_code="61091000"),  # audit only: chapter 61
    example_alert("D-6", risk=0.85, valuation=0.75, office="FR000999"),  # desk only
]
EXPECTED = {
    "desk": {"alert:D-1", "alert:D-2", "alert:D-6"},
    "audit": {"alert:D-1", "alert:D-3", "alert:D-4", "alert:D-5"},
    "broken": {"alert:D-1", "alert:D-2", "alert:D-5", "alert:D-6"},  # desk's filters, no chapter
}


class Receiver:
    """Verifies every request's signature; fails each webhook-id's first ``fail_first``."""

    def __init__(self, secrets: dict[str, str], fail_first: dict[str, int]) -> None:
        self.secrets = secrets
        self.fail_first = fail_first
        self.attempts: Counter[str] = Counter()
        self.successes: Counter[tuple[str, str]] = Counter()
        self.rejected: list[str] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.read()
        try:
            event = Webhook(self.secrets[name]).verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            self.rejected.append(f"{name}: {exc}")
            return web.Response(status=400)
        msg_id = request.headers["webhook-id"]
        assert msg_id == webhook_id(event["data"]["alert_id"], name)
        self.attempts[msg_id] += 1
        if self.attempts[msg_id] <= self.fail_first[name]:
            return web.Response(status=500)
        self.successes[(name, event["data"]["alert_id"])] += 1
        return web.Response(status=204)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Receiver]:
        app = web.Application()
        app.router.add_post("/hooks/{name}", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        try:
            yield self
        finally:
            await runner.cleanup()


def write_subscribers(path: Path, secrets: dict[str, str], url: str) -> tuple[Subscriber, ...]:
    path.write_text(
        f"""
[[subscribers]]
name = "desk"
url = "{url}/hooks/desk"
secret = "{secrets["desk"]}"
min_risk = 0.8
chapters = ["62"]
[subscribers.detectors]
valuation = 0.7

[[subscribers]]
name = "audit"
url = "{url}/hooks/audit"
secret = "{secrets["audit"]}"
offices = ["FR000730"]

[[subscribers]]
name = "broken"
url = "{url}/hooks/broken"
secret = "{secrets["broken"]}"
min_risk = 0.8
[subscribers.detectors]
valuation = 0.7
"""
    )
    return load_subscribers(path)


def produce(settings: Settings, alerts: list[Alert]) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for alert in alerts:
        producer.produce(
            settings.topic("alerts"), key=alert.score.declaration_id, value=encode(alert)
        )
    assert producer.flush(30) == 0


def test_each_matching_alert_is_delivered_once_across_a_restart(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings
    secrets = {name: new_secret() for name in EXPECTED}
    receiver = Receiver(secrets, fail_first={"desk": 2, "audit": 0, "broken": 10**6})
    produce(settings, ALERTS)
    expected_rows = sum(len(ids) for ids in EXPECTED.values())

    async def scenario() -> tuple[dict[str, int], int, dict[str, int]]:
        async with receiver.running(), aiohttp.ClientSession() as session:
            subs = write_subscribers(tmp_path / "webhooks.toml", secrets, receiver.url)
            transport = AiohttpTransport(session, timeout_s=5.0)
            stop = asyncio.Event()
            box = Outbox(outbox_path(settings))

            async def stop_mid_way() -> None:
                while (
                    sum(receiver.attempts.values()) < 3
                    or sum(box.counts().values()) < expected_rows
                ):
                    await asyncio.sleep(0.01)
                stop.set()

            watcher = asyncio.create_task(stop_mid_way())
            await run_dispatcher(
                settings, subs, transport, group_id="g1", policy=FAST, lease_s=5.0, stop=stop
            )
            await watcher
            mid_way = box.counts()
            box.close()
            # Offsets lost: a fresh group re-reads the topic from the start.
            replay = await asyncio.to_thread(
                intake, settings, subs, group_id="g2", max_records=len(ALERTS), idle_exit_s=30
            )
            report = await run_dispatcher(
                settings, subs, transport, group_id="g1", policy=FAST, until_idle_s=0.5
            )
            return mid_way, replay.written, report.outbox

    mid_way, replayed_new, final = asyncio.run(scenario())

    assert mid_way["pending"] > 0 and sum(mid_way.values()) == expected_rows
    assert replayed_new == 0
    assert final == {"pending": 0, "delivered": 7, "failed": 4}
    assert receiver.rejected == []
    delivered = {(n, a) for n in ("desk", "audit") for a in EXPECTED[n]}
    assert dict(receiver.successes) == dict.fromkeys(delivered, 1)
    desk_ids = [webhook_id(a, "desk") for a in EXPECTED["desk"]]
    assert [receiver.attempts[i] for i in desk_ids] == [3, 3, 3]
    assert all(receiver.attempts[webhook_id(a, "broken")] == 4 for a in EXPECTED["broken"])

    failed = _cli(["webhooks", "failed", "--json"], settings.state_dir)
    assert failed["count"] == 4
    rows = failed["failed"]
    assert {r["alert_id"] for r in rows} == EXPECTED["broken"]
    assert all(r["attempts"] == 4 and r["last_error"] == "HTTP 500" for r in rows)


def test_a_dispatcher_dying_after_claiming_loses_nothing(tmp_path: Path) -> None:
    secrets = {name: new_secret() for name in EXPECTED}
    receiver = Receiver(secrets, fail_first={"desk": 0, "audit": 0, "broken": 0})
    path = tmp_path / "outbox.sqlite3"

    async def scenario() -> dict[str, int]:
        async with receiver.running(), aiohttp.ClientSession() as session:
            subs = write_subscribers(tmp_path / "webhooks.toml", secrets, receiver.url)
            transport = AiohttpTransport(session)
            with Outbox(path) as box:
                first = Dispatcher(box, subs, transport, policy=FAST, lease_s=0.3)
                assert first.enqueue(ALERTS) == 11 and first.enqueue(ALERTS[:3]) == 0
                # It claims everything due, then dies before any delivery is recorded.
                assert len(box.claim_due(now=first.clock(), limit=100, lease_s=0.3)) == 11
            with Outbox(path) as box:
                second = Dispatcher(box, subs, transport, policy=FAST)
                while box.counts()["pending"]:
                    await second.deliver_due()
                    await asyncio.sleep(0.05)
                return box.counts()

    counts = asyncio.run(scenario())
    assert counts == {"pending": 0, "delivered": 11, "failed": 0}
    assert sorted(receiver.successes.values()) == [1] * 11
    assert {a for (n, a) in receiver.successes if n == "desk"} == EXPECTED["desk"]


def test_cli_lists_subscribers_without_secrets(tmp_path: Path) -> None:
    secrets = {name: new_secret() for name in EXPECTED}
    write_subscribers(tmp_path / "webhooks.toml", secrets, "http://127.0.0.1:9")
    listed = _cli(["webhooks", "subscribers", "--json", "--file", str(tmp_path / "webhooks.toml")])
    assert listed["count"] == 3
    desk = listed["subscribers"]["desk"]
    assert desk["detectors"] == {"valuation": 0.7} and desk["chapters"] == ["62"]
    assert not any(s in str(listed) for s in secrets.values())


def test_cli_dispatch_delivers_and_exits_when_idle(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    secrets = {name: new_secret() for name in EXPECTED}
    receiver = Receiver(secrets, fail_first={"desk": 1, "audit": 0, "broken": 10**6})
    produce(isolated_settings, ALERTS[:2])  # D-1: desk, audit, broken; D-2: desk, broken
    env = {
        "PATH": "/usr/bin:/bin",
        "VIGIE_STATE_DIR": str(isolated_settings.state_dir),
        "VIGIE_KAFKA_BOOTSTRAP": isolated_settings.bootstrap_servers,
        "VIGIE_TOPIC_PREFIX": isolated_settings.topic_prefix,
        "VIGIE_WEBHOOKS_FILE": str(tmp_path / "webhooks.toml"),
    }
    argv = ["webhooks", "dispatch", "--idle-seconds", "3", "--base-delay", "0.05"]

    async def scenario() -> dict[str, Any]:
        async with receiver.running():
            write_subscribers(tmp_path / "webhooks.toml", secrets, receiver.url)
            proc = await asyncio.create_subprocess_exec(
                VIGIE, *argv, "--max-attempts", "2", "--json", env=env, stdout=PIPE, stderr=PIPE
            )
            out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
            assert proc.returncode == 0, err.decode()
            report: dict[str, Any] = orjson.loads(out)
            return report

    report = asyncio.run(scenario())
    assert report["outbox"] == {"pending": 0, "delivered": 3, "failed": 2}
    assert report["intake"]["consumed"] == 2
    # desk fails once then succeeds; broken fails twice (its last attempt): 9 attempts.
    assert report["deliveries"] == {"attempted": 9, "delivered": 3, "retried": 4, "failed": 2}
    assert sorted(receiver.successes) == [
        ("audit", "alert:D-1"),
        ("desk", "alert:D-1"),
        ("desk", "alert:D-2"),
    ]


def _cli(args: list[str], state_dir: Path | None = None) -> dict[str, Any]:
    env = {"PATH": "/usr/bin:/bin"}
    if state_dir is not None:
        env["VIGIE_STATE_DIR"] = str(state_dir)
    done = subprocess.run([VIGIE, *args], env=env, capture_output=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def test_failed_deliveries_are_redriven_once_and_then_delivered(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    secrets = {name: new_secret() for name in EXPECTED}
    receiver = Receiver(secrets, fail_first={"desk": 10**6, "audit": 0, "broken": 10**6})
    produce(isolated_settings, ALERTS[:2])  # D-1: desk, audit, broken; D-2: desk, broken
    env = {
        "PATH": "/usr/bin:/bin",
        "VIGIE_STATE_DIR": str(isolated_settings.state_dir),
        "VIGIE_KAFKA_BOOTSTRAP": isolated_settings.bootstrap_servers,
        "VIGIE_TOPIC_PREFIX": isolated_settings.topic_prefix,
        "VIGIE_WEBHOOKS_FILE": str(tmp_path / "webhooks.toml"),
    }
    dispatch = ["webhooks", "dispatch", "--idle-seconds", "3", "--base-delay", "0.05"]
    dispatch += ["--max-attempts", "2", "--json"]

    async def scenario() -> tuple[dict[str, Any], ...]:
        async with receiver.running():
            write_subscribers(tmp_path / "webhooks.toml", secrets, receiver.url)
            first = await _cli_async(dispatch, env)
            redriven = await _cli_async(
                ["webhooks", "redrive", "--subscriber", "desk", "--json"], env
            )
            again = await _cli_async(["webhooks", "redrive", "--subscriber", "desk", "--json"], env)
            receiver.fail_first["desk"] = 0  # the desk's receiver is fixed
            second = await _cli_async(dispatch, env)
            return first, redriven, again, second

    first, redriven, again, second = asyncio.run(scenario())
    assert first["outbox"] == {"pending": 0, "delivered": 1, "failed": 4}
    assert redriven["redriven"] == 2 and redriven["deliveries"]["pending"] == 2
    assert again["redriven"] == 0
    assert second["intake"]["consumed"] == 0  # nothing re-read: the offsets held
    assert second["outbox"] == {"pending": 0, "delivered": 3, "failed": 2}
    assert (
        receiver.successes[("desk", "alert:D-1")] == receiver.successes[("desk", "alert:D-2")] == 1
    )


def test_an_undecodable_alert_is_dead_lettered_by_the_intake(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    subs = write_subscribers(
        tmp_path / "webhooks.toml", {n: new_secret() for n in EXPECTED}, "http://127.0.0.1:9"
    )
    produce(isolated_settings, ALERTS[:1])
    producer = Producer({"bootstrap.servers": isolated_settings.bootstrap_servers})
    producer.produce(isolated_settings.topic("alerts"), key=b"D-9", value=b"\xff not an alert")
    assert producer.flush(30) == 0
    stats = intake(isolated_settings, subs, group_id="g", max_records=2, idle_exit_s=20)
    assert (stats.consumed, stats.written, stats.dead_lettered) == (2, 3, 1)
    letters = TopicReader(isolated_settings, "declarations.dlq")
    try:
        letters.read_until(lambda r: len(r.records) >= 1, 60, "the dead letter")
    finally:
        letters.close()
    [(key, letter, _)] = letters.records
    assert key == b"D-9" and letter["reason"] == "invalid_utf8"
    assert letter["source_topic"] == isolated_settings.topic("alerts")


async def _cli_async(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(VIGIE, *args, env=env, stdout=PIPE, stderr=PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = orjson.loads(out)
    return result

"""The warehouse writer on the real Kafka and a real chDB: every record stored exactly once.

Each test has its own topic prefix (``isolated_settings``), consumer group and chDB
directory (``tmp_path``); every client is closed at the end, since chDB allows one data
directory per process at a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from pydantic import BaseModel

from vigie.contracts import (
    ALERTS,
    CONTROL_RESULTS,
    DEAD_LETTERS,
    DECLARATIONS,
    SCORES,
    Alert,
    AtypicalityEvidence,
    Contribution,
    ControlResult,
    Declaration,
    Reason,
    Score,
    ValuationEvidence,
    dead_letter,
    encode,
)
from vigie.contracts.codec import EXAMPLE_DECLARATION
from vigie.errors import DecodeError
from vigie.settings import Settings
from vigie.sinks.clickhouse_client import connect
from vigie.sinks.retry import Backoff
from vigie.sinks.warehouse import TABLES, TableWriter, migrate
from vigie.sinks.warehouse.consumer import WarehouseConsumer
from vigie_dev.testing import free_port, wait_for

pytestmark = pytest.mark.integration

FAST_REJOIN = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def declaration(i: int, step: timedelta = timedelta(hours=7)) -> Declaration:
    fields: dict[str, Any] = dict(EXAMPLE_DECLARATION)
    fields.update(
        declaration_id=f"D{i:06d}",
        lodged_at=(T0 + step * i).isoformat(),
        importer=f"IMP{i % 7}",
        customs_value_eur=1000.0 + 37.0 * i,
        origin=("CN", "VN", "TR", "US")[i % 4],
        attributes={"batch": str(i // 10)},
    )
    return Declaration.model_validate(fields)


def score(d: Declaration, selected: bool) -> Score:
    return Score(
        declaration_id=d.declaration_id,
        importer=d.importer,
        office=d.office,
        commodity_code=d.commodity_code,
        lodged_at=d.lodged_at,
        scored_at=d.lodged_at + timedelta(milliseconds=40),
        valuation=ValuationEvidence(score=0.8, ratio=0.4, duty_at_risk_eur=120.0, unit="kg"),
        atypicality=AtypicalityEvidence(
            score=0.3, contributions=(Contribution(name="new_route", value=1.0, weight=0.6),)
        ),
        supervised_probability=0.2,
        risk=0.9 if selected else 0.1,
        expected_recoverable_eur=50.0,
        selected=selected,
        selection="engine" if selected else None,
        selection_probability=1.0,
        threshold=0.5,
        reasons=(Reason(code="VAL_LOW", text="value 40 % of reference"),),
        model_versions={"valuation": "v-1"},
        latency_ms=float(d.item_number + len(d.declaration_id)),
    )


def alert(s: Score) -> Alert:
    return Alert(alert_id=Alert.id_for(s.declaration_id), raised_at=s.scored_at, score=s)


def control(d: Declaration, fraud: bool) -> ControlResult:
    return ControlResult(
        declaration_id=d.declaration_id,
        controlled_at=d.lodged_at + timedelta(days=7),
        outcome="infraction" if fraud else "compliant",
        recovered_eur=200.0 if fraud else 0.0,
        selection="engine",
        selection_probability=1.0,
    )


Message = tuple[str, bytes | None, bytes]


def traffic(n: int) -> tuple[list[Message], dict[str, int]]:
    """Messages for ``n`` declarations, every fifth one repeated, plus three bad records."""
    messages: list[Message] = []
    expected = dict.fromkeys(TABLES, 0)

    def put(topic: str, record: BaseModel, key: str, table: str, again: bool) -> None:
        for _ in range(2 if again else 1):
            messages.append((topic, key.encode(), encode(record)))
        expected[table] += 1

    for i in range(n):
        d = declaration(i)
        again = i % 5 == 0
        put(DECLARATIONS.name, d, d.importer, "declarations", again)
        s = score(d, selected=i % 3 == 0)
        put(SCORES.name, s, d.declaration_id, "scores", again)
        if s.selected:
            put(ALERTS.name, alert(s), d.declaration_id, "alerts", again)
            put(
                CONTROL_RESULTS.name,
                control(d, i % 2 == 0),
                d.declaration_id,
                "control_results",
                again,
            )
    bad = [b"{not json", b'{"declaration_id": 7}', b"\xff\xfe binary"]
    messages += [(DECLARATIONS.name, b"bad", raw) for raw in bad]
    letter = dead_letter("declarations", b"k", b"[]", DecodeError("not_an_object", []))
    messages += [(DEAD_LETTERS.name, b"k", encode(letter))] * 2
    keyless = dead_letter("declarations", None, b"", DecodeError("empty", []))
    messages += [(DEAD_LETTERS.name, None, encode(keyless))]
    expected["dead_letters"] = len(bad) + 2
    return messages, expected


def produce(settings: Settings, messages: list[Message]) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 5})
    for topic, key, value in messages:
        producer.produce(settings.topic(topic), key=key, value=value)
    assert producer.flush(30) == 0


@pytest.fixture
def settings(isolated_settings: Settings, tmp_path: Path) -> Settings:
    """The test's topics, with its own chDB directory."""
    fields = isolated_settings.model_dump()
    fields["clickhouse_url"] = f"chdb://{tmp_path / 'warehouse'}"
    return Settings(**fields)


@pytest.fixture
def client(settings: Settings) -> Iterator[Any]:
    with closing(connect(settings)) as ch:
        migrate(ch)
        yield ch


def counts(client: Any, final: bool = True) -> dict[str, int]:
    suffix = " FINAL" if final else ""
    return {t: int(client.command(f"SELECT count() FROM {t}{suffix}")) for t in TABLES}


def run_writer(settings: Settings, client: Any, group: str, **kwargs: Any) -> dict[str, Any]:
    writer = WarehouseConsumer(settings, client, group_id=group, overrides=FAST_REJOIN, **kwargs)
    try:
        return writer.run(until_idle=True).as_dict()
    finally:
        writer.close()


def test_writer_stores_each_record_once(settings: Settings, client: Any) -> None:
    messages, expected = traffic(60)
    produce(settings, messages)
    stats = run_writer(settings, client, group=f"wh-{uuid.uuid4().hex[:8]}", max_records=40)
    assert stats["consumed"] == len(messages)
    assert stats["dead_lettered"] == 3
    assert counts(client) == expected
    reasons = dict(
        client.query("SELECT reason, count() FROM dead_letters FINAL GROUP BY reason").result_rows
    )
    assert reasons == {
        "invalid_json": 1,
        "invalid_utf8": 1,
        "schema": 1,
        "not_an_object": 1,
        "empty": 1,
    }
    found = client.query(
        "SELECT chapter, attributes['batch'], model_versions['valuation'], contributions[1].1 "
        "FROM scores FINAL JOIN declarations FINAL USING declaration_id "
        "WHERE declaration_id = 'D000012'"
    ).result_rows
    assert found == [("62", "1", "v-1", "new_route")]


def test_replayed_batches_are_stored_once(settings: Settings, client: Any) -> None:
    records = [declaration(i) for i in range(90)]
    writer = TableWriter(client, TABLES["declarations"])
    for chunk in (records[:60], records[:60], records[30:]):
        for r in chunk:
            writer.add(r)
        writer.flush()
    assert counts(client, final=False)["declarations"] == 120  # the repeated batch was a no-op
    assert counts(client)["declarations"] == 90  # overlapping batches collapse on the key
    assert int(client.command("SELECT uniqExact(declaration_id) FROM declarations")) == 90


CRASHING_WRITER = textwrap.dedent(
    """
    import json, os, signal, sys, time
    from vigie.settings import Settings
    from vigie.sinks.clickhouse_client import connect
    from vigie.sinks.warehouse import migrate
    from vigie.sinks.warehouse.consumer import WarehouseConsumer

    settings = Settings()
    client = connect(settings)
    migrate(client)
    writer = WarehouseConsumer(settings, client, group_id=sys.argv[1], max_records=25,
                               overrides=json.loads(sys.argv[2]))
    deadline = time.monotonic() + 60
    while writer.poll() == 0 and time.monotonic() < deadline:
        pass
    writer.checkpoint()                     # first batch: inserted, then committed
    while writer.poll() == 0 and time.monotonic() < deadline:
        pass
    sent = writer.flush()                   # second batch: inserted, never committed
    print(json.dumps({"committed": writer.stats.checkpoints, "uncommitted_rows": sent}))
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_killed_writer_replays_its_uncommitted_batch_once(
    settings: Settings, tmp_path: Path
) -> None:
    messages, expected = traffic(40)
    produce(settings, messages)
    group = f"wh-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **_env(settings)}
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, group, json.dumps(FAST_REJOIN)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == -9, crashed.stderr
    report = json.loads(crashed.stdout)
    assert report["uncommitted_rows"] > 0
    with closing(connect(settings)) as client:
        before = counts(client, final=False)
        assert 0 < sum(before.values()) < sum(expected.values())
        stats = run_writer(settings, client, group=group)
        assert 0 < stats["consumed"] < len(messages)  # resumed from the committed offset
        assert counts(client) == expected
        assert int(client.command("SELECT uniqExact(alert_id) FROM alerts")) == expected["alerts"]


VIGIE = [sys.executable, "-c", "from vigie.cli import main; main()"]


def vigie(*args: str, settings: Settings) -> dict[str, Any]:
    """Run ``vigie ... --json`` in its own process (which owns the chDB directory meanwhile)."""
    done = subprocess.run(
        [*VIGIE, *args, "--json"],
        env={**os.environ, **_env(settings)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_cli_write_until_idle_and_summary(settings: Settings) -> None:
    messages, expected = traffic(30)
    produce(settings, messages)
    assert vigie("warehouse", "migrate", settings=settings)["current"] >= 2
    once = vigie("warehouse", "write", "--once", "--batch-size", "50", settings=settings)
    assert 0 < once["consumed"] < len(messages) and once["checkpoints"] >= 1
    written = vigie("warehouse", "write", "--drain", "--batch-size", "50", settings=settings)
    assert written["consumed"] == len(messages) - once["consumed"]
    sent = once["rows"]["scores"] + written["rows"]["scores"]
    assert sent == len([m for m in messages if m[0] == SCORES.name])
    figures = vigie("warehouse", "summary", settings=settings)
    assert figures["declarations"] == expected["declarations"] == 30
    assert figures["scores"] == 30
    assert figures["alerts"] == expected["alerts"] == 10
    assert figures["alert_rate"] == pytest.approx(10 / 30, abs=1e-6)
    assert figures["hit_rate_by_selection"]["engine"] == {
        "controls": 10,
        "hits": 5,
        "hit_rate": 0.5,
        "recovered_eur": 1000.0,
    }
    assert figures["dead_letters"] == {
        "total": 5,
        "by_reason": {
            "empty": 1,
            "invalid_json": 1,
            "invalid_utf8": 1,
            "not_an_object": 1,
            "schema": 1,
        },
    }
    assert figures["latency_ms"]["p50"] == pytest.approx(8.0)
    again = vigie("warehouse", "write", "--drain", settings=settings)
    assert again["consumed"] == 0  # offsets were committed


@pytest.mark.slow
def test_throughput_of_50000_scores(
    settings: Settings, client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Figures, not assertions on time: the table writer alone, then Kafka to ClickHouse."""
    every_minute = timedelta(minutes=1)  # five weeks of traffic: two monthly partitions
    scores = [score(declaration(i, every_minute), selected=i % 20 == 0) for i in range(50_000)]
    writer = TableWriter(client, TABLES["scores"], max_records=10_000)
    started = time.perf_counter()
    for s in scores:
        writer.add(s)
        if writer.due():
            writer.flush()
    writer.flush()
    insert_s = time.perf_counter() - started
    assert counts(client)["scores"] == 50_000

    client.command("TRUNCATE TABLE scores")
    produce(settings, [(SCORES.name, s.declaration_id.encode(), encode(s)) for s in scores])
    started = time.perf_counter()
    stats = run_writer(settings, client, group=f"wh-{uuid.uuid4().hex[:8]}", max_records=10_000)
    pipeline_s = time.perf_counter() - started
    assert stats["consumed"] == 50_000
    assert counts(client)["scores"] == 50_000
    with capsys.disabled():
        print(
            f"\nwarehouse, 50,000 scores: table writer {50_000 / insert_s:,.0f} rows/s "
            f"({insert_s:.1f} s); Kafka -> decode -> chDB {50_000 / pipeline_s:,.0f} rows/s "
            f"({pipeline_s:.1f} s with the group join; {stats['records_per_s']:,.0f}/s from the "
            "first record)"
        )


def _env(settings: Settings) -> dict[str, str]:
    return {
        "VIGIE_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "VIGIE_TOPIC_PREFIX": settings.topic_prefix,
        "VIGIE_CLICKHOUSE_URL": settings.clickhouse_dsn,
        "VIGIE_STATE_DIR": str(settings.state_dir),
    }


@pytest.mark.slow
def test_the_writer_waits_out_a_failing_clickhouse_then_stores_everything_once(
    settings: Settings, client: Any
) -> None:
    messages, expected = traffic(40)
    produce(settings, messages[:60])
    first_score = next(decode_score(v) for t, _k, v in messages if t == SCORES.name)
    seed = TableWriter(client, TABLES["scores"])
    seed.add(first_score)
    seed.flush()  # one part in March: with the limit below, the next insert is refused
    # ClickHouse's own backpressure, for real: too many parts while merges are stopped.
    client.command("SYSTEM STOP MERGES scores")
    client.command(
        "ALTER TABLE scores MODIFY SETTING parts_to_throw_insert = 1, parts_to_delay_insert = 1"
    )
    writes = connect(settings)  # the writer's own client: the test queries on its own
    writer = WarehouseConsumer(
        settings,
        writes,
        group_id=f"wh-{uuid.uuid4().hex[:8]}",
        max_records=25,
        overrides=FAST_REJOIN,
        backoff=Backoff(base_s=0.05, cap_s=0.5),
    )
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, kwargs={"should_stop": stop.is_set})
    thread.start()
    try:
        wait_for(lambda: writer.health.failures >= 5, 120, "the writer to retry")
        failing = writer.readiness()
        produce(settings, messages[60:])  # more arrives while ClickHouse refuses
        client.command(
            "ALTER TABLE scores MODIFY SETTING parts_to_throw_insert = 3000,"
            " parts_to_delay_insert = 1000"
        )
        client.command("SYSTEM START MERGES scores")
        wait_for(lambda: counts(client) == expected, 180, "every record in the warehouse")
    finally:
        stop.set()
        thread.join(120)
        writer.close()
        writes.close()
    assert not thread.is_alive()
    assert not failing["ready"] and failing["state"] == "failing"
    assert "Too many parts" in failing["last_error"] and failing["failing_since"]
    assert writer.health.state == "healthy" and writer.health.recovered_after_s
    assert counts(client) == expected
    assert writer.stats.consumed == len(messages)
    distinct = int(client.command("SELECT uniqExact(declaration_id) FROM scores"))
    assert distinct == expected["scores"]


def decode_score(raw: bytes) -> Score:
    return Score.model_validate_json(raw)


class Unavailable(BaseHTTPRequestHandler):
    """A ClickHouse HTTP endpoint that answers 503 to everything (a server restarting)."""

    requests = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _unavailable(self) -> None:
        type(self).requests += 1
        body = b"Code: 210. DB::Exception: Server is restarting (test)"
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _unavailable  # noqa: N815 (http.server's naming)


def test_the_writer_waits_for_an_unavailable_clickhouse_instead_of_exiting(
    settings: Settings,
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    env = {
        **os.environ,
        **_env(settings),
        "VIGIE_CLICKHOUSE_URL": f"http://127.0.0.1:{server.server_address[1]}",
    }
    argv = [*VIGIE, "warehouse", "write", "--http-port", str(port), "--json"]
    writer = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/ready"
    try:
        wait_for(lambda: _ready(url).get("failures", 0) >= 3, 120, "the writer to retry")
        ready = _ready(url)
    finally:
        writer.terminate()
        out, err = writer.communicate(timeout=60)
        server.shutdown()
        server.server_close()
    assert writer.returncode == 0, err.decode()
    assert not ready["ready"] and ready["state"] == "failing"
    assert "503" in ready["last_error"] and Unavailable.requests >= 3
    assert err.decode().count("warehouse failing") == 1  # once, not once per attempt
    assert json.loads(out)["consumed"] == 0


def _ready(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    except (urllib.error.URLError, ConnectionError):
        return {}
    result: dict[str, Any] = json.loads(body)
    return result

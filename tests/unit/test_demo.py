"""The demo's pieces that need no services: the interleaved stream, the child environment,
the summary's figures and the local webhook receiver (a real HTTP server on loopback)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from vigie.settings import Settings
from vigie.sinks.webhooks.signing import signed_headers
from vigie_dev.demo import Demo, DemoOptions, child_env, interleave, percentiles, run_settings
from vigie_dev.demo.figures import against_truth, compose, controls_on
from vigie_dev.demo.receiver import Receiver
from vigie_dev.demo.report import summary_lines
from vigie_dev.generator import GeneratorConfig, write_files
from vigie_dev.testing import free_port


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    out = tmp_path_factory.mktemp("demo-data")
    files = (out / "d.jsonl", out / "c.jsonl", out / "t.jsonl")
    write_files(GeneratorConfig(n=2000, seed=5), *files)
    return files


def test_interleave_keeps_every_record_and_puts_controls_after_their_day(
    stream: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    decls, controls, _ = stream
    pairs = interleave(decls, controls, tmp_path / "cut")
    replayed = [r for d, c in pairs for r in [*_jsonl(d), *_jsonl(c)]]
    assert len(replayed) == len(_jsonl(decls)) + len(_jsonl(controls))
    seen_days: list[str] = []
    for d, c in pairs[:-1]:
        day = {str(r["lodged_at"])[:10] for r in _jsonl(d)}
        assert len(day) == 1
        seen_days.extend(day)
        for result in _jsonl(c):
            assert str(result["controlled_at"])[:10] <= seen_days[-1]
    assert seen_days == sorted(seen_days)
    # a control result never comes before its declaration
    position: dict[object, int] = {}
    for i, record in enumerate(replayed):
        if "lodged_at" in record:
            position[record["declaration_id"]] = i
        else:
            assert position[record["declaration_id"]] < i


def test_run_settings_isolate_a_run_and_reach_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = Settings(state_dir=tmp_path, topic_prefix="env.", clickhouse_url=f"chdb://{tmp_path}")
    run = run_settings(base, "r2", web_port=7001)
    assert run.topic("scores") == "env.demo-r2.scores"
    assert run.clickhouse_dsn == f"chdb://{(tmp_path / 'demo' / 'r2').resolve() / 'clickhouse'}"
    env = child_env(run, {"HOME": "/root", "VIGIE_REDIS_PREFIX": "other"})
    assert env["HOME"] == "/root"
    for name, value in env.items():  # a child reads back the very same settings
        if name.startswith("VIGIE_"):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("VIGIE_CLICKHOUSE_URL", raising=False)
    assert Settings() == run
    server = run_settings(Settings(clickhouse_url="http://ch:8123"), "r3", web_port=7002)
    assert server.clickhouse_dsn == "http://ch:8123"


def test_figures_on_alerted_declarations(stream: tuple[Path, Path, Path]) -> None:
    _, controls, truth = stream
    results = _jsonl(controls)
    frauds = {str(r["declaration_id"]) for r in _jsonl(truth) if r["typology"] is not None}
    alerted = {str(r["declaration_id"]) for r in results[:20]} | set(list(frauds)[:5])
    on = controls_on(controls, alerted)
    assert on["controls"] >= 20
    assert on["hits"] == sum(
        r["outcome"] != "compliant" for r in results if r["declaration_id"] in alerted
    )
    t = against_truth(truth, alerted)
    assert t["frauds"] == len(frauds)
    assert t["frauds_alerted"] == len(alerted & frauds) >= 5
    assert t["precision"] == round(len(alerted & frauds) / len(alerted), 4)
    assert percentiles([float(i) for i in range(1, 101)]) == {"p50": 50.0, "p99": 99.0, "n": 100}


def test_receiver_verifies_signatures_over_http() -> None:
    import aiohttp

    body = orjson.dumps({"type": "alert.raised", "data": {"alert_id": "alert:D-9"}})

    async def post(url: str, headers: dict[str, str]) -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=headers) as response,
        ):
            return response.status

    with Receiver(free_port()) as receiver:
        good = signed_headers(receiver.tally.secret, "msg_9", 1_700_000_000, body)
        forged = {**good, "webhook-signature": "v1,AAAA"}
        statuses = [asyncio.run(post(receiver.url, h)) for h in (good, good, forged)]
    assert statuses == [200, 200, 401]
    assert receiver.tally.as_dict() == {"alerts_delivered": 1, "duplicates": 1, "rejected": 1}


def _warehouse_figures(n: int, alerts: int, duty_at_risk: float) -> dict[str, Any]:
    """What vigie warehouse summary --json answers, for a run of n declarations."""
    return {
        "declarations": n, "scores": n, "alerts": alerts, "alert_rate": alerts / n,
        "controls": 40, "hit_rate": 0.25, "recovered_eur": 1200.0,
        "duty_at_risk_eur": duty_at_risk, "expected_recoverable_selected_eur": 800.0,
        "latency_ms": {"p50": 0.4, "p95": 2.0, "p99": 5.0},
        "dead_letters": {"total": 0, "by_reason": {}},
    }  # fmt: skip


@pytest.mark.parametrize("replay_per_s", [2000.0, 500.0])
def test_summary_groups_figures_and_says_what_they_measure(
    stream: tuple[Path, Path, Path], tmp_path: Path, replay_per_s: float
) -> None:
    decls, controls, truth = stream
    demo = Demo(Settings(state_dir=tmp_path), DemoOptions(n=2000, run_id="r9"))
    rows = _jsonl(decls)
    frauds = [str(r["declaration_id"]) for r in _jsonl(truth) if r["typology"] is not None]
    for i, row in enumerate(rows):  # one a millisecond, each scored 5 s after production
        did = str(row["declaration_id"])
        at_risk = 30.0 if did in frauds else 10.0 * (i % 2)
        demo.watch.on_declaration(did, i)
        score = {"declaration_id": did, "selected": did in frauds[:20] or i < 5,
                 "valuation": {"duty_at_risk_eur": at_risk}}  # fmt: skip
        demo.watch.on_score(orjson.dumps(score), i + 5_000)
    for i, did in enumerate(sorted(demo.watch.selected)):
        demo.watch.on_redis(did, f"{9_000_000 + i}-0", "random_audit" if i < 3 else "risk")
        demo.receiver.tally.alerts.add(f"alert:{did}")
    demo.status.replay = {"declarations": 2000, "controls": 90, "declarations_per_s": replay_per_s,
                          "rejected": 0, "delivery_errors": 0}  # fmt: skip
    at_risk = sum(demo.watch.duty_at_risk.values())
    alerts = len(demo.watch.selected)
    summary = compose(demo, _warehouse_figures(2000, alerts, at_risk), {}, (decls, controls, truth))

    assert summary["run"] == {
        "id": "r9", "dir": str((tmp_path / "demo" / "r9").resolve()),
        "topic_prefix": "demo-r9.", "redis_prefix": "vigie.demo-r9",
        "warehouse": f"chdb://{(tmp_path / 'demo' / 'r9').resolve() / 'clickhouse'}",
    }  # fmt: skip
    target = summary["targeting"]
    assert (target["risk_alerts"], target["random_audits"]) == (alerts - 3, 3)
    split = target["duty_at_risk"]
    assert split["on_frauds_eur"] == 30.0 * len(frauds)
    assert split["total_eur"] == pytest.approx(split["in_warehouse_eur"])
    assert split["on_honest_eur"] == split["total_eur"] - split["on_frauds_eur"] > 0
    latency = summary["latency"]
    assert latency["worker_per_s"] == 1000.0
    assert latency["produced_to_score_ms"] == {"p50": 5000.0, "p99": 5000.0, "n": 2000}
    assert latency["queueing"] is (replay_per_s == 2000.0)
    assert all(summary["delivery"]["consistent"].values())

    text = "\n".join(summary_lines(summary))
    assert "3 random audits (drawn whatever the risk)" in text
    assert "the engine's estimate over every declaration" in text
    assert "honest declarations priced under the reference" in text
    assert "evaded by the frauds (the truth)" in text
    if latency["queueing"]:
        assert "time in the queue, not the engine's" in text
    else:
        assert "the worker kept up" in text
    assert all(len(line) < 200 for line in text.splitlines())

"""The demo's pieces that need no services: the interleaved stream, the child environment,
the summary's figures and the local webhook receiver (a real HTTP server on loopback)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from vigie.settings import Settings
from vigie.sinks.webhooks.signing import signed_headers
from vigie_dev.demo import child_env, interleave, percentiles, run_settings
from vigie_dev.demo.figures import against_truth, controls_on
from vigie_dev.demo.receiver import Receiver
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

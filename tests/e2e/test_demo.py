"""``vigie demo`` end to end on the test stack: a small stream, and figures that agree.

The command runs as a subprocess configured only by the environment, in its own state
directory and under a unique topic prefix and Redis prefix; its summary is checked against
itself, against the generated files, and against Redis read independently.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from vigie.settings import Settings
from vigie_dev.demo import child_env, vigie_command

if TYPE_CHECKING:
    import redis

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

N = 3000


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_bytes().splitlines() if line.strip())


@pytest.fixture
def summary(
    isolated_settings: Settings, tmp_path: Path, unique_name: Any
) -> Iterator[tuple[Settings, dict[str, Any]]]:
    settings = isolated_settings.model_copy(
        update={
            "state_dir": tmp_path / "demo-state",
            "kafka_bootstrap": isolated_settings.bootstrap_servers,
            "redis_url": isolated_settings.redis_dsn,
            "clickhouse_url": None,
            "redis_prefix": unique_name("demo-test"),
        }
    )
    args = ["demo", "--declarations", str(N), "--seed", "11", "--rate", "1500", "--timeout", "480"]
    done = subprocess.run(
        [*vigie_command(), *args, "--json"],
        env=child_env(settings, os.environ),
        capture_output=True,
        timeout=570,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-4000:]
    result = orjson.loads(done.stdout)
    try:
        yield settings, result
    finally:  # the demo leaves `vigie web` running: stop the one it started
        with contextlib.suppress(ProcessLookupError, KeyError):
            os.killpg(result["web"]["pid"], signal.SIGTERM)


def test_demo_summary_agrees_with_kafka_redis_and_files(
    summary: tuple[Settings, dict[str, Any]], redis_client: redis.Redis
) -> None:
    settings, s = summary
    run, traffic, target, delivery = s["run"], s["traffic"], s["targeting"], s["delivery"]
    run_dir = Path(run["dir"])
    assert run_dir.parent == (settings.state_dir / "demo").resolve()
    assert run["topic_prefix"] == f"{settings.topic_prefix}demo-{run['id']}."
    assert run["redis_prefix"] == f"{settings.redis_prefix}.demo-{run['id']}"

    # every declaration produced is stored and scored once
    produced = traffic["declarations_produced"]
    assert produced == N == _lines(run_dir / "data" / "declarations.jsonl")
    assert traffic["declarations"] == N
    assert traffic["scores"] == N
    assert traffic["dead_letters"] == 0
    assert traffic["replay"]["rejected"] == 0 and traffic["replay"]["delivery_errors"] == 0

    # every control result was replayed and stored
    assert traffic["controls_produced"] == _lines(run_dir / "data" / "controls.jsonl") > 0
    assert traffic["controls"] == traffic["controls_produced"]

    # alerts: ClickHouse, the demo's consumer group and the Redis stream agree
    assert target["alerts"] > 0
    assert delivery["alerts_redis"] == target["alerts"] == delivery["alerts_warehouse"]
    assert target["risk_alerts"] + target["random_audits"] == target["alerts"]
    stream = f"{run['redis_prefix']}:alerts"
    assert redis_client.xlen(stream) == target["alerts"]
    kinds = [f[b"kind"] for _i, f in redis_client.xrange(stream)]  # type: ignore[union-attr,index]
    assert kinds.count(b"random_audit") == target["random_audits"]
    assert target["alert_rate"] == pytest.approx(target["alerts"] / traffic["scores"], abs=1e-6)
    assert all(delivery["consistent"].values()), delivery["consistent"]

    # alerted declarations with a control: hits cannot exceed controls
    on_alerts = target["controls_on_alerts"]
    assert 0 <= on_alerts["hits"] <= on_alerts["controls"] <= traffic["controls"]
    truth = s["detection"]
    assert 0 <= truth["frauds_alerted"] <= min(truth["frauds"], target["alerts"])

    # duty at risk: the Scores seen on Kafka add up to the warehouse's, frauds and honest
    at_risk = target["duty_at_risk"]
    assert at_risk["total_eur"] == pytest.approx(at_risk["in_warehouse_eur"], rel=1e-6)
    assert at_risk["on_frauds_eur"] + at_risk["on_honest_eur"] == pytest.approx(
        at_risk["total_eur"], abs=0.02
    )

    # latencies measured on every score and every alert
    latency = s["latency"]
    assert latency["scoring_ms"]["p50"] is not None
    assert latency["scoring_ms"]["p50"] <= latency["scoring_ms"]["p99"]
    assert latency["produced_to_score_ms"]["n"] == N
    assert latency["produced_to_redis_ms"]["n"] == target["alerts"]
    assert latency["worker_per_s"] > 0

    # each child process logged to the run directory
    logs = {p.stem for p in (run_dir / "logs").glob("*.log")}
    assert {"worker", "warehouse", "alerts", "web"} <= logs


def test_each_next_command_reads_the_run(
    summary: tuple[Settings, dict[str, Any]],
) -> None:
    """The commands the demo prints work on its run, while its web app runs."""
    settings, s = summary
    commands = [line.split() for line in s["next"] if line.startswith("vigie ")]
    assert [c[1:3] for c in commands] == [
        ["alerts", "tail"], ["warehouse", "summary"], ["dlq", "tail"], ["webhooks", "failed"]
    ]  # fmt: skip
    results = {}
    for command in commands:
        done = subprocess.run(
            [*vigie_command(), *command[1:], "--json"],
            env=child_env(settings, os.environ),
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (command, done.stderr.decode(errors="replace"))
        results[command[1]] = orjson.loads(done.stdout)
    assert results["alerts"]["count"] == 10 and results["alerts"]["stream"].endswith(":alerts")
    assert results["warehouse"]["alerts"] == s["targeting"]["alerts"]
    assert results["warehouse"]["declarations"] == N
    assert results["dlq"]["count"] == 0
    assert results["webhooks"]["deliveries"]["failed"] == 0
    assert results["webhooks"]["deliveries"]["delivered"] == s["targeting"]["alerts"]


def test_demo_ends_with_the_web_app_and_its_accounts(
    summary: tuple[Settings, dict[str, Any]],
) -> None:
    import httpx

    _, s = summary
    web = s["web"]
    accounts = web["accounts"]
    assert set(accounts) == {"adviser", "company-a", "company-b"}
    with httpx.Client(base_url=web["url"], timeout=60) as client:
        tokens = {
            name: client.post(
                "/api/token", json={"username": name, "password": account["password"]}
            ).json()["token"]
            for name, account in accounts.items()
        }
        a, b = accounts["company-a"]["operator"], accounts["company-b"]["operator"]
        auth = {"Authorization": f"Bearer {tokens['company-a']}"}
        profile = client.get(f"/api/companies/{a}/indicators/profile", headers=auth).json()
        imports, exports = profile["rows"][0][:2]
        assert imports > 0 and exports > 0
        assert client.get(f"/api/companies/{b}/declarations", headers=auth).status_code == 404
        staff = {"Authorization": f"Bearer {tokens['adviser']}"}
        assert client.get(f"/api/companies/{b}/declarations", headers=staff).status_code == 200
        hits = client.get("/api/pilote/hit_rate_by_selection", headers=staff).json()
        assert "engine" in {row[0] for row in hits["rows"]}


def _processes_with_prefix_start(prefix: str) -> list[int]:
    """PIDs of live processes whose topic prefix (in their environment) starts so."""
    wanted = f"VIGIE_TOPIC_PREFIX={prefix}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(entry.startswith(wanted) for entry in environ):
            found.append(int(proc.name))
    return found


def test_interrupted_demo_stops_every_child(
    isolated_settings: Settings, tmp_path: Path, unique_name: Any
) -> None:
    import signal
    import time

    settings = isolated_settings.model_copy(
        update={
            "state_dir": tmp_path / "demo-state",
            "kafka_bootstrap": isolated_settings.bootstrap_servers,
            "redis_url": isolated_settings.redis_dsn,
            "clickhouse_url": None,
            "redis_prefix": unique_name("demo-test"),
        }
    )
    demo = subprocess.Popen(
        [*vigie_command(), "demo", "--declarations", "3000", "--rate", "50", "--json"],
        env=child_env(settings, os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    children_prefix = f"{settings.topic_prefix}demo-"
    deadline = time.monotonic() + 240
    while len(_processes_with_prefix_start(children_prefix)) < 4:
        assert demo.poll() is None, demo.stderr.read().decode()[-3000:] if demo.stderr else ""
        assert time.monotonic() < deadline, "the demo's four children did not start"
        time.sleep(0.5)
    started = _processes_with_prefix_start(children_prefix)
    demo.send_signal(signal.SIGTERM)
    out, err = demo.communicate(timeout=240)
    assert demo.returncode == 130, err.decode(errors="replace")[-3000:]
    assert out == b""
    assert b"every child process was stopped" in err
    assert not set(started) & set(_processes_with_prefix_start(children_prefix))

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
    args = ["demo", "--n", str(N), "--seed", "11", "--rate", "1500", "--timeout", "480"]
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
    run_dir = Path(s["run_dir"])
    assert run_dir.parent == (settings.state_dir / "demo").resolve()
    assert s["topic_prefix"] == f"{settings.topic_prefix}demo-{s['run_id']}."

    # every declaration produced is stored and scored once
    assert s["declarations_produced"] == N == _lines(run_dir / "data" / "declarations.jsonl")
    assert s["declarations"] == N
    assert s["scores"] == N
    assert s["dead_letters"] == 0
    assert s["replay"]["rejected"] == 0 and s["replay"]["delivery_errors"] == 0

    # every control result was replayed and stored
    assert s["controls_produced"] == _lines(run_dir / "data" / "controls.jsonl") > 0
    assert s["controls"] == s["controls_produced"]

    # alerts: ClickHouse, the demo's consumer group and the Redis stream agree
    assert s["alerts"] > 0
    assert s["alerts_in_redis"] == s["alerts"]
    stream = f"{settings.redis_prefix}.demo-{s['run_id']}:alerts"
    assert redis_client.xlen(stream) == s["alerts"]
    assert s["alert_rate"] == pytest.approx(s["alerts"] / s["scores"], abs=1e-6)
    assert all(s["consistent"].values()), s["consistent"]

    # alerted declarations with a control: hits cannot exceed controls
    on_alerts = s["controls_on_alerts"]
    assert 0 <= on_alerts["hits"] <= on_alerts["controls"] <= s["controls"]
    truth = s["truth"]
    assert 0 <= truth["frauds_alerted"] <= min(truth["frauds"], s["alerts"])

    # latencies measured on every score and every alert
    assert s["scoring_latency_ms"]["p50"] is not None
    assert s["scoring_latency_ms"]["p50"] <= s["scoring_latency_ms"]["p99"]
    e2e = s["end_to_end_ms"]
    assert e2e["produced_to_score"]["n"] == N
    assert e2e["produced_to_redis"]["n"] == s["alerts"]

    # each child process logged to the run directory
    logs = {p.stem for p in (run_dir / "logs").glob("*.log")}
    assert {"worker", "warehouse", "alerts", "web"} <= logs


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
        [*vigie_command(), "demo", "--n", "3000", "--rate", "50", "--json"],
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

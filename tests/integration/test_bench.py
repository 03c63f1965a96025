"""``vigie bench`` on the real stack: every scenario it ran processed every declaration.

A smoke test of the command's plumbing and result shape; no timing is asserted (the
figures are for people, on a machine whose load the test cannot know).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from vigie.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 2000


def test_raw_peer_and_worker_process_every_declaration(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    env = {
        **os.environ,
        "VIGIE_KAFKA_BOOTSTRAP": isolated_settings.bootstrap_servers,
        "VIGIE_REDIS_URL": isolated_settings.redis_dsn,
        "VIGIE_TOPIC_PREFIX": isolated_settings.topic_prefix,
        "VIGIE_STATE_DIR": str(tmp_path / "state"),
    }
    vigie = str(Path(sys.executable).with_name("vigie"))
    command = [vigie, "bench", "--declarations", str(N), "--only", "raw,peer,worker", "--json"]
    command += ["--results", str(results)]
    done = subprocess.run(command, env=env, capture_output=True, check=False, timeout=900)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result = orjson.loads(done.stdout)

    assert sorted(result) == ["machine", "ratios", "run", "scenarios", "targets"]
    assert result["run"]["n"] == N
    assert result["run"]["backlog_production"]["produced"] == N
    assert result["machine"]["cores"] >= 1
    assert len(result["machine"]["load_average"]) == 3
    scenarios = result["scenarios"]
    assert sorted(scenarios) == ["peer", "raw", "worker"]
    for name in ("raw", "peer", "worker"):
        assert scenarios[name]["declarations"] == N, name
        assert scenarios[name]["per_s"] > 0, name
    assert scenarios["raw"]["rejected"] == 0
    assert scenarios["peer"]["scores"] == N
    worker = scenarios["worker"]
    assert worker["scores"] == N
    assert worker["exit_codes"] == [0]
    assert worker["peak_rss_mb"] > 0
    rows = worker["warehouse"]["rows"]
    assert rows["declarations"] == N
    assert rows["scores"] == N
    assert rows["alerts"] > 0
    assert result["ratios"]["worker_vs_peer"] > 0
    cpu = worker["cpu"]  # the worker and the test stack's broker, both on this machine
    assert sorted(cpu["processes"]) == ["broker", "worker-0"]
    assert cpu["processes"]["worker-0"]["busiest_cores"] > 0
    assert 0 < cpu["machine"]["busy_cores"] <= cpu["machine"]["cores"] + 0.1
    assert result["ratios"]["scaling_bound"] == cpu["scaling_bound"] > 0
    cost = cpu["us_per_declaration"]
    assert cost["machine"] > 0 and cost["worker-0"] >= cost["busiest_threads"] > 0
    assert result["targets"]["worker_per_s"]["value"] == worker["per_s"]

    written = sorted(results.glob("bench-*.json"))
    assert len(written) == 1
    assert orjson.loads(written[0].read_bytes())["run"]["id"] == result["run"]["id"]
    latest = (results / "bench-latest.md").read_text()
    assert "| peer loop | 2,000 |" in latest
    assert written[0].name in latest
    assert not list((tmp_path / "state" / "bench").glob("run-*")), "the run's directory is left"

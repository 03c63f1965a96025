"""The local stack: real Kafka and Redis processes, started, inspected and stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from vigie.settings import Settings
from vigie_dev.stack import ServiceStatus, down, process, session, status, up
from vigie_dev.stack import kafka as stack_kafka
from vigie_dev.stack import redis as stack_redis

pytestmark = pytest.mark.integration

VIGIE = [sys.executable, "-c", "from vigie.cli import main; main()"]


def _vigie(*args: str, env: dict[str, str], local_only: bool = False) -> dict[str, Any]:
    """Run ``vigie ... --json``; ``local_only`` ignores external Kafka/Redis settings."""
    external = {"VIGIE_KAFKA_BOOTSTRAP", "VIGIE_REDIS_URL"} if local_only else set()
    base = {k: v for k, v in os.environ.items() if k not in external}
    done = subprocess.run(
        [*VIGIE, *args, "--json"],
        env={**base, **env},
        capture_output=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def _env(settings: Settings) -> dict[str, str]:
    env = {
        "VIGIE_STATE_DIR": str(settings.state_dir),
        "VIGIE_KAFKA_PORT": str(settings.kafka_port),
        "VIGIE_KAFKA_CONTROLLER_PORT": str(settings.kafka_controller_port),
        "VIGIE_REDIS_PORT": str(settings.redis_port),
    }
    if settings.clickhouse_url:
        env["VIGIE_CLICKHOUSE_URL"] = settings.clickhouse_url
    return env


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_session_stack_answers(stack: dict[str, ServiceStatus], stack_settings: Settings) -> None:
    assert {name: st.state for name, st in stack.items()} == {"kafka": "up", "redis": "up"}
    assert stack_kafka.answers(stack_settings.bootstrap_servers)
    assert stack_redis.answers(stack_settings.redis_dsn)


def test_up_twice_starts_nothing_new(
    stack: dict[str, ServiceStatus], stack_settings: Settings
) -> None:
    before = {name: st.pid for name, st in status(stack_settings).items()}
    again = up(stack_settings)
    assert {name: st.pid for name, st in again.items()} == before
    assert all(st.state == "up" for st in again.values())


def test_status_command_reports_both_services(
    stack: dict[str, ServiceStatus], stack_settings: Settings
) -> None:
    report = _vigie("stack", "status", env=_env(stack_settings))
    services = report["services"]
    assert services["kafka"]["state"] == services["redis"]["state"] == "up"
    assert services["kafka"]["address"] == stack_settings.bootstrap_servers
    if not stack_settings.uses_external_kafka:
        assert services["kafka"]["pid"] == stack["kafka"].pid


def test_warehouse_check_prints_the_engine_version(tmp_path: Path) -> None:
    report = _vigie("warehouse", "check", env={"VIGIE_CLICKHOUSE_URL": f"chdb://{tmp_path / 'ch'}"})
    assert report["engine"] == "chdb"
    major = int(report["version"].split(".")[0])
    assert major >= 23


@pytest.mark.slow
def test_full_lifecycle_through_the_command(tmp_path: Path) -> None:
    """up, up again, status, down, down again, on a throwaway stack with free ports."""
    kafka_port, controller_port, redis_port = _free_ports(3)
    settings = Settings(
        state_dir=tmp_path / "state",
        kafka_port=kafka_port,
        kafka_controller_port=controller_port,
        redis_port=redis_port,
    )
    env = _env(settings)

    def vigie(*args: str) -> dict[str, Any]:
        return _vigie(*args, env=env, local_only=True)

    started = vigie("stack", "up")["services"]
    pids = {name: svc["pid"] for name, svc in started.items()}
    try:
        assert started["kafka"]["state"] == started["redis"]["state"] == "up"
        assert started["kafka"]["managed"] and started["redis"]["managed"]
        assert {n: s["pid"] for n, s in vigie("stack", "up")["services"].items()} == pids
        assert Path(started["kafka"]["log"]).exists()
    finally:
        stopped = vigie("stack", "down")["stopped"]
    assert {name: s["stopped"] for name, s in stopped.items()} == {"kafka": True, "redis": True}
    assert not any(process.is_alive(pid) for pid in pids.values())
    after = vigie("stack", "status")["services"]
    assert after["kafka"]["state"] == after["redis"]["state"] == "down"
    assert vigie("stack", "down")["stopped"]["kafka"]["stopped"] is False


def test_down_leaves_a_foreign_process_alone(tmp_path: Path) -> None:
    """A PID file pointing at a process that is not the stack's does not get it killed."""
    settings = Settings(state_dir=tmp_path / "state", redis_port=_free_ports(1)[0])
    pidfile = stack_redis.paths(settings).pidfile
    pidfile.parent.mkdir(parents=True)
    stranger = process.spawn(["sleep", "60"], log=tmp_path / "sleep.log", pidfile=pidfile)
    try:
        report = down(settings)
        assert report["redis"] == {"stopped": False, "pid": None}
        assert process.is_alive(stranger)
    finally:
        process.stop(stranger, "sleep", grace_s=5)
    assert not process.is_alive(stranger)


def test_a_shared_stack_is_stopped_by_its_last_holder(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Leases: the stack outlives the session that started it while another holds it.

    Kafka is the session broker given as external (checked, never started or stopped);
    a Redis of its own on a free port is what gets started and stopped.
    """
    settings = Settings(
        state_dir=tmp_path / "state",
        kafka_bootstrap=kafka_bootstrap,
        redis_url=None,
        redis_port=_free_ports(1)[0],
    )
    leases = settings.state_dir / "leases"
    with session(settings) as first:
        assert first["kafka"].managed is False and first["kafka"].state == "up"
        assert first["redis"].managed and first["redis"].state == "up"
        redis_pid = first["redis"].pid
        assert redis_pid is not None
        other = process.spawn(["sleep", "120"], log=tmp_path / "other.log", pidfile=tmp_path / "o")
        (leases / str(other)).touch()
    try:
        assert status(settings)["redis"].pid == redis_pid, "stopped while another holder lives"
    finally:
        process.stop(other, "sleep", grace_s=5)
    with session(settings) as second:
        assert second["redis"].pid == redis_pid
    assert status(settings)["redis"].state == "down"
    assert not process.is_alive(redis_pid)
    assert stack_kafka.answers(kafka_bootstrap)

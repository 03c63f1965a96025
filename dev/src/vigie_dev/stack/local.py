"""Starting, stopping and inspecting the local stack: one Kafka broker and one Redis.

``up`` is idempotent: a service already running from this state directory is not started
twice, and a service whose address comes from the settings (``VIGIE_KAFKA_BOOTSTRAP``,
``VIGIE_REDIS_URL``) is only checked, never started. ``down`` stops exactly the processes
this state directory started, identified by PID file and command line.

>>> import tempfile
>>> from vigie.settings import Settings
>>> s = Settings(state_dir=Path(tempfile.mkdtemp()), kafka_bootstrap=None, kafka_port=1,
...              redis_url="redis://127.0.0.1:2")
>>> {name: st.state for name, st in status(s).items()}
{'kafka': 'down', 'redis': 'down'}
>>> status(s)["redis"].managed
False
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from vigie.errors import StackError
from vigie.settings import Settings
from vigie_dev.stack import kafka, process, redis

log = logging.getLogger(__name__)

State = Literal["up", "starting", "down"]


@dataclass(frozen=True)
class ServiceStatus:
    """What ``vigie stack status`` reports for one service."""

    name: str
    state: State
    address: str
    managed: bool
    """True when this state directory started the process (and ``down`` will stop it)."""
    pid: int | None = None
    log: str | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Service:
    name: str
    address: str
    url: str
    external: bool
    pidfile: Path
    log: Path
    marker: str
    port: int
    start: Callable[[Settings], int]
    answers: Callable[[str, float], bool]


def _services(settings: Settings) -> tuple[_Service, _Service]:
    kp, rp = kafka.paths(settings), redis.paths(settings)
    return (
        _Service(
            "kafka",
            settings.bootstrap_servers,
            settings.bootstrap_servers,
            settings.uses_external_kafka,
            kp.pidfile,
            kp.log,
            kafka.marker(settings),
            settings.kafka_port,
            kafka.start,
            kafka.answers,
        ),
        _Service(
            "redis",
            _host_port(settings.redis_dsn),
            settings.redis_dsn,
            settings.uses_external_redis,
            rp.pidfile,
            rp.log,
            redis.marker(settings),
            settings.redis_port,
            redis.start,
            redis.answers,
        ),
    )


def _host_port(url: str) -> str:
    """``host:port`` of a URL, without the credentials it may carry."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}"


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _status_one(svc: _Service) -> ServiceStatus:
    address = svc.address
    if svc.external:
        state: State = "up" if svc.answers(svc.url, 2.0) else "down"
        return ServiceStatus(svc.name, state, address, False, detail="external (from settings)")
    pid = process.read_pid(svc.pidfile)
    if process.is_ours(pid, svc.marker):
        state = "up" if svc.answers(svc.url, 2.0) else "starting"
        return ServiceStatus(svc.name, state, address, True, pid, str(svc.log))
    if _port_open(svc.port) and svc.answers(svc.url, 2.0):
        return ServiceStatus(
            svc.name, "up", address, False, detail="served by a process this stack did not start"
        )
    return ServiceStatus(svc.name, "down", address, False, log=str(svc.log))


def status(settings: Settings) -> dict[str, ServiceStatus]:
    """The state of each service: up, starting or down, with PID, address and log."""
    return {svc.name: _status_one(svc) for svc in _services(settings)}


def _wait_ready(svc: _Service, pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # A closed port is cheap to see; the protocol check waits for its full timeout.
        if _port_open(svc.port) and svc.answers(svc.url, 2.0):
            return
        if not process.is_alive(pid):
            raise StackError(
                f"{svc.name} exited during start-up; last lines of {svc.log}:\n"
                f"{process.log_tail(svc.log)}"
            )
        time.sleep(0.2)
    raise StackError(
        f"{svc.name} did not answer at {svc.address} within {timeout_s:.0f} s; "
        f"last lines of {svc.log}:\n{process.log_tail(svc.log)}"
    )


def _up_one(svc: _Service, settings: Settings, timeout_s: float) -> ServiceStatus:
    if svc.external:
        if not svc.answers(svc.url, 5.0):
            raise StackError(f"{svc.name} at {svc.url} (from the settings) does not answer")
        return _status_one(svc)
    pid = process.read_pid(svc.pidfile)
    if pid is not None and process.is_ours(pid, svc.marker):
        _wait_ready(svc, pid, timeout_s)
        return _status_one(svc)
    svc.pidfile.unlink(missing_ok=True)
    attempt = 1
    while True:
        if _port_taken(svc):
            if svc.answers(svc.url, 5.0):
                log.warning("%s: port %d is served by another process", svc.name, svc.port)
                return _status_one(svc)
            raise StackError(f"{svc.name}: port {svc.port} is taken by another program")
        log.info("starting %s on port %d", svc.name, svc.port)
        pid = svc.start(settings)
        try:
            _wait_ready(svc, pid, timeout_s)
            return _status_one(svc)
        except StackError:
            # a socket may have held the port for a moment: another try binds it
            busy = "Address already in use" in process.log_tail(svc.log)
            if attempt == START_ATTEMPTS or not busy:
                raise
        log.warning("%s: port %d was busy, starting again", svc.name, svc.port)
        time.sleep(attempt)
        attempt += 1


START_ATTEMPTS = 3
PORT_GRACE_S = 10.0
"""A port held by something that does not answer is given this long to be released (a
client socket of a stopped service, a TIME_WAIT), before it is said to be taken."""


def _port_taken(svc: _Service) -> bool:
    deadline = time.monotonic() + PORT_GRACE_S
    while _port_open(svc.port):
        if svc.answers(svc.url, 2.0) or time.monotonic() > deadline:
            return True
        time.sleep(0.5)
    return False


def up(settings: Settings, *, timeout_s: float = 180.0) -> dict[str, ServiceStatus]:
    """Start whatever is not running yet and wait until every service answers."""
    with process.locked(settings.state_dir.resolve() / "stack.lock"):
        return {svc.name: _up_one(svc, settings, timeout_s) for svc in _services(settings)}


def down(settings: Settings) -> dict[str, dict[str, Any]]:
    """Stop the processes this state directory started; report what was stopped."""
    report: dict[str, dict[str, Any]] = {}
    with process.locked(settings.state_dir.resolve() / "stack.lock"):
        for svc in _services(settings):
            pid = process.read_pid(svc.pidfile)
            stopped = pid is not None and process.stop(
                pid, svc.marker, grace_s=60.0, pidfile=svc.pidfile
            )
            svc.pidfile.unlink(missing_ok=True)
            report[svc.name] = {"stopped": stopped, "pid": pid if stopped else None}
    return report


@contextlib.contextmanager
def session(settings: Settings, *, timeout_s: float = 180.0) -> Iterator[dict[str, ServiceStatus]]:
    """Use the stack for a while (a test session, a benchmark), sharing it with others.

    Each holder leaves a lease (its PID) in the state directory. The last holder to leave
    stops the stack, and only if one of the holders started it.
    """
    leases = settings.state_dir.resolve() / "leases"
    leases.mkdir(parents=True, exist_ok=True)
    mine = leases / str(os.getpid())
    started_flag = leases / "started-by-a-session"
    lock = settings.state_dir.resolve() / "leases.lock"
    with process.locked(lock):
        before = status(settings)
        mine.touch()
        try:
            statuses = up(settings, timeout_s=timeout_s)
        except BaseException:
            mine.unlink(missing_ok=True)
            raise
        if any(before[n].state == "down" and statuses[n].managed for n in statuses):
            started_flag.touch()
    try:
        yield statuses
    finally:
        with process.locked(lock):
            mine.unlink(missing_ok=True)
            others = [p for p in leases.iterdir() if p.name.isdigit() and _holder_alive(p)]
            if not others and started_flag.exists():
                down(settings)
                started_flag.unlink(missing_ok=True)


def _holder_alive(lease: Path) -> bool:
    if process.is_alive(int(lease.name)):
        return True
    lease.unlink(missing_ok=True)
    return False

"""Running real workers and talking to real Kafka, for integration tests and benchmarks.

:class:`WorkerProcess` starts ``vigie worker`` as a subprocess configured only through the
environment (``VIGIE_KAFKA_BOOTSTRAP``, ``VIGIE_TOPIC_PREFIX``, ``VIGIE_STATE_DIR``,
``VIGIE_WORKER_WEB_PORT``, ...), waits for ``/ready`` and can stop it (SIGTERM) or kill it
(SIGKILL). :func:`produce` and :class:`TopicReader` are thin confluent-kafka helpers.
Nothing here is a stand-in: the worker, the broker and the HTTP endpoints are the real ones.

Examples
--------
>>> port = free_port()
>>> 1024 < port < 65536
True
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from vigie.errors import VigieError
from vigie.settings import Settings


def free_port() -> int:
    """A TCP port nobody listens on right now (web ports of workers, sinks, the demo)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_command() -> list[str]:
    """The ``vigie worker`` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("vigie")
    if script.exists():
        return [str(script), "worker"]
    return [sys.executable, "-c", "from vigie.cli import main; main()", "worker"]


class WorkerProcess:
    """One ``vigie worker`` subprocess with its own state directory and web port."""

    def __init__(
        self, settings: Settings, name: str = "worker", loglevel: str = "info", **env: str
    ) -> None:
        self.settings = settings
        self.name = name
        self.loglevel = loglevel
        self.port = free_port()
        self.token = uuid.uuid4().hex
        """Bearer token of the worker's /ready and /metrics."""
        self.state_dir = settings.state_dir / name
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.state_dir / "worker.log"
        self.env = {
            **os.environ,
            "VIGIE_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
            "VIGIE_TOPIC_PREFIX": settings.topic_prefix,
            "VIGIE_TOPIC_PARTITIONS": str(settings.topic_partitions),
            "VIGIE_STATE_DIR": str(self.state_dir),
            "VIGIE_WORKER_WEB_PORT": str(self.port),
            "VIGIE_WORKER_TOKEN": self.token,
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*worker_command(), "--loglevel", self.loglevel],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def get(self, path: str) -> tuple[int, bytes]:
        """GET a worker endpoint: (status, body); (0, b"") while nothing listens."""
        headers = {"Authorization": f"Bearer {self.token}"}
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, b""

    def post(self, path: str, body: bytes, token: str | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()

    def ready(self) -> dict[str, Any] | None:
        status, body = self.get("/ready")
        return orjson.loads(body) if status in (200, 503) and body else None

    def wait_ready(self, timeout: float = 180.0, partitions: int | None = None) -> dict[str, Any]:
        """Wait until /ready says ready (holding ``partitions`` partitions, if given)."""

        def check() -> dict[str, Any] | None:
            body = self.ready()
            if (
                body
                and body["ready"]
                and (partitions is None or len(body["partitions"]) == partitions)
            ):
                return body
            return None

        body: dict[str, Any] = wait_for(check, timeout, f"{self.name} ready", self)
        return body

    def metric(self, name: str, where: str = "") -> float:
        """The sum of the samples of a metric in /metrics whose line contains ``where``."""
        status, body = self.get("/metrics")
        if status != 200:
            raise VigieError(f"{self.name}: /metrics answered {status}")
        total = 0.0
        for line in body.decode().splitlines():
            if (
                line.startswith(name)
                and line[len(name) : len(name) + 1] in (" ", "{")
                and where in line
            ):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, then wait for a clean exit (SIGKILL after ``timeout``)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no snapshot, no commit, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_for(
    check: Callable[[], Any], timeout: float, what: str, worker: WorkerProcess | None = None
) -> Any:
    """Poll ``check`` until it returns something truthy; explain the timeout otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if worker is not None and not worker.alive():
            raise VigieError(f"{worker.name} exited while waiting for {what}:\n{worker.log_tail()}")
        time.sleep(0.5)
    tail = f"\n{worker.log_tail()}" if worker is not None else ""
    raise VigieError(f"timed out after {timeout:.0f} s waiting for {what}{tail}")


def run_json_script(script: str, env: dict[str, str], timeout: float = 300.0) -> Any:
    """Run ``script`` in a fresh Python process and decode the JSON of its last output line.

    For what must not run in the calling process: chDB admits one process per directory,
    and the pytest session may already hold its own.

    >>> run_json_script("import orjson; print(orjson.dumps({'answer': 6 * 7}).decode())",
    ...                 dict(os.environ))
    {'answer': 42}
    """
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise VigieError(f"script failed:\n{done.stderr.decode(errors='replace')[-3000:]}")
    return orjson.loads(done.stdout.splitlines()[-1])


def produce(
    settings: Settings,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes]],
    *,
    rate: float | None = None,
) -> int:
    """Produce (key, value) records to a catalogue topic, at most ``rate`` per second.

    Returns how many were acknowledged; raises if any was not.
    """
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 5, "acks": "all"}
    )
    failed: list[str] = []
    count = 0
    started = time.monotonic()
    for key, value in records:
        if rate is not None:
            ahead = count / rate - (time.monotonic() - started)
            if ahead > 0:
                producer.poll(ahead)
        while True:
            try:
                producer.produce(
                    settings.topic(topic),
                    value,
                    key,
                    on_delivery=lambda err, _msg: failed.append(str(err)) if err else None,
                )
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        producer.poll(0)
    if producer.flush(60) or failed:
        raise VigieError(f"produce to {topic}: {len(failed)} failed: {failed[:3]}")
    return count


def declaration_positions(
    settings: Settings, expected: int, timeout: float = 120.0
) -> dict[str, tuple[int, int]]:
    """(partition, offset) of every declaration in the ``declarations`` topic, read from
    the start until ``expected`` distinct ids are found or ``timeout`` seconds passed."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"test-positions-{uuid.uuid4().hex[:10]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([settings.topic("declarations")])
    positions: dict[str, tuple[int, int]] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(positions) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=5000, timeout=1.0):
                if msg.error() is None:
                    did = orjson.loads(msg.value() or b"{}")["declaration_id"]
                    positions[did] = (int(msg.partition() or 0), int(msg.offset() or 0))
    finally:
        consumer.close()
    return positions


class TopicReader:
    """Reads a catalogue topic from the beginning, with a consumer group of its own.

    ``quiet``: librdkafka's log lines (a broker stopped on purpose) are not printed.
    """

    def __init__(self, settings: Settings, topic: str, *, quiet: bool = False) -> None:
        from confluent_kafka import Consumer

        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.bootstrap_servers,
                "group.id": f"test-reader-{uuid.uuid4().hex[:10]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                **({"log_level": 0} if quiet else {}),
            }
        )
        self.consumer.subscribe([settings.topic(topic)])
        self.records: list[tuple[bytes | None, dict[str, Any], float]] = []
        """(key, decoded value, Kafka timestamp in seconds) of every record read so far."""

    def poll(self, seconds: float = 1.0) -> int:
        """Read what arrives within ``seconds``; return how many records were read."""
        deadline = time.monotonic() + seconds
        got = 0
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            value = msg.value() or b""
            self.records.append((msg.key(), orjson.loads(value), msg.timestamp()[1] / 1000.0))
            got += 1
        return got

    def read_until(
        self, done: Callable[[TopicReader], bool], timeout: float, what: str
    ) -> TopicReader:
        deadline = time.monotonic() + timeout
        while not done(self):
            if time.monotonic() > deadline:
                raise VigieError(f"timed out after {timeout:.0f} s reading {what}")
            self.poll(1.0)
        return self

    def values(self) -> list[dict[str, Any]]:
        return [value for _, value, _ in self.records]

    def close(self) -> None:
        self.consumer.close()

"""A Kafka broker and a Redis server of one's own, to stop, restart and freeze.

The fault suite stops brokers and freezes Redis: it must never touch the shared stack or
a test session's. :class:`PrivateStack` starts both with :mod:`vigie_dev.stack` (the
code of ``vigie stack up``) under a state directory of its own, on free ports, and only
ever signals the processes whose PID files it wrote there and whose command lines carry
that directory's configuration (:func:`vigie_dev.stack.process.stop` checks both).

Kafka's jars are those of another stack's state directory (``jars``, the test sessions'
one): resolved there once, under that stack's lock, and linked into each private stack,
so a run waits for Maven at most once.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

from vigie.errors import StackError
from vigie.settings import Settings
from vigie_dev.stack import down, kafka, process, redis, up

log = logging.getLogger(__name__)

START_TIMEOUT_S = 180.0
SHARED_PORTS = frozenset({19092, 19093, 16379, 29092, 29093, 26379, 9092, 6379})
"""The shared stack's, the test sessions' and the defaults: never this stack's (a port
free now could be one of theirs that is briefly down)."""


class PrivateStack:
    """One broker (KRaft) and one Redis under ``root``, on free ports.

    Parameters
    ----------
    root
        The stack's state directory (fresh: its data is not reused).
    jars
        The state directory of a stack whose Kafka jars are shared (resolved if missing).
    partitions
        Partitions of the catalogue's input and output topics.
    """

    def __init__(self, root: Path, jars: Path, partitions: int = 4) -> None:
        from vigie_dev.testing import free_port

        self.root = root
        self.jars = jars
        ports = sorted({free_port() for _ in range(8)} - SHARED_PORTS)
        kafka_port, controller_port, redis_port = ports[:3]
        self.settings = Settings(
            state_dir=root,
            kafka_bootstrap=None,  # started here, never the environment's
            redis_url=None,
            clickhouse_url=None,
            kafka_port=kafka_port,
            kafka_controller_port=controller_port,
            redis_port=redis_port,
            topic_partitions=partitions,
        )

    @property
    def client_settings(self) -> Settings:
        """Settings for the processes using the stack (addresses given, not started)."""
        s = self.settings
        return s.model_copy(
            update={"kafka_bootstrap": s.bootstrap_servers, "redis_url": s.redis_dsn}
        )

    def up(self) -> PrivateStack:
        """Start the broker and Redis, and wait until both answer."""
        self._link_jars()
        up(self.settings, timeout_s=START_TIMEOUT_S)
        return self

    def down(self) -> None:
        """Stop both (only the processes this stack started)."""
        self.thaw_redis()
        down(self.settings)

    # ------------------------------------------------------------------ Kafka
    def stop_kafka(self) -> None:
        """Stop the broker (SIGTERM: a controlled shutdown), wait until it is gone."""
        paths = kafka.paths(self.settings)
        self._stop(paths.pidfile, kafka.marker(self.settings), "kafka")

    def start_kafka(self) -> float:
        """Start the broker again on its data; the seconds until it answered."""
        began = time.monotonic()
        kafka.start(self.settings)
        self._wait(lambda: kafka.answers(self.settings.bootstrap_servers, 2.0), "kafka")
        return time.monotonic() - began

    # ------------------------------------------------------------------ Redis
    def stop_redis(self) -> None:
        """Stop Redis (SIGTERM: it writes its append-only file and exits)."""
        paths = redis.paths(self.settings)
        self._stop(paths.pidfile, redis.marker(self.settings), "redis")

    def start_redis(self) -> float:
        """Start Redis again on its append-only file; the seconds until it answered."""
        began = time.monotonic()
        redis.start(self.settings)
        self._wait(lambda: redis.answers(self.settings.redis_dsn, 2.0), "redis")
        return time.monotonic() - began

    def lose_redis(self) -> None:
        """SIGKILL Redis and delete its data: it starts again empty (a lost disk or host)."""
        paths = redis.paths(self.settings)
        pid = self._redis_pid()
        os.kill(pid, signal.SIGKILL)
        self._wait(lambda: not process.is_alive(pid), "redis (killed)")
        paths.pidfile.unlink(missing_ok=True)
        shutil.rmtree(paths.data)

    def freeze_redis(self) -> None:
        """SIGSTOP: Redis keeps its connections open and answers nothing."""
        os.kill(self._redis_pid(), signal.SIGSTOP)

    def thaw_redis(self) -> None:
        """SIGCONT (harmless when Redis is not frozen or not running)."""
        pid = process.read_pid(redis.paths(self.settings).pidfile)
        if pid is not None and process.is_ours(pid, redis.marker(self.settings)):
            os.kill(pid, signal.SIGCONT)

    # ------------------------------------------------------------------ helpers
    def _redis_pid(self) -> int:
        pid = process.read_pid(redis.paths(self.settings).pidfile)
        if pid is None or not process.is_ours(pid, redis.marker(self.settings)):
            raise StackError(f"no Redis of this stack is running under {self.root}")
        return pid

    def _stop(self, pidfile: Path, marker: str, name: str) -> None:
        pid = process.read_pid(pidfile)
        if pid is None or not process.stop(pid, marker, grace_s=60.0, pidfile=pidfile):
            raise StackError(f"no {name} of this stack is running under {self.root}")

    def _wait(self, done: Callable[[], bool], name: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not done():
            if time.monotonic() > deadline:
                raise StackError(f"{name} of {self.root}: still waiting after a restart")
            time.sleep(0.2)

    def _link_jars(self) -> None:
        """Resolve the jars into ``jars`` (once, under its stack's lock), link them here."""
        self.jars.mkdir(parents=True, exist_ok=True)
        with process.locked(self.jars.resolve() / "stack.lock"):
            libs = kafka.resolve_jars(Settings(state_dir=self.jars))
        target = kafka.paths(self.settings).libs
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(libs.resolve(), target_is_directory=True)

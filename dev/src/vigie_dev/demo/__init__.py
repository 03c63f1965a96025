"""``vigie demo``: the engine end to end on one machine, from a fresh clone.

A demo run lives in its own namespace (:mod:`vigie.cli.runs`), so runs never mix and a
second ``make demo`` starts from scratch: topics ``<prefix>demo-<run>.*``, Redis keys
``<redis prefix>.demo-<run>:*``, and a run directory ``<state dir>/demo/<run>/`` holding the
generated files, the children's logs, the worker's state, the webhook outbox and the
embedded warehouse. A run's directory and topics stay for inspection until the next run
starts and deletes them; its Redis keys are left to expire (the stream itself is capped by
``alerts_stream_maxlen``). Every command that reads a run takes ``--run <id>`` (or
``--run latest``), and the summary ends with those commands.

The steps (:class:`Demo`): start Kafka and Redis (idempotent), create the run's topics,
start the worker, the warehouse writer, the alert publisher and the webhook dispatcher as
child processes (:class:`Children`), generate the stream, replay declarations at a steady
rate with each day's control results right after that day's declarations
(:func:`interleave`), watch scores on Kafka (:class:`Watch`) and alerts in Redis as the
targeting service reads them, and signed webhooks as a local subscriber verifies them
(:class:`Receiver`); once every declaration is scored and every alert is in Redis and
delivered, stop the children, drain the writer (``--drain``) and read the summary
back from ClickHouse (:func:`compose`); last, start ``vigie web`` over a copy of the run's
warehouse with an adviser's and two companies' accounts (:mod:`vigie_dev.demo.web`): the
run's own warehouse stays free for ``vigie warehouse summary --run <id>`` (chDB admits one
process per directory).

The traffic is dated to end two weeks before the day the demo runs (exports included),
so that dashboards and pages opened on their default period show it.

Examples
--------
>>> s = run_settings(Settings(state_dir=Path("/tmp/v")), "r1", web_port=7000)
>>> s.topic("declarations"), s.redis_prefix, str(s.state_dir)
('demo-r1.declarations', 'vigie.demo-r1', '/tmp/v/demo/r1')
>>> env = child_env(s, {"PATH": "/bin", "VIGIE_TOPIC_PREFIX": "stale."})
>>> env["VIGIE_TOPIC_PREFIX"], env["VIGIE_KAFKA_BOOTSTRAP"], env["PATH"]
('demo-r1.', '127.0.0.1:19092', '/bin')
>>> percentiles([5.0, 1.0, 3.0, 2.0, 4.0])
{'p50': 3.0, 'p99': 5.0, 'n': 5}
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from vigie.cli import runs
from vigie.contracts.schemas import Alert
from vigie.settings import Settings
from vigie_dev.demo.figures import compose
from vigie_dev.demo.processes import Children, DemoError, child_env, vigie_command
from vigie_dev.demo.receiver import Receiver
from vigie_dev.demo.report import next_commands
from vigie_dev.demo.stream import ReplayThread, interleave
from vigie_dev.demo.watch import TopicWatcher, Watch, percentiles
from vigie_dev.demo.web import start_web, stop_previous
from vigie_dev.testing import free_port

log = logging.getLogger(__name__)


def run_settings(base: Settings, run_id: str, *, web_port: int) -> Settings:
    """The settings of one demo run (:func:`vigie.cli.runs.run_settings`), its worker
    serving on ``web_port``."""
    settings = runs.run_settings(base, run_id)
    return settings.model_copy(update={"worker_web_port": web_port})


TRAFFIC_DAYS = 90
EXPORT_SHARE = 0.15


def traffic_start() -> datetime:
    """The first day of the demo's traffic: it ends two weeks before today (UTC), so
    that the last control results, which come up to 15 days later, are not in the future."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=TRAFFIC_DAYS + 14)


def new_run_id() -> str:
    """A run id from the UTC wall clock, sortable: ``20261129t221501``."""
    return datetime.now(UTC).strftime("%Y%m%dt%H%M%S")


# ---------------------------------------------------------------------- the demo
@dataclass(frozen=True)
class DemoOptions:
    """What ``vigie demo`` runs: stream size, seed, replay rate, patience."""

    n: int = 20_000
    seed: int = 7
    rate: float = 2000.0
    timeout_s: float = 900.0
    """Longest wait, from the replay's start, for everything to be processed."""
    run_id: str = field(default_factory=new_run_id)


@dataclass
class Status:
    """What the display shows, refreshed on every turn of the demo's loop."""

    phase: str = "starting"
    started: float = field(default_factory=time.monotonic)
    replay: dict[str, Any] | None = None
    recent: deque[Alert] = field(default_factory=lambda: deque(maxlen=12))

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


View = Callable[["Demo"], None]


class Demo:
    """One demo run; :meth:`run` returns the summary (``vigie demo --json``)."""

    def __init__(self, base: Settings, options: DemoOptions, view: View | None = None) -> None:
        self.base = base
        self.options = options
        self.settings = run_settings(base, options.run_id, web_port=free_port()).model_copy(
            update={"worker_token": SecretStr(secrets.token_urlsafe(16))}
        )
        self.view = view or (lambda demo: None)
        self.status = Status()
        self.watch = Watch()
        self.receiver = Receiver()
        self.groups = {
            name: f"{self.settings.topic_prefix}{name}"
            for name in ("warehouse", "alerts", "webhooks")
        }

    @property
    def run_dir(self) -> Path:
        return self.settings.state_dir

    def run_summary(self) -> dict[str, Any]:
        """Where the run lives: its id, directory, topics, Redis keys and warehouse."""
        return {
            "id": self.options.run_id,
            "dir": str(self.run_dir.resolve()),
            "topic_prefix": self.settings.topic_prefix,
            "redis_prefix": self.settings.redis_prefix,
            "warehouse": self.settings.clickhouse_dsn.split("@")[-1],
        }

    def say(self, phase: str) -> None:
        self.status.phase = phase
        log.info("demo %s: %s", self.options.run_id, phase)
        self.view(self)

    def run(self) -> dict[str, Any]:
        self.prepare()
        files = self.generate()
        children = Children(self.settings)
        with self.receiver:
            try:
                self.start_services(children)
                pairs = interleave(*files[:2], self.run_dir / "stream")
                self.follow(children, ReplayThread(self.settings, pairs, self.options.rate))
            finally:
                self.say("stopping the worker and the sinks")
                children.stop_all()
        summary = self.summarize(children, files)
        self.say("starting the web app")
        summary["web"] = start_web(self.settings)
        summary["next"] = next_commands(self.options.run_id, summary["web"])
        return summary

    def prepare(self) -> None:
        """Stack up, previous runs removed, this run's topics created."""
        from vigie.cli import services
        from vigie.ingest.topics import admin_client, ensure_topics
        from vigie_dev.stack import up

        self.say("starting Kafka and Redis")
        if self.base.uses_external_kafka:
            services.require_kafka(self.base)
        if self.base.uses_external_redis:
            services.require_redis(self.base).close()
        up(self.base)
        self.say("removing previous demo runs, creating topics")
        self.remove_previous_runs(admin_client(self.base))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ensure_topics(self.settings)

    def remove_previous_runs(self, admin: Any) -> None:
        """Earlier runs of this state directory: their topics, then their directories.

        Only the topics of runs found in the directory are deleted, by their exact run
        prefix: other topics on a shared cluster are never touched.
        """
        from vigie.ingest.topics import delete_topics

        runs = self.run_dir.parent
        for path in sorted(runs.iterdir()) if runs.is_dir() else []:
            if path.is_dir() and path.name != self.options.run_id:
                stop_previous(path)
                prefix = f"{self.base.topic_prefix}demo-{path.name}."
                deleted = delete_topics(admin, prefix=prefix)
                log.info("run %s: %d topics deleted", path.name, len(deleted))
                shutil.rmtree(path, ignore_errors=True)

    def generate(self) -> tuple[Path, Path, Path]:
        """Declarations, control results and truth files of the run."""
        from vigie_dev.generator import GeneratorConfig, write_files

        self.say(f"generating {self.options.n:,} declarations (seed {self.options.seed})")
        data = self.run_dir / "data"
        files = (data / "declarations.jsonl", data / "controls.jsonl", data / "truth.jsonl")
        config = GeneratorConfig(
            n=self.options.n,
            seed=self.options.seed,
            start=traffic_start(),
            days=TRAFFIC_DAYS,
            export_share=EXPORT_SHARE,
        )
        write_files(config, *files)
        return files

    def start_services(self, children: Children) -> None:
        self.say("starting the worker, the warehouse writer and the alert publisher")
        children.start("worker", "worker", "--loglevel", "info")
        children.start("warehouse", "warehouse", "write", "--group", self.groups["warehouse"])
        children.start("alerts", "alerts", "publish", "--group", self.groups["alerts"])
        hooks = self.receiver.write_subscribers(self.run_dir / "webhooks.toml")
        children.start("webhooks", "webhooks", "dispatch", "--file", str(hooks),
                       "--group", self.groups["webhooks"], "--base-delay", "0.5",
                       "--max-delay", "10")  # fmt: skip
        self.say("waiting for the worker to be ready")
        children.wait_worker_ready(self.settings, self.settings.topic_partitions)

    def follow(self, children: Children, replay: ReplayThread) -> None:
        """Replay, watch scores and alerts until everything is processed."""
        from vigie.sinks.alert_feed import AlertFeed
        from vigie.sinks.redis_alerts import AlertKeys, redis_client

        feed = AlertFeed(
            redis_client(self.settings),
            AlertKeys(self.settings.redis_prefix),
            "targeting-demo",
            "demo",
        )
        feed.ensure_group()
        watcher = TopicWatcher(self.settings, self.watch)
        replay.start()
        self.say(f"replaying at {self.options.rate:,.0f} declarations/s")
        deadline = time.monotonic() + self.options.timeout_s
        try:
            while not self._done(replay):
                children.check()
                if replay.error is not None:
                    raise DemoError(f"replay failed: {replay.error!r}") from replay.error
                if time.monotonic() > deadline:
                    raise DemoError(f"not processed after {self.options.timeout_s:.0f} s: "
                                    + self.progress_line())  # fmt: skip
                watcher.poll()
                self._read_feed(feed)
                self.view(self)
        finally:
            replay.stopping.set()
            watcher.close()
            feed.client.close()

    def _read_feed(self, feed: Any) -> None:
        entries = feed.next_batch(500, block_ms=100)
        for entry in entries:
            did = entry.alert.score.declaration_id
            if self.watch.on_redis(did, entry.entry_id, entry.alert.kind):
                self.status.recent.appendleft(entry.alert)
        feed.ack(entries)

    def _done(self, replay: ReplayThread) -> bool:
        report = replay.report
        if report is None:
            return False
        if self.status.replay is None:
            self.status.replay = report
            self.say("waiting for the worker and the alert feed to catch up")
        w = self.watch
        delivered = self.receiver.tally.alerts
        return (
            len(w.scored) >= report["declarations"]
            and w.selected <= w.in_redis
            and len(delivered) >= len(w.selected)
            and {Alert.id_for(d) for d in w.selected} <= delivered
        )

    def progress_line(self) -> str:
        w = self.watch
        return (
            f"produced {len(w.produced_ms):,}, scored {len(w.scored):,}, "
            f"alerts {len(w.selected):,}, in Redis {len(w.in_redis):,}, "
            f"webhooks {len(self.receiver.tally.alerts):,}"
        )

    def summarize(self, children: Children, files: tuple[Path, Path, Path]) -> dict[str, Any]:
        """Drain the writer, then read the figures back from the warehouse."""
        self.say("writing the last records to ClickHouse")
        written = children.run("warehouse", "write", "--drain",
                               "--group", self.groups["warehouse"])  # fmt: skip
        self.say("reading the summary back from ClickHouse")
        warehouse = children.run("warehouse", "summary")
        return compose(self, warehouse, written, files)


__all__ = [
    "Children",
    "Demo",
    "DemoError",
    "DemoOptions",
    "Receiver",
    "ReplayThread",
    "Status",
    "TopicWatcher",
    "Watch",
    "child_env",
    "compose",
    "free_port",
    "interleave",
    "new_run_id",
    "percentiles",
    "run_settings",
    "vigie_command",
]

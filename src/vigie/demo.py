"""``vigie demo``: the engine end to end on one machine, from a fresh clone.

A demo run lives in its own namespace, so runs never mix and a second ``make demo`` starts
from scratch: topics ``<prefix>demo-<run>.*``, Redis keys ``<redis prefix>.demo-<run>:*``,
and a run directory ``<state dir>/demo/<run>/`` holding the generated files, the children's
logs, the worker's state, the webhook outbox and the embedded warehouse. Previous runs'
topics and Redis keys are deleted when a new run starts; their directories stay for
inspection until then.

The steps (:class:`Demo`): start Kafka and Redis (idempotent), create the run's topics,
start the worker, the warehouse writer, the alert publisher and the webhook dispatcher as
child processes (:class:`Children`), generate the stream, replay declarations at a steady
rate with each day's control results right after that day's declarations
(:func:`interleave`), watch scores on Kafka (:class:`Watch`) and alerts in Redis as the
targeting service reads them, then stop the children, drain the writer
(``--until-idle``) and read the summary back from ClickHouse.

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
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from vigie.errors import VigieError
from vigie.settings import Settings
from vigie.topics.catalogue import CONTROL_RESULTS, DECLARATIONS, SCORES
from vigie.topics.schemas import Alert

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 45.0
"""A child gets this long to stop after SIGTERM (the worker snapshots its models)."""


class DemoError(VigieError):
    """The demo could not complete: a child died, or processing did not finish in time."""


def run_settings(base: Settings, run_id: str, *, web_port: int) -> Settings:
    """The settings of one demo run: its own topics, Redis keys and directory."""
    return base.model_copy(
        update={
            "state_dir": base.state_dir / "demo" / run_id,
            "kafka_bootstrap": base.bootstrap_servers,
            "redis_url": base.redis_dsn,
            # an embedded warehouse belongs to one run (chDB: one process per directory)
            "clickhouse_url": None if _embedded(base) else base.clickhouse_url,
            "topic_prefix": f"{base.topic_prefix}demo-{run_id}.",
            "redis_prefix": f"{base.redis_prefix}.demo-{run_id}",
            "worker_web_port": web_port,
        }
    )


def _embedded(settings: Settings) -> bool:
    return settings.clickhouse_dsn.startswith("chdb:")


def new_run_id() -> str:
    """A run id from the wall clock, sortable: ``20261129t221501``."""
    return datetime.now().astimezone().strftime("%Y%m%dt%H%M%S")


def child_env(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of a child process: ``environ`` with every setting as ``VIGIE_*``."""
    env = {k: v for k, v in environ.items() if not k.startswith("VIGIE_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"VIGIE_{name.upper()}"] = str(value)
    return env


def vigie_command() -> list[str]:
    """The ``vigie`` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("vigie")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from vigie.cli import main; main()"]


def free_port() -> int:
    """A TCP port nobody listens on right now (the worker's web port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """p50 and p99 (nearest rank) of ``values``, and how many there were."""
    if not values:
        return {"p50": None, "p99": None, "n": 0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))], 1)

    return {"p50": rank(0.5), "p99": rank(0.99), "n": len(ordered)}


# ---------------------------------------------------------------------- child processes
@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    expected_exit: bool = False


class Children:
    """The demo's child processes, each logging to ``<run dir>/logs/<name>.log``.

    Children run in their own session, so a Ctrl-C in the terminal reaches the demo only,
    which then stops them in order with SIGTERM (SIGKILL after :data:`STOP_TIMEOUT_S`).
    """

    def __init__(self, settings: Settings) -> None:
        self.env = child_env(settings, os.environ)
        self.log_dir = settings.state_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.children: dict[str, Child] = {}

    def start(self, name: str, *args: str) -> Child:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as out:
            proc = subprocess.Popen(
                [*vigie_command(), *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.children[name] = child = Child(name, proc, log_path)
        return child

    def run(self, *args: str, timeout: float = 600.0) -> dict[str, Any]:
        """Run a ``vigie ... --json`` command to completion; its JSON result."""
        done = subprocess.run(
            [*vigie_command(), *args, "--json"],
            env=self.env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise DemoError(f"vigie {' '.join(args)} failed: {done.stderr.decode()[-2000:]}")
        result: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
        return result

    def check(self) -> None:
        """Raise :class:`DemoError` if a child exited on its own, with its log's end."""
        for child in self.children.values():
            code = child.proc.poll()
            if code is not None and not child.expected_exit:
                raise DemoError(
                    f"{child.name} exited with status {code}; end of {child.log_path}:\n"
                    + tail(child.log_path)
                )

    def stop(self, name: str) -> int | None:
        """SIGTERM, wait, SIGKILL if needed; the exit status."""
        child = self.children.get(name)
        if child is None:
            return None
        child.expected_exit = True
        if child.proc.poll() is None:
            with suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s: killed", name, STOP_TIMEOUT_S)
                child.proc.kill()
                child.proc.wait()
        return child.proc.returncode

    def stop_all(self) -> None:
        for name in reversed(list(self.children)):
            self.stop(name)


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({exc})"


# ---------------------------------------------------------------------- the stream
def _day(line: bytes, field_name: str) -> str:
    return str(orjson.loads(line)[field_name])[:10]


def interleave(declarations: Path, controls: Path, out_dir: Path) -> list[tuple[Path, Path]]:
    """Cut the stream by lodging day; each day's control results follow its declarations.

    Returns (declarations, controls) file pairs to replay in order: the controls file of a
    day holds the results controlled on or before that day (the rest follow the last day).
    Both input files are in event-time order, as ``vigie generate`` writes them.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    pending = iter(controls.read_bytes().splitlines())
    control = next(pending, None)
    pairs: list[tuple[Path, Path]] = []
    for day, lines in _by_day(declarations):
        decl_path, ctl_path = out_dir / f"{day}.jsonl", out_dir / f"{day}.controls.jsonl"
        decl_path.write_bytes(b"\n".join(lines) + b"\n")
        due: list[bytes] = []
        while control is not None and _day(control, "controlled_at") <= day:
            due.append(control)
            control = next(pending, None)
        ctl_path.write_bytes(b"".join(c + b"\n" for c in due))
        pairs.append((decl_path, ctl_path))
    rest = [] if control is None else [control, *pending]
    if pairs:
        pairs[-1][1].write_bytes(pairs[-1][1].read_bytes() + b"".join(c + b"\n" for c in rest))
    return pairs


def _by_day(path: Path) -> Iterator[tuple[str, list[bytes]]]:
    day, lines = "", list[bytes]()
    with path.open("rb") as f:
        for raw in f:
            line = raw.rstrip(b"\n")
            if not line:
                continue
            this = _day(line, "lodged_at")
            if lines and this != day:
                yield day, lines
                lines = []
            day = this
            lines.append(line)
    if lines:
        yield day, lines


# ---------------------------------------------------------------------- watching
@dataclass
class Watch:
    """What the demo has seen: produce times, scores on Kafka, alerts read from Redis."""

    produced_ms: dict[str, int] = field(default_factory=dict)
    scored: set[str] = field(default_factory=set)
    selected: set[str] = field(default_factory=set)
    in_redis: set[str] = field(default_factory=set)
    to_score_ms: list[float] = field(default_factory=list)
    to_redis_ms: list[float] = field(default_factory=list)

    def on_declaration(self, declaration_id: str, timestamp_ms: int) -> None:
        self.produced_ms.setdefault(declaration_id, timestamp_ms)

    def on_score(self, value: bytes, timestamp_ms: int) -> None:
        score = orjson.loads(value)
        did = score["declaration_id"]
        if did in self.scored:
            return
        self.scored.add(did)
        if score["selected"]:
            self.selected.add(did)
        produced = self.produced_ms.get(did)
        if produced is not None:
            self.to_score_ms.append(float(timestamp_ms - produced))

    def on_redis(self, declaration_id: str, entry_id: str) -> bool:
        """Record an alert read from the stream; False if it was seen before."""
        if declaration_id in self.in_redis:
            return False
        self.in_redis.add(declaration_id)
        produced = self.produced_ms.get(declaration_id)
        if produced is not None:
            self.to_redis_ms.append(float(int(entry_id.split("-")[0]) - produced))
        return True


class TopicWatcher:
    """Reads ``declarations`` (produce times) and ``scores`` of the run from the start."""

    def __init__(self, settings: Settings, watch: Watch) -> None:
        from confluent_kafka import Consumer

        self.watch = watch
        self.declarations = settings.topic(DECLARATIONS.name)
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.bootstrap_servers,
                "group.id": f"{settings.topic_prefix}demo-watch",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.subscribe([self.declarations, settings.topic(SCORES.name)])

    def poll(self, timeout: float = 0.05) -> int:
        """Consume what is there; how many messages were read."""
        messages = self.consumer.consume(num_messages=2000, timeout=timeout)
        for m in messages:
            value = m.value()
            if m.error() is not None or value is None:
                continue
            timestamp = int(m.timestamp()[1])
            if m.topic() == self.declarations:
                self.watch.on_declaration(orjson.loads(value)["declaration_id"], timestamp)
            else:
                self.watch.on_score(value, timestamp)
        return len(messages)

    def close(self) -> None:
        self.consumer.close()


# ---------------------------------------------------------------------- replaying
class ReplayThread(threading.Thread):
    """Replays the interleaved stream through one producer, off the display's thread."""

    def __init__(self, settings: Settings, pairs: list[tuple[Path, Path]], rate: float) -> None:
        super().__init__(name="demo-replay", daemon=True)
        self.settings, self.pairs, self.rate = settings, pairs, rate
        self.stopping = threading.Event()
        self.report: dict[str, Any] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.report = self._replay()
        except BaseException as exc:  # reported by the demo's loop, on its own thread
            self.error = exc

    def _replay(self) -> dict[str, Any]:
        from vigie.replay.pipeline import Replay
        from vigie.replay.producer import KafkaProducer

        producer = KafkaProducer(self.settings)
        declarations = Replay(producer, topic=DECLARATIONS.name, rate=self.rate)
        controls = Replay(producer, topic=CONTROL_RESULTS.name)
        declarations.check_topics()
        for decl_path, control_path in self.pairs:
            if self.stopping.is_set():
                break
            declarations.replay_file(decl_path)
            controls.replay_file(control_path)
        done, ctl = declarations.finish(), controls.finish()
        return {
            "declarations": done.produced,
            "controls": ctl.produced,
            "rejected": done.rejected + ctl.rejected,
            "delivery_errors": done.delivery_errors + ctl.delivery_errors,
            "seconds": done.seconds,
            "declarations_per_s": round(done.produced / done.seconds, 1) if done.seconds else None,
        }


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
        self.settings = run_settings(base, options.run_id, web_port=free_port())
        self.view = view or (lambda demo: None)
        self.status = Status()
        self.watch = Watch()
        self.groups = {
            name: f"{self.settings.topic_prefix}{name}" for name in ("warehouse", "alerts")
        }

    @property
    def run_dir(self) -> Path:
        return self.settings.state_dir

    def say(self, phase: str) -> None:
        self.status.phase = phase
        log.info("demo %s: %s", self.options.run_id, phase)
        self.view(self)

    def run(self) -> dict[str, Any]:
        self.prepare()
        files = self.generate()
        children = Children(self.settings)
        try:
            self.start_services(children)
            replay = ReplayThread(self.settings, interleave(*files[:2], self.run_dir / "stream"),
                                  self.options.rate)  # fmt: skip
            self.follow(children, replay)
        finally:
            self.say("stopping the worker and the sinks")
            children.stop_all()
        return self.summarize(children, files)

    def prepare(self) -> None:
        """Stack up, previous runs removed, this run's topics created."""
        from vigie.stack import up
        from vigie.stack.topics import admin_client, delete_topics, ensure_topics

        self.say("starting Kafka and Redis")
        up(self.base)
        self.say("removing previous demo runs, creating topics")
        old = delete_topics(admin_client(self.base), prefix=f"{self.base.topic_prefix}demo-")
        log.info("deleted %d topics of previous demo runs", len(old))
        runs = self.run_dir.parent
        if runs.is_dir():
            for path in runs.iterdir():
                if path.is_dir() and path.name != self.options.run_id:
                    shutil.rmtree(path, ignore_errors=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ensure_topics(self.settings)

    def generate(self) -> tuple[Path, Path, Path]:
        """Declarations, control results and truth files of the run."""
        from vigie.generator import GeneratorConfig, write_files

        self.say(f"generating {self.options.n:,} declarations (seed {self.options.seed})")
        data = self.run_dir / "data"
        files = (data / "declarations.jsonl", data / "controls.jsonl", data / "truth.jsonl")
        write_files(GeneratorConfig(n=self.options.n, seed=self.options.seed), *files)
        return files

    def start_services(self, children: Children) -> None:
        self.say("starting the worker, the warehouse writer and the alert publisher")
        children.start("worker", "worker", "--loglevel", "info")
        children.start("warehouse", "warehouse", "write", "--group", self.groups["warehouse"])
        children.start("alerts", "alerts", "publish", "--group", self.groups["alerts"])

    def follow(self, children: Children, replay: ReplayThread) -> None:
        """Replay, watch scores and alerts until everything is processed."""
        from vigie.sinks.redis_alerts import AlertFeed, AlertKeys, redis_client

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
            if self.watch.on_redis(did, entry.entry_id):
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
        return len(w.scored) >= report["declarations"] and w.selected <= w.in_redis

    def progress_line(self) -> str:
        w = self.watch
        return (
            f"produced {len(w.produced_ms):,}, scored {len(w.scored):,}, "
            f"alerts {len(w.selected):,}, in Redis {len(w.in_redis):,}"
        )

    def summarize(self, children: Children, files: tuple[Path, Path, Path]) -> dict[str, Any]:
        """Drain the writer, then read the figures back from the warehouse."""
        self.say("writing the last records to ClickHouse")
        written = children.run("warehouse", "write", "--until-idle",
                               "--group", self.groups["warehouse"])  # fmt: skip
        self.say("reading the summary back from ClickHouse")
        warehouse = children.run("warehouse", "summary")
        return compose(self, warehouse, written, files)


# ---------------------------------------------------------------------- the summary
def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


def controls_on(path: Path, alerted: set[str]) -> dict[str, Any]:
    """Control results of alerted declarations: how many, how many hits, what was recovered."""
    n = hits = 0
    recovered = 0.0
    for result in _jsonl(path):
        if result["declaration_id"] in alerted:
            n += 1
            hits += result["outcome"] != "compliant"
            recovered += float(result.get("recovered_eur") or 0.0)
    return {
        "controls": n,
        "hits": hits,
        "hit_rate": round(hits / n, 4) if n else None,
        "recovered_eur": round(recovered, 2),
    }


def against_truth(path: Path, alerted: set[str]) -> dict[str, Any]:
    """The generator's ground truth: precision of the alerts, frauds and duty gap caught."""
    frauds = caught = 0
    gap = gap_caught = 0.0
    for row in _jsonl(path):
        if row["typology"] is None:
            continue
        frauds += 1
        gap += float(row["duty_gap_eur"])
        if row["declaration_id"] in alerted:
            caught += 1
            gap_caught += float(row["duty_gap_eur"])
    return {
        "frauds": frauds,
        "frauds_alerted": caught,
        "precision": round(caught / len(alerted), 4) if alerted else None,
        "recall": round(caught / frauds, 4) if frauds else None,
        "duty_gap_eur": round(gap, 2),
        "duty_gap_alerted_eur": round(gap_caught, 2),
    }


def compose(
    demo: Demo, warehouse: dict[str, Any], written: dict[str, Any], files: tuple[Path, ...]
) -> dict[str, Any]:
    """The demo's summary: warehouse figures first, then what the demo itself measured."""
    replay = demo.status.replay or {}
    alerted = demo.watch.in_redis
    produced = int(replay.get("declarations", 0))
    return {
        "run_id": demo.options.run_id,
        "run_dir": str(demo.run_dir.resolve()),
        "topic_prefix": demo.settings.topic_prefix,
        "seconds": round(demo.status.elapsed_s, 1),
        "declarations_produced": produced,
        "controls_produced": int(replay.get("controls", 0)),
        "declarations": warehouse["declarations"],
        "scores": warehouse["scores"],
        "alerts": warehouse["alerts"],
        "alerts_in_redis": len(alerted),
        "alert_rate": warehouse["alert_rate"],
        "controls": warehouse["controls"],
        "hit_rate_all_controls": warehouse["hit_rate"],
        "controls_on_alerts": controls_on(files[1], alerted),
        "duty_at_risk_eur": warehouse["duty_at_risk_eur"],
        "expected_recoverable_alerted_eur": warehouse["expected_recoverable_selected_eur"],
        "recovered_eur": warehouse["recovered_eur"],
        "scoring_latency_ms": warehouse["latency_ms"],
        "end_to_end_ms": {
            "produced_to_score": percentiles(demo.watch.to_score_ms),
            "produced_to_redis": percentiles(demo.watch.to_redis_ms),
        },
        "dead_letters": warehouse["dead_letters"]["total"],
        "truth": against_truth(files[2], alerted),
        "replay": replay,
        "drained_rows": written.get("rows", {}),
        "consistent": {
            "declarations": warehouse["declarations"] == produced,
            "scores": warehouse["scores"] == produced,
            "alerts_redis_warehouse": warehouse["alerts"] == len(alerted),
        },
    }

"""The Faust worker app, built from :class:`~vigie.settings.Settings`.

Design decisions (what the README describes)
--------------------------------------------
**One RiskEngine per ``declarations`` partition.** Declarations are keyed by importer, so
an importer's behavioural state lives on one partition; the engine of partition *p* moves
with *p* when the consumer group rebalances.

**Control results reach the right engine by fan-out.** ``control-results`` is keyed by
declaration id, so a result is read by whichever worker owns its partition, not the one
that holds the declaration's features. The control agent copies each valid result to every
partition of an internal topic, ``<prefix>control-results.by-partition``, that has as many
partitions as ``declarations``: Faust co-partitions topics with equal partition counts, so
partition *p* of that topic is always consumed next to ``declarations`` partition *p*, by
the worker holding engine *p*. Each engine is given the result (``learn_control``); only
the engine holding that declaration's pending features learns (it returns True), the
others return False. A result that arrives before its declaration is parked in a bounded
buffer of the partition state and learnt right after the declaration. Why not a
``declaration id -> partition`` table: it would be a second, unbounded piece of state to
keep consistent with the engines, and the Kafka partitioner of the producers (librdkafka's
CRC32 vs. Java's murmur2) would decide where keys land; the fan-out costs P small records
per control result (controls are a few per cent of declarations) and needs no state.

**State: snapshots plus replay from the snapshot's offsets** (not Faust changelog tables:
a pickled engine is one large value that every record would rewrite). Each partition's
engine is pickled together with the offsets it has consumed (:mod:`vigie.worker.state`)
every :data:`SNAPSHOT_INTERVAL_S` seconds (less often as the models grow, so that snapshots
take at most ~1/20 of the time), when partitions are revoked and on a clean shutdown, into
the compacted ``model-state`` topic. Before a snapshot is written the producer is flushed
and the delivery of every output it covers is checked (a failure stops the worker before
the snapshot), so a restored state never stands for a Score or Alert missing from Kafka.
On assignment the worker restores the latest snapshot and *commits the snapshot's offsets
+ 1* for ``declarations`` and the fan-out topic before Faust seeks to the committed offsets
and resumes the streams (``on_rebalance_complete`` runs just before that seek). The
snapshot, not Faust's periodic commits of acknowledged offsets, is therefore the position
of record: records after it are replayed once (their Scores are sent again with the same
declaration id, which idempotent sinks deduplicate), records before it are never learnt
twice, and a record redelivered for any other reason (offset <= the state's offset) is
skipped. Processing is at-least-once on the output topics, exactly-once on the models. A
snapshot that cannot be unpickled, or whose engine's attributes differ from a fresh one's
(an engine class changed by an upgrade: :func:`~vigie.worker.state.layout_differences`), is
logged and counted, and the partition's model is rebuilt by replaying its log.

**Control results are learnt at snapshots, so a replay scores as the first pass did.** The
two input topics interleave differently on every run, so an engine given each result as it
is read would score a replayed declaration with other labels than the first time: its
Score could differ, and an Alert could be missing for a Score that was selected before a
crash. The worker therefore keeps the results it reads with the partition state and gives
them to the engine, in fan-out order, when it snapshots the partition
(:func:`~vigie.worker.agents.learn_received`): every point where an engine learnt labels
is saved together with what it produced, and between two snapshots the engine learns from
declarations alone, deterministically. A restored state additionally waits, before it is
given any result, until it has reached the end the log had when it was restored (what a
previous owner may have scored); a new model is snapshotted before it scores anything, so
a partition without a snapshot was never scored. A replay then emits the same risk,
selection and Alert for each declaration, and "idempotent sinks" means "the same record".
Labels come days after their declarations, so learning them one snapshot interval later
(5 s, more for large models) changes little; a worker catching up on a backlog learns its
labels once it has caught up.

Examples
--------
>>> from vigie.settings import Settings
>>> s = Settings(topic_prefix="t-1.", kafka_bootstrap="h1:9092,h2:9092")
>>> broker_urls(s)
['kafka://h1:9092', 'kafka://h2:9092']
>>> fanout_topic(s)
't-1.control-results.by-partition'
>>> app_id(s)
't-1.vigie-worker'
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import faust
from faust.types import TP

from vigie.contracts.catalogue import (
    ALERTS,
    CONTROL_FANOUT,
    CONTROL_RESULTS,
    DEAD_LETTERS,
    DECLARATIONS,
    MODEL_STATE,
    SCORES,
)
from vigie.errors import VigieError
from vigie.settings import Settings
from vigie.worker.agents import learn_received
from vigie.worker.metrics import WorkerMetrics
from vigie.worker.state import (
    PartitionState,
    SnapshotStore,
    compress,
    layout,
    layout_differences,
)

log = logging.getLogger(__name__)

SNAPSHOT_INTERVAL_S = 5.0
SNAPSHOT_COST_FACTOR = 20.0
"""At most about 1/20 of the time goes to snapshots (all partitions together), however
large the models grow."""
EngineFactory = Callable[[int], Any]


def broker_urls(settings: Settings) -> list[str]:
    return [f"kafka://{host.strip()}" for host in settings.bootstrap_servers.split(",")]


def fanout_topic(settings: Settings) -> str:
    return settings.topic(CONTROL_FANOUT.name)


def app_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}vigie-worker"


def default_engine(partition: int) -> Any:
    """A fresh RiskEngine with the contract's defaults, seeded by partition."""
    from vigie.model.engine import RiskEngine

    return RiskEngine(seed=partition)


class Registry:
    """The partition states this worker holds, and which are still being restored."""

    def __init__(self) -> None:
        self.states: dict[int, PartitionState] = {}
        self._ready: dict[int, asyncio.Event] = {}

    def expect(self, partitions: set[int]) -> None:
        """A new assignment: these partitions are to be restored (and no others)."""
        for p in [p for p, ev in self._ready.items() if p not in partitions and not ev.is_set()]:
            del self._ready[p]
        for p in partitions:
            self._ready.setdefault(p, asyncio.Event())

    def put(self, state: PartitionState) -> None:
        self.states[state.partition] = state
        self._ready.setdefault(state.partition, asyncio.Event()).set()

    def drop(self, partition: int) -> None:
        self.states.pop(partition, None)
        self._ready.pop(partition, None)

    @property
    def pending(self) -> list[int]:
        return sorted(p for p, ev in self._ready.items() if not ev.is_set())

    async def get(self, partition: int, timeout: float = 120.0) -> PartitionState | None:
        """The state of ``partition``, waiting while it is restored; None if not held."""
        state = self.states.get(partition)
        if state is not None:
            return state
        ready = self._ready.get(partition)
        if ready is None:
            return None
        try:
            await asyncio.wait_for(ready.wait(), timeout)
        except TimeoutError:
            return None
        return self.states.get(partition)


class Runtime:
    """Everything a worker process holds: the Faust app, its topics, state and metrics."""

    def __init__(self, settings: Settings, engine_factory: EngineFactory | None = None) -> None:
        self.settings = settings
        self.engine_factory = engine_factory or default_engine
        self.metrics = WorkerMetrics()
        self.registry = Registry()
        self.rebalanced = False
        self._next_snapshot: dict[int, float] = {}
        self._inflight: dict[int, list[Any]] = {}
        self._snapshot_lock = asyncio.Lock()
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(
            app_id(settings),
            broker=broker_urls(settings),
            store="memory://",
            datadir=str(settings.state_dir.resolve() / "worker"),
            web_port=settings.worker_web_port,
            topic_partitions=settings.topic_partitions,
            topic_disable_leader=True,
            producer_acks=-1,
            producer_linger=0.005,  # batch Scores: far fewer produce requests at 1,000/s
            consumer_auto_offset_reset="earliest",
            # a killed worker's partitions move after this long (Faust's default is 60 s)
            broker_session_timeout=15.0,
            autodiscover=False,
        )
        self.declarations = self._raw(settings.topic(DECLARATIONS.name))
        self.dead_letters = self._raw(settings.topic(DEAD_LETTERS.name))
        self.controls = self._raw(settings.topic(CONTROL_RESULTS.name))
        self.scores = self._raw(settings.topic(SCORES.name))
        self.alerts = self._raw(settings.topic(ALERTS.name))
        self.model_state = self._raw(settings.topic(MODEL_STATE.name))
        self.fanout = self.app.topic(
            fanout_topic(settings),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
            internal=True,
            retention=timedelta(milliseconds=int(CONTROL_FANOUT.config["retention.ms"])),
        )
        self.store = SnapshotStore(settings, self._send_state)
        self.app.on_partitions_assigned.connect(cast(Any, self._on_assigned))
        self.app.on_rebalance_complete.connect(cast(Any, self._on_rebalance_complete))
        self.app.on_partitions_revoked.connect(cast(Any, self._on_revoked))
        self.app.on_before_shutdown.connect(cast(Any, self._on_shutdown))
        self.app.timer(1.0)(self._snapshot_due)

    def _raw(self, name: str) -> Any:
        return self.app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    async def emit(self, partition: int, topic: Any, key: bytes | None, value: bytes) -> None:
        """Send an output record of declarations partition ``partition``.

        Straight to the transport producer (Faust's ``Topic.send`` layers cost more than
        the engine at 1,000 records/s); the delivery future is kept and checked before
        the partition's next snapshot, so a snapshot never covers a lost output.
        """
        pending = await self.app.producer.send(topic.get_topic_name(), key, value, None, None, None)
        self._inflight.setdefault(partition, []).append(pending)

    def _delivered(self, partition: int, pending: list[Any]) -> None:
        failed = [f.exception() for f in pending if f.done() and f.exception() is not None]
        unsent = sum(1 for f in pending if not f.done())
        if failed or unsent:
            raise VigieError(
                f"partition {partition}: {len(failed)} outputs failed ({failed[:3]}) and "
                f"{unsent} are unsent after a flush; not snapshotting past them"
            )

    async def _send_state(self, partition: int, key: bytes, value: bytes) -> int:
        pending = await self.model_state.send(key=key, value=value, partition=partition)
        meta = await pending
        return int(meta.offset)

    def _partitions_of(self, topic: str, tps: set[TP] | None = None) -> set[int]:
        tps = tps if tps is not None else self.app.consumer.assignment()
        return {tp.partition for tp in tps if tp.topic == topic}

    # ------------------------------------------------------------------ rebalancing
    async def _on_assigned(self, sender: Any, *args: Any, signal: Any, **_: Any) -> None:
        assigned: set[TP] = args[0]
        self.registry.expect(self._partitions_of(self.declarations.get_topic_name(), assigned))

    async def _on_rebalance_complete(self, sender: Any, *_: Any, signal: Any, **__: Any) -> None:
        """Restore every assigned partition, then commit its snapshot's position."""
        topic = self.declarations.get_topic_name()
        mine = self._partitions_of(topic)
        restored: dict[int, PartitionState] = {}
        for p in sorted(mine - self.registry.states.keys()):
            state = await self._restore(p)
            if state is not None:
                restored[p] = state
                continue
            # A new model is saved before it scores anything, so a partition without a
            # snapshot has never been scored: no previous owner's Scores to score again.
            state = PartitionState(p, self.engine_factory(p))
            await self.snapshot(state)
            self.registry.put(state)
        ends = await self._log_ends(topic, sorted(restored))
        for p, state in restored.items():
            state.replaying_until = ends.get(p, 0) - 1
            log.info(
                "partition %d restored at declarations offset %d; its controls are learnt "
                "once it reaches offset %d",
                p,
                state.declarations_offset,
                state.replaying_until,
            )
            self.registry.put(state)
        for p in list(self.registry.states):
            if p not in mine:
                self.registry.drop(p)
        await self._commit_positions(mine)
        self.metrics.partitions.set(len(self.registry.states))
        self.rebalanced = True

    async def _log_ends(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """The next offset of each partition of ``topic`` (what a previous owner may have
        scored ends before it); empty, with an error logged, when the broker cannot say."""
        if not partitions:
            return {}
        try:
            ends = await self.app.consumer.highwaters(*(TP(topic, p) for p in partitions))
        except Exception as exc:
            log.error("end offsets of %s unknown (%r): controls learnt without waiting", topic, exc)
            return {}
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    async def _restore(self, partition: int) -> PartitionState | None:
        """The latest snapshot; None (start from the log) when there is none or it cannot
        be read back.

        A snapshot written by an incompatible engine version (a changed class) cannot be
        unpickled: the partition's model is then rebuilt by replaying ``declarations``
        and the fan-out from their start, which re-emits Scores the sinks deduplicate.
        """
        try:
            state = await asyncio.to_thread(self.store.load, partition)
            if state is not None and (
                changed := layout_differences(state.layout, layout(self.engine_factory(partition)))
            ):
                raise TypeError(f"the engine class changed since the snapshot: {changed[:5]}")
            return state
        except VigieError:
            raise
        except Exception as exc:  # unpickling runs arbitrary class code
            log.error(
                "snapshot of partition %d unreadable (%r): rebuilding its model from the log",
                partition,
                exc,
            )
            self.metrics.restore_failures.inc()
            return None

    async def _commit_positions(self, partitions: set[int]) -> None:
        offsets: dict[TP, int] = {}
        for p in partitions:
            state = self.registry.states[p]
            offsets[TP(self.declarations.get_topic_name(), p)] = state.declarations_offset + 1
            offsets[TP(self.fanout.get_topic_name(), p)] = state.controls_offset + 1
        if offsets:
            await self.app.consumer._commit(offsets)  # type: ignore[attr-defined]
            log.info("positions committed from model state: %s", offsets)
        # aiokafka's seek to committed offsets skips an offset of 0 (`if offset and offset >
        # 0`): a model rebuilt from the log (or never snapshotted) is sent to the start here
        for tp in [tp for tp, offset in offsets.items() if offset == 0]:
            await self.app.consumer.seek(tp, 0)

    async def _on_revoked(self, sender: Any, *args: Any, signal: Any, **_: Any) -> None:
        revoked: set[TP] = args[0]
        for p in sorted(self._partitions_of(self.declarations.get_topic_name(), revoked)):
            state = self.registry.states.get(p)
            if state is not None:
                await self.snapshot(state)
            self.registry.drop(p)
        self.metrics.partitions.set(len(self.registry.states))

    async def _on_shutdown(self, sender: Any, *_: Any, signal: Any, **__: Any) -> None:
        await self._snapshot_all()

    # ------------------------------------------------------------------ snapshots
    async def _snapshot_due(self) -> None:
        """Timer: snapshot the most overdue partition (one per tick spreads the pauses)."""
        now = time.monotonic()
        due = [
            (self._next_snapshot.get(p, 0.0), p)
            for p in self.registry.states
            if now >= self._next_snapshot.get(p, 0.0)
        ]
        if due:
            state = self.registry.states.get(min(due)[1])
            if state is not None:
                await self.snapshot(state)

    async def _snapshot_all(self) -> None:
        for state in list(self.registry.states.values()):
            await self.snapshot(state)

    async def snapshot(self, state: PartitionState, *, force: bool = False) -> bool:
        """Write ``state`` if it changed since its last snapshot; True when written.

        A large model is snapshotted less often: the next timer snapshot of the partition
        waits at least :data:`SNAPSHOT_COST_FACTOR` times what this one took, times the
        number of partitions held. Snapshots are written one
        at a time, so two writes of one partition never interleave their chunks.
        """
        async with self._snapshot_lock:
            return await self._snapshot(state, force=force)

    async def _snapshot(self, state: PartitionState, *, force: bool) -> bool:
        started = time.monotonic()
        async with state.lock:
            learnt, others = learn_received(state)
            self.metrics.controls_learnt.inc(learnt)
            self.metrics.controls_unknown.inc(others)
            position = state.position
            if not force and position == state.saved_position:
                return False
            state.saved_position = position
            raw = state.pickled()
            pending = self._inflight.pop(state.partition, [])
        self.metrics.snapshot_seconds.labels(phase="pickle").observe(time.monotonic() - started)
        blob = await asyncio.to_thread(compress, raw)
        # Everything the snapshot covers was sent before it was taken: make it durable
        # first, so a restored state never stands for a Score that is not in Kafka.
        await self.app.producer.flush()
        self._delivered(state.partition, pending)
        try:
            saved = await self.store.save(state, blob)
        except BaseException:
            state.saved_position = None
            raise
        elapsed = time.monotonic() - started
        self.metrics.snapshot_seconds.labels(phase="total").observe(elapsed)
        held = max(1, len(self.registry.states))
        interval = max(SNAPSHOT_INTERVAL_S, SNAPSHOT_COST_FACTOR * elapsed * held)
        self._next_snapshot[state.partition] = time.monotonic() + interval
        self.metrics.snapshots.inc()
        self.metrics.snapshot_bytes.labels(partition=str(state.partition)).set(saved.size)
        return True

    # ------------------------------------------------------------------ observability
    def readiness(self) -> dict[str, Any]:
        """Ready when the group has assigned partitions and every one is restored."""
        pending = self.registry.pending
        ready = self.rebalanced and not pending and not self.app.rebalancing
        return {
            "ready": ready,
            "rebalancing": bool(self.app.rebalancing),
            "partitions": sorted(self.registry.states),
            "restoring": pending,
            "models": [s.summary() for s in self.registry.states.values()],
        }

    def refresh_gauges(self) -> None:
        """Consumer lag and model counters, computed at scrape time."""
        topic = self.declarations.get_topic_name()
        self.metrics.consumer_lag.clear()
        for p, state in self.registry.states.items():
            self.metrics.model_learnt.labels(partition=str(p)).set(state.declarations_learnt)
            try:
                high = self.app.consumer.highwater(TP(topic, p))
            except Exception:  # consumer not started or partition unknown yet
                continue
            if high is not None and high >= 0:
                lag = max(0, int(high) - (state.declarations_offset + 1))
                self.metrics.consumer_lag.labels(topic=topic, partition=str(p)).set(lag)


def build(settings: Settings, engine_factory: EngineFactory | None = None) -> Runtime:
    """The worker for ``settings``: app, agents and web endpoints wired together."""
    from vigie.worker import agents, web

    runtime = Runtime(settings, engine_factory)
    agents.attach(runtime)
    web.attach(runtime)
    return runtime


def run(settings: Settings, *, loglevel: str = "warning") -> None:
    """Run a worker in the foreground until SIGTERM/SIGINT (snapshots on the way out)."""
    runtime = build(settings)
    worker = faust.Worker(runtime.app, loglevel=loglevel, quiet=True)
    # Faust's terminal spinner puts the root logger at DEBUG so that every record spins it:
    # every library's debug call then builds a log record (a few per cent of the CPU).
    worker.spinner = None
    worker.execute_from_commandline()

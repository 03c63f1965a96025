"""The worker's Kafka side: one thread reads, scores, learns, sends and checkpoints.

One confluent-kafka consumer reads ``declarations``, ``control-results`` and the control
fan-out topic in a group with the *range* assignor, so partition *p* of each topic lands
on the same worker: the engine of ``declarations`` partition *p* and its fan-out partition
*p* always live together. The thread owns every engine; nothing else touches them.

* A declaration is scored, then learnt; its Score (and Alert) are sent. A batch is taken
  in three passes: every declaration decoded, then scored and learnt, then the outputs
  sent. Each pass keeps its own code and tables in the processor's caches: the worker
  scores about a fifth more declarations a second than one record at a time did.
* A control result is validated and copied to every fan-out partition.
* A fan-out record is kept with its partition's state until the next checkpoint.

On assignment each partition's state is restored from its snapshot and the consumer starts
right after the snapshot's offsets; a partition without a snapshot starts a new model,
snapshotted before it scores anything. See docs/recovery.md.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from vigie import kafka
from vigie.contracts.catalogue import (
    ALERTS,
    CONTROL_FANOUT,
    CONTROL_RESULTS,
    DEAD_LETTERS,
    DECLARATIONS,
    SCORES,
)
from vigie.contracts.codec import dead_letter, decode, encode
from vigie.contracts.schemas import ControlResult
from vigie.errors import ConfigurationError, DecodeError
from vigie.settings import Settings
from vigie.worker.checkpoint import Checkpoint, CheckpointReport
from vigie.worker.layout import layout, layout_differences
from vigie.worker.metrics import Tally, WorkerMetrics
from vigie.worker.outputs import Outputs
from vigie.worker.processing import Scored, decode_record, receive_control, score_decoded
from vigie.worker.snapshots import SnapshotStore
from vigie.worker.state import PartitionState

log = logging.getLogger(__name__)

EngineFactory = Callable[[int], Any]
BATCH = 500
"""Records taken from the consumer at once, at most."""
POLL_S = 0.1
"""How long a take waits for its first record (then :data:`LINGER_S` for company)."""
LINGER_S = 0.0
"""How long a batch waits for company after its first record: not at all. What the
consumer has already fetched comes at once (a full batch under load); a batch costs the
worker little, so a lone declaration is not held back for company."""
SNAPSHOT_COST_FACTOR = 20.0
"""Deltas take at most about 1/20 of the time, however large the models grow (full
snapshots are paid per chain, :mod:`vigie.worker.snapshots`)."""


def engine_factory(settings: Settings) -> EngineFactory:
    """A fresh RiskEngine per partition, with the configured engine settings."""
    from vigie.model.engine import RiskEngine

    options = settings.engine.options()
    seed = options.pop("seed")
    return lambda partition: RiskEngine(seed=seed + partition, **options)


def consumer_config(settings: Settings) -> dict[str, Any]:
    """The group consumer: range assignment (co-partitioning), offsets committed by hand.

    >>> consumer_config(Settings(topic_prefix="t."))["partition.assignment.strategy"]
    'range'
    """
    return kafka.consumer_config(
        settings,
        f"{settings.topic_prefix}vigie-worker",
        client_id="vigie-worker",
        overrides={
            "partition.assignment.strategy": "range",
            "enable.auto.offset.store": False,
            "max.poll.interval.ms": 600_000,  # a large restore or snapshot may take minutes
        },
    )


def snapshot_producer(settings: Settings) -> Any:
    """The producer of snapshots: every delivery reported (the manifest names offsets)."""
    from confluent_kafka import Producer

    return Producer(
        kafka.producer_config(settings, client_id="vigie-worker-state", overrides={"linger.ms": 1})
    )


class Topics:
    """The physical names of the topics the worker reads and writes."""

    def __init__(self, settings: Settings) -> None:
        self.declarations = settings.topic(DECLARATIONS.name)
        self.controls = settings.topic(CONTROL_RESULTS.name)
        self.fanout = settings.topic(CONTROL_FANOUT.name)
        self.scores = settings.topic(SCORES.name)
        self.alerts = settings.topic(ALERTS.name)
        self.dead_letters = settings.topic(DEAD_LETTERS.name)


class ScoringLoop:
    """Everything the worker does with Kafka, run by :meth:`run` in a thread of its own.

    Parameters
    ----------
    settings
        Topics, broker, engine settings.
    metrics
        The worker's metrics (also updated from this thread).
    new_engine
        Builds a fresh engine for a partition (default: :func:`engine_factory`).
    """

    def __init__(
        self,
        settings: Settings,
        metrics: WorkerMetrics,
        new_engine: EngineFactory | None = None,
    ) -> None:
        self.settings = settings
        self.topics = Topics(settings)
        self.metrics = metrics
        self.new_engine = new_engine or engine_factory(settings)
        self.states: dict[int, PartitionState] = {}
        self.outputs = Outputs(settings)
        self.store = SnapshotStore(settings, snapshot_producer(settings))
        self.checkpoint = Checkpoint(self.outputs, self.store, self._commit, metrics)
        self.status: dict[str, Any] = {"ready": False, "rebalancing": False, "partitions": []}
        """What /ready shows, replaced whole by the loop (readers never see it half-built)."""
        self.error: BaseException | None = None
        self._controls_read: dict[int, int] = {}
        self._next_checkpoint: dict[int, float] = {}
        self._assigned = False
        self._rebalancing = False
        self._gauges_at = 0.0
        self._tally = Tally()
        self._stop = threading.Event()
        self._consumer: Any = None
        self._handlers = {
            self.topics.controls: self._on_control,
            self.topics.fanout: self._on_fanout,
        }

    # ------------------------------------------------------------------ running
    def stop(self) -> None:
        """Ask the loop to checkpoint and leave the group."""
        self._stop.set()

    def run(self) -> None:
        """Consume until stopped; a clean stop checkpoints every partition first."""
        from confluent_kafka import Consumer

        consumer = self._consumer = Consumer(consumer_config(self.settings))
        consumer.subscribe(
            [self.topics.declarations, *self._handlers],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            self._publish()
            while not self._stop.is_set():
                self._tally = Tally()
                declarations: list[tuple[Any, PartitionState]] = []
                for message in kafka.take(consumer, BATCH, POLL_S, LINGER_S):
                    self._handle(message, declarations)
                for message, out in self._score_declarations(declarations):
                    self._send(message, out)
                self._tally.add_to(self.metrics)
                self.outputs.poll()
                self._checkpoint_due()
                self._publish()
            self._checkpoint(list(self.states.values()), force=True)
        except BaseException as exc:
            self.error = exc
            log.critical("the scoring loop stopped: %r", exc, exc_info=True)
            raise
        finally:
            self.checkpoint.abandon()
            consumer.close()
            self.status = {**self.status, "ready": False}

    def _handle(self, message: Any, declarations: list[tuple[Any, PartitionState]]) -> None:
        """Handle a control or fan-out record now; add a declaration to score, with its
        partition's state, to ``declarations``."""
        error = message.error()
        if error is not None:
            log.warning("kafka: %s", error)
            return
        if message.topic() != self.topics.declarations:
            self._handlers[message.topic()](message)
            return
        state = self._to_score(message)
        if state is not None:
            declarations.append((message, state))

    # ------------------------------------------------------------------ records
    def _to_score(self, message: Any) -> PartitionState | None:
        """The state of a declarations record's partition; None if it is not held here, or
        if the record was scored before (a batch holds each offset once, in order)."""
        partition = message.partition()
        state = self.states.get(partition)
        if state is None:
            log.warning("declarations[%d] is not held here; record skipped", partition)
            return None
        if message.offset() <= state.declarations_offset:
            self._tally.skipped += 1
            return None
        return state

    def _score_declarations(
        self, declarations: list[tuple[Any, PartitionState]]
    ) -> list[tuple[Any, Scored]]:
        """Decode every declaration of the batch, then score and learn each in order; the
        outputs, for the caller to send once the whole batch is scored.

        Each pass keeps its code and tables in the processor's caches (the engine's calls
        follow one another), and librdkafka gets the outputs in one burst: the broker's
        CPU per declaration fell from 14-21 to 5-7 us. A Score waits at most for the rest
        of its batch (500 declarations: about 30 ms)."""
        topic, max_bytes = self.topics.declarations, self.settings.max_message_bytes
        decoded = [
            decode_record(message.key(), message.value(), source_topic=topic, max_bytes=max_bytes)
            for message, _ in declarations
        ]
        scored = []
        for (message, state), decl in zip(declarations, decoded, strict=True):
            if isinstance(decl, Scored):  # a dead letter
                out = decl
            else:
                out = score_decoded(state, decl, message.key(), message.value(), source_topic=topic)
            scored.append((message, out))
            state.declarations_offset = message.offset()
        return scored

    def _send(self, message: Any, out: Scored) -> None:
        tally = self._tally
        if out.seen == "repeat":
            tally.repeated += 1
            return
        if out.dead_letter is not None:
            self.outputs.send(self.topics.dead_letters, message.key(), encode(out.dead_letter))
            tally.dead_letters[out.dead_letter.reason] += 1
            return
        assert out.score_json is not None
        self.outputs.send(self.topics.scores, out.key, out.score_json)
        if out.alert_json is not None:
            self.outputs.send(self.topics.alerts, out.key, out.alert_json)
            tally.alerts += 1
        tally.declarations += 1
        tally.amended += out.seen == "amendment"
        tally.controls_learnt += out.controls_learnt
        self.metrics.scoring_latency.observe(out.engine_seconds)
        kind, stamp = message.timestamp()
        if kind and stamp > 0:
            self.metrics.end_to_end_latency.observe(max(0.0, time.time() - stamp / 1000.0))

    def _on_control(self, message: Any) -> None:
        """Validate a control result and copy it to every fan-out partition."""
        self._controls_read[message.partition()] = message.offset()
        try:
            result = decode(
                ControlResult, message.value(), max_bytes=self.settings.max_message_bytes
            )
        except DecodeError as exc:
            letter = dead_letter(self.topics.controls, message.key(), message.value(), exc)
            self.outputs.send(self.topics.dead_letters, message.key(), encode(letter))
            self._tally.dead_letters[letter.reason] += 1
            return
        key, value = result.declaration_id.encode(), encode(result)
        for p in range(self.settings.topic_partitions):
            self.outputs.send(self.topics.fanout, key, value, partition=p)
        self._tally.controls_received += 1

    def _on_fanout(self, message: Any) -> None:
        state = self.states.get(message.partition())
        if state is None:
            log.warning("fan-out[%d] is not held here; record skipped", message.partition())
            return
        receive_control(state, message.offset(), message.value())

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint_due(self) -> None:
        """Go on with the checkpoint in flight (a slice, or its closing delta), else start
        one for the most overdue partition (one at a time spreads the work)."""
        report = self.checkpoint.collect()
        if report is not None:
            self._scheduled(report)
        if self.checkpoint.in_flight is not None:
            return
        now = time.monotonic()
        due = [(self._next_checkpoint.get(p, 0.0), p) for p in self.states]
        due = [(at, p) for at, p in due if at <= now]
        if due:
            report = self.checkpoint.start(self.states[min(due)[1]])
            if report is not None:
                self._scheduled(report)

    def _checkpoint(self, states: list[PartitionState], *, force: bool = False) -> None:
        """Checkpoint ``states`` now (after the checkpoint in flight, if any)."""
        self._scheduled(self.checkpoint.run(states, force=force))

    def _scheduled(self, report: CheckpointReport) -> None:
        """After a checkpoint: the state out of the collector's sight, the next one set."""
        # What outlived a checkpoint is the models' state: moved out of the collector's
        # sight, or each full collection scans it all (2 s at 150,000 declarations). The
        # young generations are collected first (about 1 ms), so their garbage is not
        # frozen; the engine makes no cycles (none found over 15,000 declarations).
        gc.collect(1)
        gc.freeze()
        held = max(1, len(self.states))
        # A delta costs what changed since the last snapshot: spacing them keeps their work
        # under a twentieth of the time. A full snapshot is paid once per chain (its deltas
        # weigh as much, docs/recovery.md); spacing after one only makes the next delta big.
        spent = 0.0 if report.full else report.seconds
        interval = max(
            self.settings.engine.snapshot_interval_s, SNAPSHOT_COST_FACTOR * spent * held
        )
        for partition in report.partitions:
            self._next_checkpoint[partition] = time.monotonic() + interval

    def _commit(self, states: Iterable[PartitionState]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        offsets = [
            TopicPartition(self.topics.controls, p, o + 1) for p, o in self._controls_read.items()
        ]
        for state in states:
            declarations, fanout = state.position
            offsets.append(
                TopicPartition(self.topics.declarations, state.partition, declarations + 1)
            )
            offsets.append(TopicPartition(self.topics.fanout, state.partition, fanout + 1))
        offsets = [tp for tp in offsets if tp.offset > 0]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # positions live in the snapshots: only lag shows it
            log.warning("offset commit failed, retried at the next checkpoint: %s", exc)

    # ------------------------------------------------------------------ rebalancing
    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        self._rebalancing = True
        self._publish()
        mine = sorted(tp.partition for tp in partitions if tp.topic == self.topics.declarations)
        for p in list(self.states):
            if p not in mine:
                self._drop(p)
        for p in mine:
            if p not in self.states:
                self.states[p] = self._restore_or_create(p)
        for tp in partitions:
            state = self.states.get(tp.partition)
            if state is not None and tp.topic == self.topics.declarations:
                tp.offset = state.declarations_offset + 1
            elif state is not None and tp.topic == self.topics.fanout:
                tp.offset = state.controls_offset + 1
        consumer.assign(partitions)
        self.metrics.partitions.set(len(self.states))
        self._assigned, self._rebalancing = True, False
        self._publish()

    def _restore_or_create(self, partition: int) -> PartitionState:
        state = self._restore(partition)
        if state is not None:
            state.replaying_until = self._log_end(partition) - 1
            log.info(
                "partition %d restored at declarations offset %d; its controls are learnt "
                "once it reaches offset %d",
                partition,
                state.declarations_offset,
                state.replaying_until,
            )
            return state
        # A new model is saved before it scores anything, so a partition without a
        # snapshot was never scored: no previous owner's Scores to score again.
        state = PartitionState(
            partition, self.new_engine(partition), self.settings.engine.max_pending
        )
        self.checkpoint.run([state], force=True)
        return state

    def _restore(self, partition: int) -> PartitionState | None:
        """The latest snapshot; None (rebuild from the log) when there is none or it
        cannot be read back, with an error logged and counted."""
        try:
            state = self.store.load(partition)
            if state is not None and (
                changed := layout_differences(state.layout, layout(self.new_engine(partition)))
            ):
                raise TypeError(f"the engine class changed since the snapshot: {changed[:5]}")
            return state
        except ConfigurationError:
            raise
        except Exception as exc:  # unpickling runs arbitrary class code
            log.error(
                "snapshot of partition %d unreadable (%r): rebuilding its model from the log",
                partition,
                exc,
            )
        self.metrics.restore_failures.inc()
        return None

    def _log_end(self, partition: int) -> int:
        """The next offset of ``declarations`` partition ``partition`` (0 if unknown)."""
        from confluent_kafka import TopicPartition

        try:
            _, high = kafka.watermarks(
                self._consumer, TopicPartition(self.topics.declarations, partition), 30
            )
            return high
        except Exception as exc:
            log.error("end of declarations[%d] unknown (%r): controls learnt now", partition, exc)
            return 0

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self._rebalancing = True
        revoked = [tp.partition for tp in partitions if tp.topic == self.topics.declarations]
        states = [self.states[p] for p in revoked if p in self.states]
        try:
            self._checkpoint(states)
        except Exception:  # the next owner restores the last good snapshot: nothing is lost
            log.exception("checkpoint of revoked partitions %s failed", revoked)
        for p in revoked:
            self._drop(p)
        self._controls_read.clear()
        self.metrics.partitions.set(len(self.states))
        self._publish()

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        lost = [tp.partition for tp in partitions if tp.topic == self.topics.declarations]
        log.warning("partitions %s lost: their models are dropped without a checkpoint", lost)
        self.checkpoint.abandon(lost)
        for p in lost:
            self._drop(p)
        self._controls_read.clear()
        self.metrics.partitions.set(len(self.states))

    def _drop(self, partition: int) -> None:
        self.states.pop(partition, None)
        self._next_checkpoint.pop(partition, None)

    # ------------------------------------------------------------------ observability
    def _publish(self) -> None:
        """Refresh what /ready shows and, once a second, the gauges."""
        ready = self._assigned and not self._rebalancing and self.error is None
        self.status = {
            "ready": ready,
            "rebalancing": self._rebalancing,
            "partitions": sorted(self.states),
            "models": [s.summary() for s in self.states.values()],
        }
        if time.monotonic() - self._gauges_at >= 1.0:
            self._gauges_at = time.monotonic()
            self._refresh_gauges()

    def _refresh_gauges(self) -> None:
        from confluent_kafka import TopicPartition

        topic, m = self.topics.declarations, self.metrics
        m.consumer_lag.clear()
        for p, state in self.states.items():
            m.model_learnt.labels(partition=str(p)).set(state.declarations_learnt)
            _, high = self._consumer.get_watermark_offsets(TopicPartition(topic, p), cached=True)
            if high is not None and high >= 0:
                lag = max(0, int(high) - (state.declarations_offset + 1))
                m.consumer_lag.labels(topic=topic, partition=str(p)).set(lag)

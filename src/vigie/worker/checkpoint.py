"""A checkpoint makes a partition's progress durable, in four steps, always in this order.

1. **Learn**: each engine is given the control results received since the last
   checkpoint (``learn_received``), so every point where an engine learnt labels is saved
   with the state it produced.
2. **Flush outputs**: every Score, Alert, dead letter and fan-out copy sent so far is
   acknowledged by Kafka, or the checkpoint stops here.
3. **Save state**: each state that moved since its last snapshot is snapshotted.
4. **Commit positions**: the consumer group's offsets are set to what the snapshots cover
   (and, for ``control-results``, to what was read and fanned out).

The loop's periodic checkpoints do not stop scoring for step 3 (:meth:`Checkpoint.start`,
then :meth:`Checkpoint.collect` at each turn of the loop, one checkpoint in flight at a
time):

* a **delta** is pickled by a forked child (:mod:`vigie.worker.forked`): steps 1 and 2 run,
  the child is forked, and the loop goes on; once the child is done, its delta is written,
  then the positions *it* covered are committed, not those the loop has reached since;
* a **full snapshot** is written a slice at a time between batches, while the model goes
  on learning (:class:`vigie.worker.increments.FullSnapshot`), then closed by a delta as
  above, which holds everything that changed meanwhile. The manifest naming the new chain
  is written with that delta: until then a restore reads the previous chain.

A stop, a rebalance or a new partition checkpoints in the loop's thread, all four steps
at once (:meth:`Checkpoint.run`), after finishing the checkpoint in flight.

A restore starts each partition right after its snapshot's offsets; the committed
offsets are there for monitoring (consumer lag) and for ``control-results``. Why this
order, and what each step guarantees: docs/recovery.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from vigie.errors import VigieError
from vigie.worker import forked, increments
from vigie.worker.chain import Chain
from vigie.worker.metrics import WorkerMetrics
from vigie.worker.outputs import Outputs
from vigie.worker.processing import learn_received
from vigie.worker.snapshots import PartWriter, SavedSnapshot, SnapshotStore
from vigie.worker.state import PartitionState

log = logging.getLogger(__name__)

CHILD_TIMEOUT_S = 600.0
"""How long a child may pickle before it is killed (and the next snapshot is full)."""
SLICE_S = 0.005
"""A full snapshot's slice between two batches takes at least this long..."""
SLICE_SHARE = 0.25
"""...and at most about this share of the time since the previous slice: a full snapshot
slows the loop down by a fifth at most, and takes about five times its own work."""


@dataclass(frozen=True)
class Covered:
    """The offsets a checkpoint covers, committed once its snapshots are saved."""

    positions: dict[int, tuple[int, int]]
    """Per partition: the last ``declarations`` and fan-out offsets given to its engine."""
    controls: dict[int, int]
    """Per ``control-results`` partition: the last offset read and fanned out."""


Commit = Callable[[Covered], None]


@dataclass
class CheckpointReport:
    """What one checkpoint did."""

    partitions: list[int] = field(default_factory=list)
    learnt: int = 0
    saved: int = 0
    full: bool = False
    """Whether a full snapshot was among those saved (the others are deltas)."""
    bytes: int = 0
    seconds: float = 0.0
    """The work it took, a forked child's included."""

    def add(self, other: CheckpointReport) -> None:
        self.partitions += [p for p in other.partitions if p not in self.partitions]
        self.learnt += other.learnt
        self.saved += other.saved
        self.full |= other.full
        self.bytes += other.bytes
        self.seconds += other.seconds


@dataclass
class _Delta:
    """A delta a forked child is pickling."""

    state: PartitionState
    child: forked.PickledInChild
    covered: Covered
    changes: int
    previous: Chain | None
    """The chain the manifest names: what a failure falls back to."""
    report: CheckpointReport


@dataclass
class _Full:
    """A full snapshot being written a slice at a time."""

    state: PartitionState
    snapshot: increments.FullSnapshot
    writer: PartWriter
    previous: Chain | None
    report: CheckpointReport
    sliced_at: float = field(default_factory=time.monotonic)


class Checkpoint:
    """Runs the four steps for a set of partition states.

    Parameters
    ----------
    outputs
        The worker's producer (step 2).
    store
        Where snapshots go (step 3).
    commit
        Commits the offsets a checkpoint covered (step 4).
    metrics
        The worker's metrics.
    controls_read
        The ``control-results`` offsets read and fanned out so far, by partition.
    fork
        Whether :meth:`start` checkpoints without stopping the loop: deltas pickled by a
        forked child, full snapshots in slices. Else :meth:`start` is :meth:`run`.
    """

    def __init__(
        self,
        outputs: Outputs,
        store: SnapshotStore,
        commit: Commit,
        metrics: WorkerMetrics,
        controls_read: Callable[[], dict[int, int]] = dict,
        *,
        fork: bool = forked.AVAILABLE,
    ) -> None:
        self.outputs = outputs
        self.store = store
        self.commit = commit
        self.metrics = metrics
        self.controls_read = controls_read
        self.fork = fork
        self.in_flight: _Delta | _Full | None = None

    # ------------------------------------------------------------------ in the thread
    def run(self, states: Iterable[PartitionState], *, force: bool = False) -> CheckpointReport:
        """Checkpoint ``states`` now, all four steps in this thread (the checkpoint in
        flight is finished first and reported with it); ``force`` snapshots even those
        that did not move."""
        report = self.finish()
        started = time.monotonic()
        states = list(states)
        report.partitions += [s.partition for s in states if s.partition not in report.partitions]
        report.learnt += self._learn(states)  # 1. learn
        self.outputs.flush()  # 2. flush outputs
        covered = self._covered(states)
        for state in states:  # 3. save state
            if force or state.changed:
                size, full = self._save(state)
                report.bytes += size
                report.saved += 1
                report.full |= full
        self.commit(covered)  # 4. commit positions
        report.seconds += time.monotonic() - started
        return report

    def finish(self) -> CheckpointReport:
        """Finish the checkpoint in flight, waiting for it (an empty report if none)."""
        report = CheckpointReport()
        while self.in_flight is not None:
            done = self.collect(wait=True)
            if done is not None:
                report.add(done)
        return report

    # ------------------------------------------------------------------ in flight
    def start(self, state: PartitionState) -> CheckpointReport | None:
        """Checkpoint ``state`` without stopping the loop: None while the checkpoint is in
        flight (:meth:`collect` goes on with it), the report if it was done at once
        (nothing moved, or :attr:`fork` is off)."""
        if self.in_flight is not None:
            raise VigieError("a checkpoint is already in flight")
        if not (self.fork and state.changed):
            return self.run([state])
        report = CheckpointReport([state.partition])
        if increments.next_is_delta(state, increments.changed_entries(state)):
            self._start_delta(state, state.chain, report)
        else:
            started = time.monotonic()
            self.in_flight = _Full(
                state,
                increments.FullSnapshot(state),
                self.store.full_writer(state),
                state.chain,
                report,
            )
            report.seconds += time.monotonic() - started
        return None

    def collect(self, *, wait: bool = False) -> CheckpointReport | None:
        """Go on with the checkpoint in flight: write a slice of a full snapshot, or
        finish a delta whose child is done (``wait``: all of it). Its report once it is
        finished, else None."""
        flight = self.in_flight
        if isinstance(flight, _Full):
            return self._slice(flight, wait)
        if flight is None or not (wait or flight.child.done()):
            return None
        self.in_flight = None
        state, report = flight.state, flight.report
        try:
            blob = flight.child.result(CHILD_TIMEOUT_S)
        except VigieError as exc:
            self._lost_changes(state, flight.previous, f"delta not pickled ({exc})")
            return report
        started = time.monotonic()
        position = flight.covered.positions[state.partition]
        writer = self.store.delta_writer(state)  # 3. save state
        writer.write(blob)
        chain = state.chain.with_delta(writer.close()) if state.chain is not None else None
        assert chain is not None
        saved = self.store.name_chain(state, chain, position)
        seconds = flight.child.seconds + time.monotonic() - started
        self._saved(state, saved, position, seconds, flight.changes, pickled=flight.child.seconds)
        self.commit(flight.covered)  # 4. commit positions
        report.saved += 1
        report.bytes += saved.size
        report.seconds += seconds
        return report

    def abandon(self, partitions: Iterable[int] | None = None) -> None:
        """Drop the checkpoint in flight (if it is of one of ``partitions``, when given):
        its partition is no longer held here, or the loop stops on an error."""
        flight = self.in_flight
        if flight is None or (partitions is not None and flight.state.partition not in partitions):
            return
        self.in_flight = None
        if isinstance(flight, _Delta):
            flight.child.cancel()
        self._lost_changes(flight.state, flight.previous, "checkpoint abandoned")

    def _start_delta(
        self, state: PartitionState, previous: Chain | None, report: CheckpointReport
    ) -> None:
        """Steps 1 and 2, then fork the child pickling the delta."""
        report.learnt += self._learn([state])  # 1. learn
        self.outputs.flush()  # 2. flush outputs
        changes = increments.changed_entries(state)
        child = forked.PickledInChild(lambda: increments.dumps(state, full=False))  # 3.
        increments.forget_changes(state)
        self.metrics.snapshot_seconds.labels(phase="fork").observe(child.fork_seconds)
        report.seconds += child.fork_seconds
        covered = self._covered([state])
        self.in_flight = _Delta(state, child, covered, changes, previous, report)

    def _slice(self, flight: _Full, wait: bool) -> CheckpointReport | None:
        """One slice of a full snapshot; once all are written, its closing delta starts."""
        now = time.monotonic()
        budget = float("inf") if wait else max(SLICE_S, SLICE_SHARE * (now - flight.sliced_at))
        done = flight.snapshot.advance(budget)
        flight.writer.write(flight.snapshot.take())
        if done:
            part = flight.writer.close()
            flight.state.chain = Chain(flight.writer.slot, part)  # named with its delta
        flight.sliced_at = time.monotonic()
        spent = flight.sliced_at - now
        flight.report.seconds += spent
        self.metrics.snapshot_seconds.labels(phase="slice").observe(spent)
        if not done:
            return None
        state = flight.state
        state.costs.record(full=True, seconds=flight.report.seconds, changes=0)
        flight.report.full = True
        flight.report.bytes += part.bytes
        self.metrics.snapshots.labels(kind="full").inc()
        self.in_flight = None
        self._start_delta(state, flight.previous, flight.report)
        return None

    def _lost_changes(self, state: PartitionState, previous: Chain | None, why: str) -> None:
        """The change sets were emptied for a snapshot that was not saved: the chain the
        manifest names stays, and no delta may follow it."""
        log.error("partition %d: %s; its next snapshot is full", state.partition, why)
        state.chain = previous.broken_off() if previous is not None else None

    # ------------------------------------------------------------------ steps
    def _learn(self, states: list[PartitionState]) -> int:
        total = 0
        for state in states:
            learnt, others = learn_received(state)
            total += learnt
            self.metrics.controls_learnt.inc(learnt)
            self.metrics.controls_unknown.inc(others)
        return total

    def _covered(self, states: list[PartitionState]) -> Covered:
        return Covered({s.partition: s.position for s in states}, dict(self.controls_read()))

    def _save(self, state: PartitionState) -> tuple[int, bool]:
        started = time.monotonic()
        changes = increments.changed_entries(state)
        delta = increments.next_is_delta(state, changes)
        blob = increments.dumps(state, full=not delta)
        pickled = time.monotonic() - started
        saved = self.store.save(state, blob, delta=delta)
        increments.forget_changes(state)
        seconds = time.monotonic() - started
        self._saved(state, saved, state.position, seconds, changes, pickled=pickled)
        return saved.size, saved.full

    def _saved(
        self,
        state: PartitionState,
        saved: SavedSnapshot,
        position: tuple[int, int],
        seconds: float,
        changes: int,
        *,
        pickled: float,
    ) -> None:
        state.costs.record(full=saved.full, seconds=seconds, changes=changes)
        state.saved_position = position
        self.metrics.snapshot_seconds.labels(phase="pickle").observe(pickled)
        self.metrics.snapshot_seconds.labels(phase="total").observe(seconds)
        self.metrics.snapshots.labels(kind="full" if saved.full else "delta").inc()
        self.metrics.snapshot_bytes.labels(partition=str(state.partition)).set(saved.size)

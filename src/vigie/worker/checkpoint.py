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
time). The snapshot, full or delta, is written a slice at a time between batches while
the model goes on learning (:class:`vigie.worker.increments.SlicedSnapshot`), its chunks
sent as they fill. Then the four steps run at once, in the loop's thread, with a *closing
delta*: what changed while the slices were written, usually a small fraction (when it is
not, it is written in slices too, a further pass). The manifest naming them all is written
with it, and the offsets it covers are committed. Until then a restore reads the previous
chain. A delta whose work is expected to take less than a slice is written at once.

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
from dataclasses import dataclass, field, replace

from vigie.errors import VigieError
from vigie.worker import increments
from vigie.worker.chain import Chain
from vigie.worker.metrics import WorkerMetrics
from vigie.worker.outputs import Outputs
from vigie.worker.processing import learn_received
from vigie.worker.snapshots import PartWriter, SavedSnapshot, SnapshotStore
from vigie.worker.state import PartitionState

log = logging.getLogger(__name__)

SLICE_S = 0.005
"""A slice of a snapshot between two batches takes at least this long..."""
SLICE_SHARE = 0.25
"""...and about this share of the time since the previous slice, no more: a slice waits
for turns of the loop worth four times its length (at least 20 ms for 5 ms), so a snapshot
slows the loop down by a fifth at most, and takes about five times its own work. When a
slice came at every turn, short turns (a steady rate, small batches) gave the snapshot
more than half the loop."""
CLOSING_S = 0.02
"""A closing delta expected to take longer is written in slices too, a further pass, as
long as it is expected to take at most half the pass before (a loop saturated by a backlog
changes entries about as fast as slices save them: further passes would only add work)..."""
MAX_PASSES = 4
"""...and up to this many passes in all."""


Commit = Callable[[Iterable[PartitionState]], None]


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
    """The work it took, slices included."""


@dataclass
class _Sliced:
    """A snapshot being written a slice at a time."""

    state: PartitionState
    snapshot: increments.SlicedSnapshot
    writer: PartWriter
    chain: Chain | None
    """The chain this pass extends (None: the pass is the full snapshot of a new one)."""
    full: bool
    """Whether the checkpoint started a new chain."""
    changes: int
    """The entries written so far, every pass counted: a delta's cost per entry is its
    whole work over all of them (counting only the first pass's, a delta whose closing
    saved 20,000 entries changed meanwhile was measured at 240 us an entry, and every
    later closing of its partition expected seconds and was written at once, 60-106 ms)."""
    report: CheckpointReport
    passes: int = 1
    work: float = 0.0
    """The seconds this pass's slices took."""
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
        Commits the positions of the given states (step 4).
    metrics
        The worker's metrics.
    sliced
        Whether :meth:`start` writes snapshots in slices (else it is :meth:`run`).
    """

    def __init__(
        self,
        outputs: Outputs,
        store: SnapshotStore,
        commit: Commit,
        metrics: WorkerMetrics,
        *,
        sliced: bool = True,
    ) -> None:
        self.outputs = outputs
        self.store = store
        self.commit = commit
        self.metrics = metrics
        self.sliced = sliced
        self.in_flight: _Sliced | None = None

    # ------------------------------------------------------------------ at once
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
        for state in states:  # 3. save state
            if force or state.changed:
                size, full = self._save(state)
                report.bytes += size
                report.saved += 1
                report.full |= full
        self.commit(states)  # 4. commit positions
        report.seconds += time.monotonic() - started
        return report

    def finish(self) -> CheckpointReport:
        """Finish the checkpoint in flight at once (an empty report if none)."""
        report = None
        while self.in_flight is not None:
            report = self.collect(wait=True)
        return report or CheckpointReport()

    # ------------------------------------------------------------------ in flight
    def start(self, state: PartitionState) -> CheckpointReport | None:
        """Checkpoint ``state`` without stopping the loop: None while its snapshot is
        written in slices (:meth:`collect` goes on with it), the report if it was done at
        once (nothing moved, a small delta, or :attr:`sliced` is off)."""
        if self.in_flight is not None:
            raise VigieError("a checkpoint is already in flight")
        changes = increments.changed_entries(state)
        full = not increments.next_is_delta(state, changes)
        small = not full and state.costs.delta_seconds(changes) < SLICE_S
        if not (self.sliced and state.changed) or small:
            return self.run([state])
        started = time.monotonic()
        snapshot = increments.SlicedSnapshot(state, full=full)
        increments.forget_changes(state)  # from now on: what the closing delta saves
        writer = self.store.full_writer(state) if full else self.store.delta_writer(state)
        report = CheckpointReport([state.partition], seconds=time.monotonic() - started)
        chain = None if full else state.chain
        self.in_flight = _Sliced(state, snapshot, writer, chain, full, changes, report)
        return None

    def collect(self, *, wait: bool = False) -> CheckpointReport | None:
        """Write the next slice of the snapshot in flight (``wait``: all of them). Once it
        is written, what changed meanwhile is written in a further pass of slices if it
        would take more than :data:`CLOSING_S`, else as the closing delta, in the four
        steps at once; then the report is returned."""
        flight = self.in_flight
        if flight is None:
            return None
        now = time.monotonic()
        budget = float("inf") if wait else SLICE_SHARE * (now - flight.sliced_at)
        if budget < SLICE_S:
            return None  # too soon: the share of the time is not a slice's worth yet
        done = flight.snapshot.advance(budget)
        flight.writer.write(flight.snapshot.take())
        part = flight.writer.close() if done else None
        flight.sliced_at = time.monotonic()
        flight.work += flight.sliced_at - now
        flight.report.seconds += flight.sliced_at - now
        self.metrics.snapshot_seconds.labels(phase="slice").observe(flight.sliced_at - now)
        if part is None:
            return None
        self.in_flight = None
        state, report = flight.state, flight.report
        report.bytes += part.bytes
        if flight.chain is None:
            chain = Chain(flight.writer.slot, part)
        else:
            chain = flight.chain.with_delta(part)
        changed = increments.changed_entries(state)
        closing_s = state.costs.delta_seconds(changed)
        shrinking = CLOSING_S < closing_s <= flight.work / 2
        if shrinking and not wait and flight.passes < MAX_PASSES:
            snapshot = increments.SlicedSnapshot(state, full=False)  # a further pass
            increments.forget_changes(state)
            writer = self.store.delta_writer(state, chain)
            self.in_flight = replace(
                flight,
                snapshot=snapshot,
                writer=writer,
                chain=chain,
                changes=flight.changes + changed,
                passes=flight.passes + 1,
                work=0.0,
            )
            return None
        started = time.monotonic()
        report.learnt += self._learn([state])  # 1. learn
        self.outputs.flush()  # 2. flush outputs
        written = flight.changes + increments.changed_entries(state)
        closing = self.store.delta_writer(state, chain)  # 3. save state: the closing delta
        closing.write(increments.dumps(state, full=False))
        increments.forget_changes(state)
        saved = self.store.name_chain(state, chain.with_delta(closing.close()))
        closed = time.monotonic() - started
        self.metrics.snapshot_seconds.labels(phase="closing").observe(closed)
        report.seconds += closed
        self._saved(state, saved, report.seconds, written, full=flight.full)
        self.commit([state])  # 4. commit positions
        report.saved, report.full = 1, flight.full
        report.bytes += saved.size
        return report

    def abandon(self, partitions: Iterable[int] | None = None) -> None:
        """Drop the checkpoint in flight (if it is of one of ``partitions``, when given):
        its partition is no longer held here, or the loop stops on an error. Its change
        sets were emptied: the chain the manifest names stays, and no delta may follow."""
        flight = self.in_flight
        if flight is None or (partitions is not None and flight.state.partition not in partitions):
            return
        self.in_flight = None
        state = flight.state
        state.chain = state.chain.broken_off() if state.chain is not None else None
        log.warning("partition %d: checkpoint dropped; its next snapshot is full", state.partition)

    # ------------------------------------------------------------------ steps
    def _learn(self, states: list[PartitionState]) -> int:
        total = 0
        for state in states:
            learnt, others = learn_received(state)
            total += learnt
            self.metrics.controls_learnt.inc(learnt)
            self.metrics.controls_unknown.inc(others)
        return total

    def _save(self, state: PartitionState) -> tuple[int, bool]:
        started = time.monotonic()
        changes = increments.changed_entries(state)
        delta = increments.next_is_delta(state, changes)
        blob = increments.dumps(state, full=not delta)
        self.metrics.snapshot_seconds.labels(phase="pickle").observe(time.monotonic() - started)
        saved = self.store.save(state, blob, delta=delta)
        increments.forget_changes(state)
        self._saved(state, saved, time.monotonic() - started, changes, full=not delta)
        return saved.size, saved.full

    def _saved(
        self,
        state: PartitionState,
        saved: SavedSnapshot,
        seconds: float,
        changes: int,
        *,
        full: bool,
    ) -> None:
        state.costs.record(full=full, seconds=seconds, changes=changes)
        state.saved_position = state.position
        self.metrics.snapshot_seconds.labels(phase="total").observe(seconds)
        self.metrics.snapshots.labels(kind="full" if full else "delta").inc()
        self.metrics.snapshot_bytes.labels(partition=str(state.partition)).set(saved.size)

"""A checkpoint makes a partition's progress durable, in four steps, always in this order.

1. **Learn**: each engine is given the control results received since the last
   checkpoint (``learn_received``), so every point where an engine learnt labels is saved
   with the state it produced.
2. **Flush outputs**: every Score, Alert, dead letter and fan-out copy sent so far is
   acknowledged by Kafka, or the checkpoint stops here.
3. **Save state**: each state that moved since its last snapshot is snapshotted.
4. **Commit positions**: the consumer group's offsets are set to what the snapshots cover
   (and, for ``control-results``, to what was read and fanned out).

A restore starts each partition right after its snapshot's offsets; the committed
offsets are there for monitoring (consumer lag) and for ``control-results``. Why this
order, and what each step guarantees: docs/recovery.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from vigie.worker import increments
from vigie.worker.metrics import WorkerMetrics
from vigie.worker.outputs import Outputs
from vigie.worker.processing import learn_received
from vigie.worker.snapshots import SnapshotStore
from vigie.worker.state import PartitionState

log = logging.getLogger(__name__)

Commit = Callable[[Iterable[PartitionState]], None]


@dataclass
class CheckpointReport:
    """What one checkpoint did."""

    learnt: int = 0
    saved: int = 0
    full: bool = False
    """Whether a full snapshot was among those saved (the others are deltas)."""
    bytes: int = 0
    seconds: float = 0.0


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
    """

    def __init__(
        self, outputs: Outputs, store: SnapshotStore, commit: Commit, metrics: WorkerMetrics
    ) -> None:
        self.outputs = outputs
        self.store = store
        self.commit = commit
        self.metrics = metrics

    def run(self, states: Iterable[PartitionState], *, force: bool = False) -> CheckpointReport:
        """Checkpoint ``states``; ``force`` snapshots even those that did not move."""
        started = time.monotonic()
        states = list(states)
        report = CheckpointReport()
        for state in states:  # 1. learn
            learnt, others = learn_received(state)
            report.learnt += learnt
            self.metrics.controls_learnt.inc(learnt)
            self.metrics.controls_unknown.inc(others)
        self.outputs.flush()  # 2. flush outputs
        for state in states:  # 3. save state
            if force or state.changed:
                size, full = self._save(state)
                report.bytes += size
                report.saved += 1
                report.full |= full
        self.commit(states)  # 4. commit positions
        report.seconds = time.monotonic() - started
        return report

    def _save(self, state: PartitionState) -> tuple[int, bool]:
        started = time.monotonic()
        changes = increments.changed_entries(state)
        delta = increments.next_is_delta(state, changes)
        blob = increments.dumps(state, full=not delta)
        self.metrics.snapshot_seconds.labels(phase="pickle").observe(time.monotonic() - started)
        saved = self.store.save(state, blob, delta=delta)
        increments.forget_changes(state)
        state.costs.record(full=not delta, seconds=time.monotonic() - started, changes=changes)
        state.saved_position = state.position
        self.metrics.snapshot_seconds.labels(phase="total").observe(time.monotonic() - started)
        self.metrics.snapshots.labels(kind="full" if saved.full else "delta").inc()
        self.metrics.snapshot_bytes.labels(partition=str(state.partition)).set(saved.size)
        return saved.size, saved.full

"""Model state per ``declarations`` partition: the engine and the log positions it covers.

A snapshot saves a :class:`PartitionState`, so a model and its position are always saved
together: restoring one and resuming right after its offsets neither relearns nor forgets
a record (see docs/recovery.md). Snapshots are whole now and then and in between hold
only what changed (:mod:`vigie.worker.increments`).

Snapshots are compressed with zstd (level 3): at 10,000 declarations learnt, 11 ms for
0.87 MB where zlib took 39 ms for 1.09 MB, and 3 ms to decompress instead of 48. The
worker pauses while it snapshots, so this is latency. A snapshot is compressed as it is
written and decompressed as it is read (:mod:`vigie.worker.increments`). Snapshots written
with zlib by earlier versions are still read.

Examples
--------
>>> state = PartitionState(partition=2, engine={"weights": [0.5] * 3})
>>> state.position, state.declarations_learnt, state.chain
((-1, -1), 0, None)
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from vigie.worker.chain import Chain
from vigie.worker.idempotency import SeenItems
from vigie.worker.layout import Layout, layout

TRANSIENT = frozenset({"received", "controls_read", "replaying_until", "chain", "costs"})
"""Attributes a snapshot leaves out: they are rebuilt by reading the log again."""


class PartitionState:
    """A partition's engine, the offsets it covers and what waits for it."""

    def __init__(self, partition: int, engine: Any, remembered: int = 400_000) -> None:
        self.partition = partition
        self.engine = engine
        self.seen = SeenItems(remembered)
        """The items scored, by id: repeats and amendments (:mod:`vigie.worker.idempotency`)."""
        self.declarations_offset = -1
        """Offset of the last declarations record learnt (-1: none)."""
        self.controls_offset = -1
        """Offset of the last control fan-out record given to the engine (-1: none)."""
        self.declarations_learnt = 0
        self.controls_learnt = 0
        self.snapshot_id = 0
        self.saved_position: tuple[int, int] | None = None
        """The position of the last snapshot written or restored."""
        self.parked: OrderedDict[str, Any] = OrderedDict()
        """Control results that arrived before their declaration, by declaration id."""
        self.layout: Layout = layout(engine)
        """The engine's layout, as recorded by the snapshot it was restored from."""
        self._transient()

    def _transient(self) -> None:
        self.received: list[Any] = []
        """Control results read since the last checkpoint, in fan-out order."""
        self.controls_read = self.controls_offset
        """Offset of the last control fan-out record read (received or given)."""
        self.replaying_until = -1
        """The declarations offset the log had reached when this state was restored: up
        to it the engine may score again what a previous owner scored, so it is given no
        control result before it gets there."""
        self.chain: Chain | None = None
        """The snapshots saved or restored last (None: the next one is whole)."""
        self.costs = SnapshotCosts()

    @property
    def position(self) -> tuple[int, int]:
        """(declarations, control fan-out) offsets this state covers."""
        return (self.declarations_offset, self.controls_offset)

    @property
    def changed(self) -> bool:
        """Whether the state moved since its last snapshot."""
        return self.position != self.saved_position

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in TRANSIENT}
        state["layout"] = layout(self.engine)  # what the code that wrote it built
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("seen", SeenItems())  # snapshots of workers before idempotency
        self.__dict__.update(state)
        self._transient()

    def summary(self) -> dict[str, Any]:
        """What ``/ready`` shows of this partition."""
        return {
            "partition": self.partition,
            "declarations_offset": self.declarations_offset,
            "controls_offset": self.controls_offset,
            "declarations_learnt": self.declarations_learnt,
            "controls_learnt": self.controls_learnt,
            "controls_waiting": len(self.received),
            "replaying_until": self.replaying_until,
            "snapshot_id": self.snapshot_id,
            "snapshot_deltas": None if self.chain is None else len(self.chain.deltas),
        }


UNMEASURED_S_PER_CHANGE = 1e-6
"""What a delta costs a changed entry before this process measured one (about what the
first deltas cost on the development machine). Assumed free, the first delta after a
restore or a warm-up was written at once in the loop: 90-100 ms a partition at 10,000
declarations, the stalls behind the p99 at 5,200 declarations/s."""


class SnapshotCosts:
    """What this process's last snapshots of a partition cost, to choose the next kind.

    A delta costs about the same per entry changed, a full snapshot the same whatever
    changed: the next snapshot is a delta while that is the cheaper.

    >>> costs = SnapshotCosts()
    >>> costs.prefers_delta(changes=10**6)  # nothing measured yet
    True
    >>> costs.record(full=True, seconds=2.0, changes=0)
    >>> costs.record(full=False, seconds=0.1, changes=20_000)
    >>> costs.prefers_delta(changes=100_000), costs.prefers_delta(changes=500_000)
    (True, False)
    """

    def __init__(self) -> None:
        self.full_s: float | None = None
        self.delta_s_per_change: float | None = None

    def delta_seconds(self, changes: int) -> float:
        """What a delta of ``changes`` should take: as the last one did, or
        :data:`UNMEASURED_S_PER_CHANGE` a change before any was measured.

        >>> costs = SnapshotCosts()
        >>> costs.delta_seconds(100_000)  # not measured: a tenth of a second, in slices
        0.1
        >>> costs.record(full=False, seconds=0.1, changes=1000)
        >>> costs.delta_seconds(50)
        0.005
        """
        per_change = self.delta_s_per_change
        return changes * (UNMEASURED_S_PER_CHANGE if per_change is None else per_change)

    def prefers_delta(self, changes: int) -> bool:
        if self.full_s is None or self.delta_s_per_change is None:
            return True
        return changes * self.delta_s_per_change < self.full_s

    def record(self, *, full: bool, seconds: float, changes: int) -> None:
        if full:
            self.full_s = seconds
        elif changes > 0:
            self.delta_s_per_change = seconds / changes

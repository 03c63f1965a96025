"""A partition's chain of snapshots, as its manifest names it: a full snapshot, then its
deltas in order (:mod:`vigie.worker.snapshots` writes and reads them).

Examples
--------
>>> chain = Chain(slot=0, full=Part([7], "aa", 1000), deltas=[Part([9], "bb", 400)])
>>> chain.wants_full(), chain.with_delta(Part([11], "cc", 600)).wants_full()
(False, True)
>>> chain.broken_off().wants_full()
True
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

MAX_DELTAS = 200
"""A chain has at most this many deltas (a restore applies them one by one)."""


@dataclass(frozen=True)
class Part:
    """One snapshot of a chain, as its manifest names it."""

    offsets: list[int]
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Chain:
    """The snapshots a restore reads: a full one, then its deltas in order."""

    slot: int
    full: Part
    deltas: list[Part] = field(default_factory=list)
    broken: bool = False
    """Whether the changes since its last snapshot were lost (a delta that failed after
    the change sets were emptied): no delta can follow it."""

    def wants_full(self) -> bool:
        """Whether the next snapshot should start a new chain."""
        if self.broken:
            return True
        weight = sum(d.bytes for d in self.deltas)
        return weight >= self.full.bytes or len(self.deltas) >= MAX_DELTAS

    def broken_off(self) -> Chain:
        """This chain, which no delta can extend any more."""
        return replace(self, broken=True)

    def with_delta(self, part: Part) -> Chain:
        return Chain(self.slot, self.full, [*self.deltas, part])

    def parts(self) -> list[Part]:
        return [self.full, *self.deltas]

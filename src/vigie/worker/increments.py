"""Incremental snapshots: a full snapshot now and then, in between only what changed.

The model keeps its large tables with the keys changed since the last snapshot
(:mod:`vigie.model.tables`). A snapshot is one compressed pickle of
``(FORMAT, kind, core, tables)``:

* ``core``: the partition state pickled with every large table and change set left out
  (pickle's persistent ids stand in for them): the small parts, always whole;
* ``kind`` ``"full"``: ``tables`` holds every table whole; ``"delta"``: per table, only what
  changed since the previous snapshot (:func:`vigie.model.tables.table_delta`).

A restore takes a full snapshot, applies its deltas in order, then unpickles the last core
onto the tables (:func:`restore`), each in the exact order of the live one. Writing a
delta costs what changed, not the whole state.

Examples
--------
>>> from vigie.model.engine import RiskEngine
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
>>> state = PartitionState(0, RiskEngine())
>>> full = dumps(state, full=True); forget_changes(state)
>>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> _ = state.engine.score_one(decl); state.engine.learn_one(decl)
>>> again = restore([full, dumps(state, full=False)])
>>> sizes = [len(table) for table, _ in tracked(again)]
>>> again.engine.n_pending, sizes == [len(table) for table, _ in tracked(state)]
(1, True)
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from vigie.errors import VigieError
from vigie.model.tables import Tracked, apply_delta, table_delta
from vigie.worker.state import PartitionState, compress, decompress

FORMAT = 3
"""2: the first incremental snapshots; 3: the model's small sets became lists (a snapshot of
format 2 is refused: the partition's model is rebuilt from its log). Snapshots before
format 2 were one plain pickle of the state: read, then refused by the layout check."""


def tracked(state: PartitionState) -> list[Tracked]:
    """The state's large tables and their change sets, always in the same order."""
    engine_tables = getattr(state.engine, "tables", None)
    found: list[Tracked] = list(engine_tables()) if engine_tables is not None else []
    return [*found, *state.seen.tables()]


def dumps(state: PartitionState, *, full: bool) -> bytes:
    """A compressed snapshot of ``state``: whole, or what changed since the previous one."""
    tables = tracked(state)
    refs: dict[int, str] = {}
    for i, (table, changed) in enumerate(tables):
        refs[id(table)] = f"t{i}"
        refs.setdefault(id(changed), f"c{i}")
    buffer = io.BytesIO()
    _CorePickler(buffer, refs).dump(state)
    parts: list[Any] = (
        [table for table, _ in tables]
        if full
        else [table_delta(table, changed) for table, changed in tables]
    )
    kind = "full" if full else "delta"
    return compress(
        pickle.dumps((FORMAT, kind, buffer.getvalue(), parts), protocol=pickle.HIGHEST_PROTOCOL)
    )


def changed_entries(state: PartitionState) -> int:
    """Entries changed since the last snapshot (a key of two tables counts twice)."""
    return sum(len(changed) for _, changed in tracked(state))


def next_is_delta(state: PartitionState, changes: int) -> bool:
    """Whether the next snapshot of ``state`` is a delta: there is a chain to extend, the
    chain is not due for a full snapshot (:meth:`vigie.worker.chain.Chain.wants_full`),
    and a delta of the ``changes`` (:func:`changed_entries`) costs less than a full one,
    as the last ones did."""
    chain = state.chain
    if chain is None or chain.wants_full():
        return False
    return state.costs.prefers_delta(changes)


def forget_changes(state: PartitionState) -> None:
    """Empty the change sets: call once a snapshot of ``state`` is saved."""
    for _, changed in tracked(state):
        changed.clear()


def restore(blobs: list[bytes]) -> PartitionState:
    """The state of a full snapshot followed by its deltas, in order (a snapshot of an
    earlier format alone is read as it was written)."""
    if not blobs:
        raise VigieError("model-state: no snapshot to restore")
    snapshot = pickle.loads(decompress(blobs[0]))
    if isinstance(snapshot, PartitionState):
        if len(blobs) > 1:
            raise VigieError("model-state: deltas after a snapshot of an earlier format")
        return snapshot
    fmt, kind, core, tables = snapshot
    if (fmt, kind) != (FORMAT, "full"):
        raise VigieError(f"model-state: expected a full snapshot, got {kind!r} (format {fmt})")
    for blob in blobs[1:]:
        fmt, kind, core, deltas = pickle.loads(decompress(blob))
        if (fmt, kind) != (FORMAT, "delta") or len(deltas) != len(tables):
            raise VigieError(
                f"model-state: expected a delta of {len(tables)} tables, got {kind!r} "
                f"(format {fmt})"
            )
        for table, delta in zip(tables, deltas, strict=True):
            apply_delta(table, delta)
    state = _CoreUnpickler(io.BytesIO(core), tables).load()
    if not isinstance(state, PartitionState):
        raise VigieError(f"model-state: expected a PartitionState, got {type(state)}")
    if [id(table) for table, _ in tracked(state)] != [id(table) for table in tables]:
        raise VigieError("model-state: the snapshot's tables do not fit the state's")
    return state


class _CorePickler(pickle.Pickler):
    """Pickles the state with its large tables and change sets left out."""

    def __init__(self, file: io.BytesIO, refs: dict[int, str]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.refs = refs

    def persistent_id(self, obj: Any) -> str | None:
        return self.refs.get(id(obj))


class _CoreUnpickler(pickle.Unpickler):
    """Unpickles a core onto restored tables; each change set starts empty."""

    def __init__(self, file: io.BytesIO, tables: list[Any]) -> None:
        super().__init__(file)
        self.tables = tables
        self.sets: dict[str, set[str]] = {}

    def persistent_load(self, pid: Any) -> Any:
        if pid.startswith("t"):
            return self.tables[int(pid[1:])]
        return self.sets.setdefault(pid, set())

"""Incremental snapshots restore the state exactly: a full snapshot and its deltas give
back every table, entry for entry and in order, and a model that scores as the live one.

The tables are kept small here so that every one of them forgets entries (the model
forgets its oldest first), the hardest case for a delta: order is state.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

import vigie.model.engine as engine_module
from vigie.contracts.codec import encode
from vigie.model.engine import RiskEngine
from vigie.worker import idempotency, increments
from vigie.worker.increments import dumps, forget_changes, restore, tracked
from vigie.worker.processing import apply_control, score_and_learn
from vigie.worker.state import PartitionState
from vigie_dev.generator import generate

ITEMS = list(generate(2400, seed=8))


def small_state() -> PartitionState:
    """A partition state whose every table fills up and forgets within the stream."""
    engine = RiskEngine(budget=0.1, seed=3, max_pending=150)
    engine._memory.max_keys = 60
    engine._valuation.max_cells = 80
    engine._atypicality.max_contexts = 70
    engine._atypicality._behaviour.max_keys = 50
    engine._operators.max_keys = 40
    state = PartitionState(0, engine, remembered=200)
    return state


def feed(state: PartitionState, start: int, end: int) -> list[float]:
    """Score and learn ITEMS[start:end] as the worker does (every 7th sent twice, a repeat),
    then apply the control results of the items 100 back; the risks scored."""
    risks = []
    for i in range(start, end):
        decl = ITEMS[i].declaration
        for _ in range(2 if i % 7 == 0 else 1):
            out = score_and_learn(
                state, decl.importer.encode(), encode(decl), source_topic="declarations"
            )
            if out.score is not None:
                risks.append(out.score.risk)
        control = ITEMS[i - 100].control if i >= 100 else None
        if control is not None:
            apply_control(state, control)
    return risks


def plain(value: Any) -> Any:
    """A value as comparable data (objects by their attributes)."""
    if isinstance(value, dict):
        return [(k, plain(v)) for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(value)
    if hasattr(value, "__dict__"):
        return plain(vars(value))
    return value


@pytest.mark.parametrize("chunk", [increments.CHUNK, 7])
def test_a_full_snapshot_and_its_deltas_restore_every_table_in_order(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(increments, "CHUNK", chunk)  # 7: every table in several pickles
    live = small_state()
    feed(live, 0, 600)
    chain = [dumps(live, full=True)]
    forget_changes(live)
    for start in range(600, 2000, 350):
        feed(live, start, start + 350)
        chain.append(dumps(live, full=False))
        forget_changes(live)
        restored = restore(chain)
        # as the worker reads a chain: each snapshot in the chunks it was stored in
        from_chunks = restore(
            [[blob[i : i + 997] for i in range(0, len(blob), 997)] for blob in chain]
        )
        assert plain(tracked(from_chunks)) == plain(tracked(restored))
        pairs = list(zip(tracked(live), tracked(restored), strict=True))
        assert len(pairs) > 20
        for n, ((mine, _), (theirs, changed)) in enumerate(pairs):
            assert plain(mine) == plain(theirs), f"table {n} differs after {len(chain)} parts"
            assert not changed
        assert restored.position == live.position
    caps = {40, 50, 60, 70, 80, 150, 200}  # small_state's
    full = sum(len(table) in caps for table, _ in tracked(live))
    assert full / len(tracked(live)) >= 20 / 35  # most tables forget: as 20 of 35 did
    assert feed(restored, 2050, 2400) == feed(live, 2050, 2400)


def test_a_delta_holds_only_what_changed() -> None:
    live = PartitionState(0, RiskEngine(seed=1))
    feed(live, 0, 2000)
    full = dumps(live, full=True)
    forget_changes(live)
    feed(live, 2000, 2050)
    delta = dumps(live, full=False)
    assert len(delta) * 4 < len(full)  # 50 declarations of 2,050: their entries, the core
    assert feed(restore([full, delta]), 2050, 2400) == feed(live, 2050, 2400)


def test_a_state_without_large_tables_snapshots_whole() -> None:
    state = PartitionState(3, {"weights": [0.5] * 3})
    state.declarations_offset = 41
    again = restore([dumps(state, full=True)])
    assert (again.partition, again.engine, again.position) == (3, {"weights": [0.5] * 3}, (41, -1))


@pytest.mark.parametrize("full", [True, False])
def test_a_snapshot_written_while_the_model_learns_is_closed_by_a_delta(
    full: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot written a pickle at a time, with declarations learnt between the pickles
    (entries changed, moved, forgotten and added after their slice or before), then the
    delta of what changed since it started, restore the live state exactly."""
    monkeypatch.setattr(increments, "CHUNK", 5)
    live = small_state()
    feed(live, 0, 600)
    chain = [] if full else [dumps(live, full=True)]
    if not full:
        forget_changes(live)
        feed(live, 600, 700)
    fed = 600 if full else 700
    snapshot = increments.SlicedSnapshot(live, full=full)
    forget_changes(live)
    parts = []
    while not snapshot.advance(0.0):
        parts.append(snapshot.take())
        feed(live, fed, fed + 3)
        fed += 3
    assert len(parts) > 30  # the tables changed under the snapshot for many declarations
    chain += [b"".join([*parts, snapshot.take()]), dumps(live, full=False)]
    forget_changes(live)
    restored = restore(chain)
    for n, ((mine, _), (theirs, _)) in enumerate(
        zip(tracked(live), tracked(restored), strict=True)
    ):
        assert plain(mine) == plain(theirs), f"table {n} differs"
    assert restored.position == live.position
    feed(live, fed, fed + 200)
    chain.append(dumps(live, full=False))
    assert feed(restore(chain), fed + 200, 2400) == feed(live, fed + 200, 2400)


def test_a_full_snapshot_alone_is_not_the_state_it_ended_at(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Why the closing delta is needed: without it, what changed during the slices is
    missing (this test fails if the snapshot ever stops being fuzzy by accident)."""
    monkeypatch.setattr(increments, "CHUNK", 5)
    live = small_state()
    feed(live, 0, 600)
    snapshot = increments.SlicedSnapshot(live, full=True)
    forget_changes(live)
    parts = []
    while not snapshot.advance(0.0):
        parts.append(snapshot.take())
        feed(live, 600 + 3 * len(parts), 603 + 3 * len(parts))
    alone = restore([b"".join([*parts, snapshot.take()])])

    def tables(state: PartitionState) -> list[Any]:
        return [plain(table) for table, _ in tracked(state)]

    assert tables(alone) != tables(live)
    assert tables(restore([dumps(live, full=True)])) == tables(live)


class _FormerPending(NamedTuple):
    """The pending item as snapshots of formats 4 and 5 pickled it."""

    evidence: bytes
    hs6: str
    origin: str
    tax_type: str
    importer: str
    declarant: str


def test_pending_items_of_older_snapshots_restore_as_tuples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live = small_state()
    feed(live, 0, 300)
    store = live.engine._pending
    expected = [(key, items) for key, items in store.items()]
    for key, items in expected:
        store[key] = tuple(_FormerPending(*item) for item in items)
    _FormerPending.__module__, _FormerPending.__qualname__ = "vigie.model.engine", "Pending"
    monkeypatch.setattr(engine_module, "Pending", _FormerPending, raising=False)
    blob = dumps(live, full=True)
    monkeypatch.delattr(engine_module, "Pending")
    restored = restore([blob]).engine._pending
    assert list(restored.items()) == expected
    assert {type(item) for items in restored.values() for item in items} == {tuple}


def test_items_remembered_before_the_value_digest_are_still_recognised() -> None:
    live = small_state()
    live.seen._digest_scheme = 1  # a worker before format 7: digests of the JSON...
    feed(live, 0, 150)
    del live.seen._digest_scheme  # ...and no scheme in its pickle
    restored = restore([dumps(live, full=True)])
    for decl in (ITEMS[i].declaration for i in range(140, 150)):
        out = score_and_learn(restored, b"k", encode(decl), source_topic="declarations")
        assert out.seen == "repeat"
    fresh = PartitionState(0, RiskEngine(seed=3))
    assert fresh.seen._digest_scheme == max(idempotency.DIGESTS) != 1


def test_a_full_snapshot_finished_at_once_restores_whole() -> None:
    """Its first slices are compressed by the compressing thread, the rest in this one
    (``advance`` with no time limit): one zstd frame, in order."""
    live = small_state()
    feed(live, 0, 600)
    snapshot = increments.SlicedSnapshot(live, full=True)
    parts = []
    for _ in range(3):
        snapshot.advance(0.0)
        parts.append(snapshot.take())
    assert snapshot.advance(float("inf"))
    restored = restore([b"".join([*parts, snapshot.take()])])
    assert [plain(t) for t, _ in tracked(restored)] == [plain(t) for t, _ in tracked(live)]


def test_a_snapshot_of_format_7_restores_and_goes_on_learning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Format 7's pending evidence has no customs value nor net mass: the items restore and
    learn their control results, taking no value out of the valuation's references."""
    live = small_state()
    feed(live, 0, 300)
    store = live.engine._pending
    for key, items in store.items():
        store[key] = tuple(
            (engine_module._EVIDENCE_7.pack(*engine_module._EVIDENCE.unpack(e)[:-2]), *rest)
            if len(e) == engine_module._EVIDENCE.size
            else (e, *rest)
            for e, *rest in items
        )
    monkeypatch.setattr(increments, "FORMAT", 7)
    blob = dumps(live, full=True)
    monkeypatch.undo()
    restored = restore([blob])
    assert list(restored.engine._pending) == list(store)
    learnt = restored.controls_learnt
    feed(restored, 300, 420)
    assert restored.controls_learnt > learnt

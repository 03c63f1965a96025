"""A restored engine must have the attributes of a fresh one, or the worker rebuilds it.

Unpickling skips ``__init__``: a snapshot from before an upgrade that added an attribute
would load, then fail on every record (seen when a combiner gained a calibration step).
"""

from __future__ import annotations

from vigie.model.engine import RiskEngine
from vigie.worker.increments import dumps, restore
from vigie.worker.layout import Layout, layout, layout_differences
from vigie.worker.state import PartitionState
from vigie_dev.generator import generate


def learnt_engine() -> RiskEngine:
    engine = RiskEngine(seed=1)
    items = list(generate(2000, seed=4))
    for item in items:
        engine.score_one(item.declaration)
        engine.learn_one(item.declaration)
    learnt = sum(engine.learn_control(i.control) for i in items if i.control is not None)
    assert learnt > 32  # the prior strengths were re-derived: every learnt part is filled
    return engine


def restored(engine: RiskEngine) -> PartitionState:
    state = restore([dumps(PartitionState(0, engine), full=True)])
    assert isinstance(state.engine, RiskEngine)
    return state


def fresh_layout() -> Layout:
    return layout(RiskEngine(seed=1))


def test_a_learnt_engine_has_the_layout_of_a_fresh_one() -> None:
    # no attribute is created after __init__: a restart must not rebuild a sound model
    engine = learnt_engine()
    assert layout(engine) == fresh_layout()
    assert layout_differences(restored(engine).layout, fresh_layout()) == []
    engine.score_one(next(iter(generate(1, seed=9))).declaration)  # caches filled
    assert layout_differences(restored(engine).layout, fresh_layout()) == []


def test_a_snapshot_from_an_older_engine_class_is_detected() -> None:
    state = restored(learnt_engine())
    combiner = state.layout["engine._combiner"]
    state.layout["engine._combiner"] = combiner[:1] + combiner[2:]  # its first attribute
    state.layout["engine._memory"] += ("obsolete",)
    state.layout["engine._quota"] = ("InspectionBudget", *state.layout["engine._quota"][1:])
    assert layout_differences(state.layout, fresh_layout()) == [
        f"engine._combiner.{combiner[1]}: missing",
        "engine._memory.obsolete: no longer used",
        "engine._quota: InspectionBudget, now DailyQuota",
    ]


def test_a_snapshot_of_the_previous_engine_is_detected() -> None:
    """The engine before the case memory: its parts are gone, a restore rebuilds."""
    state = restored(learnt_engine())
    state.layout = {
        "engine": ("RiskEngine", "_budget", "_history", "_learner", "audit_share", "budget"),
        "engine._budget": ("InspectionBudget", "_n", "_risks"),
    }
    found = layout_differences(state.layout, fresh_layout())
    assert "engine._memory: missing" in found and "engine._history: no longer used" in found

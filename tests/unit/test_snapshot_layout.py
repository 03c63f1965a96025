"""A restored engine must have the attributes of a fresh one, or the worker rebuilds it.

Unpickling skips ``__init__``: a snapshot from before an upgrade that added an attribute
would load, then fail on every record (seen when a combiner gained a calibration step).
"""

from __future__ import annotations

from vigie.detectors.engine import RiskEngine
from vigie.generator import generate
from vigie.streams.state import PartitionState, layout_differences


def learnt_engine() -> RiskEngine:
    engine = RiskEngine(seed=1, warm_up=20)
    items = list(generate(2000, seed=4))
    for item in items:
        engine.score_one(item.declaration)
        engine.learn_one(item.declaration)
    learnt = sum(engine.learn_control(i.control) for i in items if i.control is not None)
    assert learnt > 20  # past the warm-up: every lazily built part exists by now
    return engine


def restored(engine: RiskEngine) -> RiskEngine:
    state = PartitionState.loads(PartitionState(0, engine).dumps())
    assert isinstance(state.engine, RiskEngine)
    return state.engine


def test_a_learnt_engine_has_the_layout_of_a_fresh_one() -> None:
    # no attribute is created after __init__: a restart must not rebuild a sound model
    engine = learnt_engine()
    assert layout_differences(restored(engine), RiskEngine(seed=1, warm_up=20)) == []
    engine.score_one(next(iter(generate(1, seed=9))).declaration)  # caches filled
    assert layout_differences(restored(engine), RiskEngine(seed=1, warm_up=20)) == []


def test_a_snapshot_from_an_older_engine_class_is_detected() -> None:
    engine = learnt_engine()
    name = sorted(vars(engine._combiner))[0]
    delattr(engine._combiner, name)  # as if pickled before the attribute existed
    engine._learner.obsolete = 1  # type: ignore[attr-defined]
    found = layout_differences(restored(engine), RiskEngine(seed=1, warm_up=20))
    assert found == [
        f"engine._combiner.{name}: missing",
        "engine._learner.obsolete: no longer used",
    ]

"""The risk engine: every Assessment field, test-then-train, learning from controls,
snapshots, and the settings it is built from."""

from __future__ import annotations

import gc
import inspect
import math
import pickle
from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from typing import Any

from vigie.contracts.codec import decode, encode
from vigie.contracts.schemas import EXAMPLE_DECLARATION, ControlResult, Declaration, Score
from vigie.model.engine import RiskEngine
from vigie.settings import EngineSettings
from vigie.worker.records import score_record
from vigie_dev.generator import generate

START = datetime(2026, 1, 5, 8, tzinfo=UTC)


def _decl(i: int, **changes: Any) -> Declaration:
    fields: dict[str, Any] = dict(
        EXAMPLE_DECLARATION,
        declaration_id=f"D{i}",
        lodged_at=(START + timedelta(minutes=10 * i)).isoformat(),
        importer=f"IMP{i % 40}",
        customs_value_eur=20_000.0 + 37.0 * (i % 50),
    )
    fields.update(changes)
    return Declaration.model_validate(fields)


def _control(decl: Declaration, fraud: bool) -> ControlResult:
    return ControlResult(
        declaration_id=decl.declaration_id,
        controlled_at=decl.lodged_at + timedelta(days=3),
        outcome="infraction" if fraud else "compliant",
        selection="other",
        selection_probability=1.0,
    )


def test_assessment_fills_every_field_without_the_clock() -> None:
    engine = RiskEngine()
    decl = _decl(1)
    assessment = engine.score_one(decl)
    assert 0.0 <= assessment.risk <= 1.0 and 0.0 <= assessment.supervised_probability <= 1.0
    assert 0.0 < assessment.selection_probability <= 1.0
    assert assessment.model_versions == engine.versions
    assert engine.score_one(decl) == assessment  # scoring learns nothing, reads no clock


def test_assessments_stamp_into_valid_scores() -> None:
    """Every Assessment (warm-up, warm, selected with reasons) makes a valid wire Score."""
    engine = RiskEngine()
    selected_with_reasons = 0
    pending: list[ControlResult] = []
    for i, item in enumerate(generate(1500, seed=3)):
        decl = item.declaration
        assessment = engine.score_one(decl)
        engine.learn_one(decl)
        pending.append(
            ControlResult(
                declaration_id=decl.declaration_id,
                controlled_at=decl.lodged_at + timedelta(days=1),
                outcome="infraction" if item.truth.typology else "compliant",
                selection="other",
            )
        )
        if i % 10 == 9:
            for result in pending:
                engine.learn_control(result)
            pending.clear()
        score = score_record(decl, assessment, decl.lodged_at, latency_ms=0.1)
        assert decode(Score, encode(score)) == score
        selected_with_reasons += assessment.selected and bool(assessment.reasons)
    assert selected_with_reasons > 0
    assert engine.versions["memory"] != "memory-0"


def test_parameters_are_the_engine_settings_with_their_defaults() -> None:
    parameters = inspect.signature(RiskEngine).parameters
    settings = EngineSettings()
    assert {name: p.default for name, p in parameters.items()} == settings.options()
    built = RiskEngine(**EngineSettings(budget=0.1, seed=3).options())
    assert (built.budget, built.seed) == (0.1, 3)


def test_learn_control_needs_a_scored_declaration() -> None:
    engine = RiskEngine()
    decl = _decl(1)
    assert engine.learn_control(_control(decl, True)) is False
    engine.score_one(decl)
    engine.learn_one(decl)
    assert engine.n_pending == 1
    assert engine.learn_control(_control(decl, True)) is True
    assert engine.learn_control(_control(decl, True)) is False
    assert engine.versions["memory"] == "memory-1"
    assert engine.versions["combiner"] == "combiner-1"


def test_pending_store_is_bounded_by_count_and_age() -> None:
    engine = RiskEngine(max_pending=50, max_pending_days=2.0)
    for i in range(120):
        decl = _decl(i)
        engine.score_one(decl)
        engine.learn_one(decl)
    assert engine.n_pending == 50
    late = _decl(1000, lodged_at=(START + timedelta(days=30)).isoformat())
    engine.score_one(late)
    assert engine.n_pending == 50  # scoring keeps nothing
    engine.learn_one(late)
    assert engine.n_pending == 1


def test_controls_teach_the_engine_which_consignments_cheat() -> None:
    """Control results of two commodities from one origin: the memory learns their rates
    and says so, at the finest level with results."""
    engine = RiskEngine()
    for i in range(1200):
        code = f"{620341 + i % 4}"
        decl = _decl(i, commodity_code=code)
        engine.score_one(decl)
        engine.learn_one(decl)
        assert engine.learn_control(_control(decl, fraud=code in ("620341", "620342")))
    cheat = engine.score_one(_decl(5003, commodity_code="620342"))
    honest = engine.score_one(_decl(5004, commodity_code="620343"))
    assert cheat.risk > 0.8 > 0.2 > honest.risk
    assert cheat.supervised_probability > 0.9 > 0.1 > honest.supervised_probability
    codes = [r.code for r in cheat.reasons]
    assert codes and codes[0].endswith("_HISTORY"), cheat.reasons
    assert "620342" in cheat.reasons[0].text and "infractions in" in cheat.reasons[0].text


def _day_stream(n: int, per_day: int) -> list[Declaration]:
    return [
        _decl(
            i,
            lodged_at=(START + timedelta(days=i // per_day, seconds=i % per_day)).isoformat(),
            importer=f"IMP{i % 400}",
            commodity_code=f"{620300 + i % 90}",
        )
        for i in range(n)
    ]


def test_budget_and_audits() -> None:
    """The quota selects its share of each day exactly; audits come on top, drawn
    independently of the score, with their inclusion probability."""
    engine = RiskEngine(budget=0.1, audit_share=0.05, seed=3)
    scores = []
    for i, decl in enumerate(_day_stream(3000, per_day=300)):
        scores.append(engine.score_one(decl))
        engine.learn_one(decl)
        engine.learn_control(_control(decl, fraud=i % 400 < 40))
    later = scores[600:]
    engine_selected = sum(s.selection == "engine" for s in later)
    audits = [s for s in later if s.selection == "random_audit"]
    audited_or_chosen = engine_selected + sum(s.selection_probability == 1.0 for s in audits)
    assert abs(audited_or_chosen - 0.1 * len(later)) <= 0.1 * len(later) * 0.1
    assert 0.03 < len(audits) / len(later) < 0.07
    assert all(s.selection_probability in (0.05, 1.0) for s in audits)
    assert all(s.selection_probability == 1.0 for s in later if s.selection == "engine")
    assert all(s.selection_probability == 0.05 for s in later if s.selection is None)
    assert all(s.selected == (s.selection is not None) for s in later)


def test_exports_are_never_selected_nor_learnt_as_import_risk() -> None:
    engine = RiskEngine(budget=1.0, audit_share=1.0)
    export = _decl(1, direction="export", destination="US")
    before = engine.versions
    assessment = engine.score_one(export)
    engine.learn_one(export)
    assert not assessment.selected and assessment.risk == 0.0
    assert engine.learn_control(_control(export, True)) is True  # held, learnt as nothing
    assert engine.versions == before
    imported = engine.score_one(_decl(2))
    assert imported.selected


def test_snapshot_restores_the_same_decisions() -> None:
    engine = RiskEngine(exploration=0.5)
    for i in range(300):
        decl = _decl(i)
        engine.score_one(decl)
        engine.learn_one(decl)
        engine.learn_control(_control(decl, fraud=i % 7 == 0))
    copy = pickle.loads(pickle.dumps(engine))
    probe = _decl(999)
    assert engine.score_one(probe) == copy.score_one(probe)
    fresh = engine.clone()
    assert fresh.n_pending == 0 and fresh.exploration == 0.5


def test_odd_inputs_give_finite_bounded_scores() -> None:
    """Zero mass, zero value, extreme values, missing optional fields."""
    engine = RiskEngine()
    odd: list[dict[str, Any]] = [
        {},
        {"net_mass_kg": 0.0, "customs_value_eur": 0.0},
        {"net_mass_kg": 5.0, "customs_value_eur": 0.0},
        {"net_mass_kg": 0.0, "customs_value_eur": 1e9},
        {"net_mass_kg": 1e-6, "customs_value_eur": 1e12, "supplementary_units": 1e-6},
        {"net_mass_kg": 1e-300, "customs_value_eur": 1e308, "duty_rate_pct": 1000.0},
        {"seller": None, "dispatch": None, "procedure": None, "transport_mode": None},
    ]
    for i in range(300):
        change = odd[i % len(odd)]
        decl = _decl(i).model_copy(update=change)
        before = engine.version
        assessment = engine.score_one(decl)
        engine.learn_one(decl)
        assert engine.version != before
        engine.learn_control(_control(decl, fraud=i % 5 == 0))
        floats = [v for v in astuple(assessment) if isinstance(v, float)]
        assert all(math.isfinite(v) for v in floats)
        assert 0.0 <= assessment.risk <= 1.0 and assessment.expected_recoverable_eur >= 0.0
        score_record(decl, assessment, decl.lodged_at, latency_ms=0.0)  # a valid Score


def test_change_sets_and_pending_items_stay_out_of_the_collectors_sight() -> None:
    """An engine that is never snapshotted keeps every key it changed, and many pending
    declarations: the collector must not walk them at each full collection."""
    engine = RiskEngine(seed=0)
    for item in generate(2000, seed=4):
        engine.score_one(item.declaration)
        engine.learn_one(item.declaration)
    gc.collect()
    gc.collect()  # a tuple of tuples may be untracked one collection after its content
    changed = [changes for _, changes in engine.tables()]
    assert sum(map(len, changed)) > 10_000
    assert not any(gc.is_tracked(changes) for changes in changed)
    pending = list(engine._pending.values())
    assert len(pending) == engine.n_pending > 1000
    assert not any(gc.is_tracked(items) for items in pending)
    assert not any(gc.is_tracked(item) for items in pending for item in items)


def test_a_score_restored_without_its_fields_is_learnt_from_the_declaration() -> None:
    """A snapshot before format 7 holds the last score not learnt without the fields the
    engine read: learning that declaration reads them again, to the same state."""
    stream = [item.declaration for item in generate(400, seed=4)]
    kept, restored = RiskEngine(seed=2), RiskEngine(seed=2)
    for decl in stream[:300]:
        for engine in (kept, restored):
            engine.score_one(decl)
        last = restored._last
        assert last is not None and last.decl is not None
        restored._last = last._replace(decl=None)
        for engine in (kept, restored):
            engine.learn_one(decl)
    later = [[astuple(e.score_one(d)) for d in stream[300:]] for e in (kept, restored)]
    assert later[0] == later[1]


def test_the_view_the_models_read_holds_the_declarations_own_values() -> None:
    from vigie.model.base import Declared, declared, event_day

    names = [name for name in inspect.signature(Declared).parameters if name != "day"]
    assert len(names) == 16
    for item in generate(50, seed=9):
        decl = item.declaration
        view = declared(decl)
        assert [getattr(view, n) for n in names] == [getattr(decl, n) for n in names]
        assert view.day == event_day(decl)


def test_an_infraction_takes_the_value_out_of_the_references() -> None:
    """A compliant result leaves the declared value in the valuation's references; an
    infraction takes it out of every reference still holding it (snapshot format 8)."""
    engine = RiskEngine()
    for i in range(20):
        decl = _decl(i)
        engine.score_one(decl)
        engine.learn_one(decl)
    valuation = engine._valuation
    held = [sum(len(c) // 2 for c in cells.values()) for cells in valuation._cells]
    honest, cheat = _decl(100), _decl(101, customs_value_eur=4_000.0)
    for decl in (honest, cheat):
        engine.score_one(decl)
        engine.learn_one(decl)
    assert [sum(len(c) // 2 for c in cells.values()) for cells in valuation._cells] == [
        n + 2 for n in held
    ]
    assert engine.learn_control(_control(honest, fraud=False))
    assert engine.learn_control(_control(cheat, fraud=True))
    assert [sum(len(c) // 2 for c in cells.values()) for cells in valuation._cells] == [
        n + 1 for n in held
    ]
    x = math.log(cheat.customs_value_eur) - math.log(cheat.net_mass_kg)
    assert all(x not in cell for cells in valuation._cells for cell in cells.values())


def test_pending_evidence_of_format_7_is_learnt_without_its_value() -> None:
    from vigie.model import engine as engine_module

    engine = RiskEngine()
    decl = _decl(1, customs_value_eur=4_000.0)
    engine.score_one(decl)
    engine.learn_one(decl)
    ((evidence, hs6, origin, tax, importer, declarant),) = engine._pending[decl.declaration_id]
    former = engine_module._EVIDENCE_7.pack(*engine_module._EVIDENCE.unpack(evidence)[:-2])
    engine._pending[decl.declaration_id] = ((former, hs6, origin, tax, importer, declarant),)
    cells = [dict(c) for c in engine._valuation._cells]
    assert engine.learn_control(_control(decl, fraud=True))
    assert engine.versions["combiner"] == "combiner-1"
    assert [dict(c) for c in engine._valuation._cells] == cells

"""The in-service evaluation: which labels the engine sees, injected frauds, baselines,
metrics on hand-computed examples."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from vigie.contracts.schemas import EXAMPLE_DECLARATION, ControlResult, Declaration
from vigie.evaluation import Example, metrics, prequential, selection_metrics
from vigie.evaluation.baselines import HierarchicalRates, NoveltyRule, RobustZ
from vigie.evaluation.comparison import run_baselines
from vigie.evaluation.injection import inject, parse_specs
from vigie.evaluation.metrics import kind_groups, kind_recall, ratio, week_extremes, weekly
from vigie.evaluation.protocol import AUDIT, CLOSED_LOOP, EVERY_LABEL, Window
from vigie.evaluation.quota import DailyQuota
from vigie.model.assessment import Assessment
from vigie.model.engine import RiskEngine

START = datetime(2026, 1, 5, tzinfo=UTC)
DELAY = timedelta(days=3)
CODES = ("620342", "620343", "640399", "850440", "940360", "392690", "847130", "730890",
         "610910", "420222", "870899", "030617")  # fmt: skip
ORIGINS = ("CN", "VN", "BD", "TR", "IN", "PK", "MA", "TN", "ID", "TH", "MY", "PH", "KR", "JP",
           "US", "MX", "BR", "EG", "ZA", "KE")  # fmt: skip


def stream(n: int = 3000, seed: int = 0) -> list[Example]:
    """``n`` declarations over ~30 days, 60 importers, all controlled; a tenth cheat, all
    on the same product and origin."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        importer = i % 60
        cheat = importer % 10 == 3
        at = (importer + (i // 60) % 2) % len(CODES)  # two products per importer
        code = "940360" if cheat else CODES[at]
        mass = rng.uniform(100, 3000)
        decl = Declaration.model_validate(
            dict(
                EXAMPLE_DECLARATION,
                declaration_id=f"D{i}",
                importer=f"IMP{importer}",
                lodged_at=START + timedelta(minutes=15 * i),
                commodity_code=code,
                origin="TR" if cheat else ORIGINS[(2 * at + importer % 2) % len(ORIGINS)],
                dispatch="CN",
                net_mass_kg=mass,
                customs_value_eur=mass * 12 * rng.lognormvariate(0, 0.2) * (0.3 if cheat else 1),
                invoice_amount=None,
            )
        )
        control = ControlResult(
            declaration_id=decl.declaration_id,
            controlled_at=decl.lodged_at + DELAY,
            selection="other",
            outcome="infraction" if cheat else "compliant",
        )
        out.append(Example(decl, control))
    return out


class RecordingEngine(RiskEngine):
    """The real engine, recording what it decided and when each label reached it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decided: dict[str, tuple[datetime, Assessment]] = {}
        self.learnt: list[tuple[datetime, ControlResult]] = []
        self._unstamped: list[ControlResult] = []

    def score_one(self, decl: Declaration) -> Assessment:
        # the labels learnt since the last score were learnt before scoring this one
        self.learnt += [(decl.lodged_at, result) for result in self._unstamped]
        self._unstamped = []
        assessment = super().score_one(decl)
        self.decided[decl.declaration_id] = (decl.lodged_at, assessment)
        return assessment

    def learn_control(self, result: ControlResult) -> bool:
        self._unstamped.append(result)
        return super().learn_control(result)


def test_closed_loop_reveals_only_the_selected_labels_after_the_delay() -> None:
    examples = stream()
    engine = RecordingEngine(budget=0.1, audit_share=0.03, seed=2)
    trace = prequential(examples, engine, label_delay=DELAY)
    selected = {k: a for k, (_, a) in engine.decided.items() if a.selected}
    assert engine.learnt and len(engine.learnt) == trace.revealed
    for seen_at, result in engine.learnt:
        lodged, assessment = engine.decided[result.declaration_id]
        assert result.declaration_id in selected  # no label of an unselected declaration
        assert seen_at >= lodged + DELAY  # never before its delay
        assert result.selection == assessment.selection
    last = examples[-1].declaration.lodged_at
    due = [k for k, (t, a) in engine.decided.items() if a.selected and t + DELAY <= last]
    assert sorted(r.declaration_id for _, r in engine.learnt) == sorted(due)
    assert any(a.selection == AUDIT for a in selected.values())
    assert sum(trace.audits) == sum(a.selection == AUDIT for a in selected.values())
    assert trace.regime == CLOSED_LOOP


def test_full_information_reveals_every_label_after_the_delay() -> None:
    examples = stream(1500)
    engine = RecordingEngine()
    trace = prequential(examples, engine, label_delay=DELAY, full_information=True)
    last = examples[-1].declaration.lodged_at
    due = [
        e.declaration.declaration_id for e in examples if e.declaration.lodged_at + DELAY <= last
    ]
    assert sorted(r.declaration_id for _, r in engine.learnt) == sorted(due)
    assert all(seen >= r.controlled_at for seen, r in engine.learnt)
    assert {r.selection_probability for _, r in engine.learnt} == {1.0}
    assert trace.regime == EVERY_LABEL


def test_injected_labels_replace_the_files_outcome_in_what_the_engine_learns() -> None:
    examples = inject(stream(1500), parse_specs("under-valuation:0.05"), seed=1)
    engine = RecordingEngine()
    prequential(examples, engine, label_delay=DELAY, full_information=True)
    truth = {e.declaration.declaration_id: bool(e.fraud) for e in examples}
    assert all(r.is_fraud == truth[r.declaration_id] for _, r in engine.learnt)
    assert any(r.is_fraud for _, r in engine.learnt)


def test_the_measured_window_and_exports() -> None:
    examples = stream(1200)
    exported = examples[5]._replace(
        declaration=examples[5].declaration.model_copy(update={"direction": "export"})
    )
    examples[5] = exported
    start, end = START + timedelta(days=2), START + timedelta(days=6)
    trace = prequential(examples, RiskEngine(), label_delay=DELAY, start=start, end=end)
    inside = [e for e in examples if start <= e.declaration.lodged_at < end]
    assert len(trace.columns["risk"]) == len(inside) == 4 * 96
    assert len(trace.audits) == len(examples)


def test_injections_are_deterministic_by_seed() -> None:
    specs = parse_specs("under-valuation:0.04,new-origin:0.02,new-chapter:0.02,mass-value,split")
    base = stream(2000)
    one, again, other = (inject(base, specs, s) for s in (7, 7, 8))
    assert [e.declaration for e in one] == [e.declaration for e in again]
    assert [e.declaration for e in one] != [e.declaration for e in other]
    kinds: dict[str | None, int] = defaultdict(int)
    for e in one:
        kinds[e.typology] += 1
    assert kinds["under_valuation"] == 80 and kinds["new_origin"] == 40
    assert kinds["new_chapter"] == 40 and kinds["mass_value"] == 40
    assert kinds["split"] >= 2 * 40
    assert all(e.fraud is (e.typology is not None) for e in one)  # the files' labels dropped
    kept = inject(base, specs, 7, keep_labels=True)
    clean = [e for e in kept if e.typology is None]
    assert any(e.label for e in clean) and all(e.fraud is None for e in clean)


def _injected(kind: str, seed: int = 3) -> tuple[list[Example], list[Example]]:
    base = stream(2000)
    return base, inject(base, parse_specs(kind), seed)


def test_under_valuation_multiplies_the_value_in_its_range() -> None:
    base, out = _injected("under-valuation:0.05:0.2-0.4")
    before = {e.declaration.declaration_id: e.declaration for e in base}
    hit = [e for e in out if e.typology == "under_valuation"]
    assert len(hit) == 100
    for e in hit:
        factor = (
            e.declaration.customs_value_eur / before[e.declaration.declaration_id].customs_value_eur
        )
        assert 0.2 <= factor <= 0.4 and abs(e.gap - (1 - factor)) < 1e-9
        assert e.recovered > 0


def test_new_origin_is_never_seen_for_the_hs6_elsewhere() -> None:
    _, out = _injected("new-origin:0.03")
    hit = [e for e in out if e.typology == "new_origin"]
    assert len(hit) == 60
    for e in hit:
        d = e.declaration
        others = {
            o.declaration.origin
            for o in out
            if o is not e and o.declaration.commodity_code[:6] == d.commodity_code[:6]
        }
        assert d.origin not in others


def test_new_chapter_is_a_chapter_the_importer_never_declares() -> None:
    _, out = _injected("new-chapter:0.03")
    hit = [e for e in out if e.typology == "new_chapter"]
    assert len(hit) == 60
    for e in hit:
        d = e.declaration
        mine = [o.declaration for o in out if o is not e and o.declaration.importer == d.importer]
        assert d.chapter not in {o.chapter for o in mine}
        assert any(o.lodged_at < d.lodged_at for o in mine)  # an importer already seen


def test_mass_value_moves_the_unit_value_far_both_ways() -> None:
    base, out = _injected("mass-value:0.05")
    before = {e.declaration.declaration_id: e.declaration for e in base}
    factors = [
        e.declaration.net_mass_kg / before[e.declaration.declaration_id].net_mass_kg
        for e in out
        if e.typology == "mass_value"
    ]
    assert len(factors) == 100
    assert all(5 <= f <= 20 or 1 / 20 <= f <= 1 / 5 for f in factors)
    assert any(f > 1 for f in factors) and any(f < 1 for f in factors)


def test_split_lodges_parts_under_the_threshold_the_same_day() -> None:
    base, out = _injected("split:0.02")
    threshold = statistics.median(e.declaration.customs_value_eur for e in base)
    before = {e.declaration.declaration_id: e.declaration for e in base}
    parts: dict[str, list[Declaration]] = defaultdict(list)
    for e in out:
        if e.typology == "split":
            parts[e.declaration.declaration_id.rsplit("-S", 1)[0]].append(e.declaration)
    assert len(parts) == 40
    for source_id, group in parts.items():
        source = before[source_id]
        assert 2 <= len(group) <= 5
        assert {(d.importer, d.commodity_code, d.origin, d.lodged_at.date()) for d in group} == {
            (source.importer, source.commodity_code, source.origin, source.lodged_at.date())
        }
        assert all(d.customs_value_eur < threshold for d in group)
        assert abs(sum(d.customs_value_eur for d in group) - source.customs_value_eur) < 1e-6
    assert len(out) == len(base) + sum(len(g) - 1 for g in parts.values())


@pytest.mark.parametrize(
    "spec", ["bogus", "under-valuation:2", "split:0.1:1-3", "new-origin,new-origin"]
)
def test_a_wrong_injection_is_named(spec: str) -> None:
    with pytest.raises(ValueError, match=r"KIND|share|twice"):
        parse_specs(spec)


def test_hierarchical_rates_smooth_toward_the_parent() -> None:
    decl = Declaration.model_validate(EXAMPLE_DECLARATION)
    rates = HierarchicalRates(m=2.0)
    for fraud in (True, True, False):
        rates.learn(decl, fraud)
    root = (2 + 1) / (3 + 2)
    expected = root
    for _ in range(5):  # every level saw the same 3 controls, 2 frauds
        expected = (2 + 2 * expected) / (3 + 2)
    assert rates.score(decl)[1] == pytest.approx(expected)
    other = decl.model_copy(update={"commodity_code": "84713000"})
    assert rates.score(other)[1] == pytest.approx(root)  # an unseen chapter: the root
    bonus = HierarchicalRates(m=2.0, ucb=1.0)
    assert bonus.score(other)[0] == pytest.approx(0.5 + np.sqrt(0.25 / 2))


def test_robust_z_falls_back_to_the_hs6_and_novelty_counts_both() -> None:
    decl = Declaration.model_validate(EXAMPLE_DECLARATION)
    z = RobustZ(min_rows=5)
    for value in (1000.0, 1100.0, 900.0):
        z.learn(decl.model_copy(update={"customs_value_eur": value, "origin": "VN"}))
    assert z.z(decl.model_copy(update={"customs_value_eur": 1000.0})) == pytest.approx(0.0)
    assert z.z(decl.model_copy(update={"customs_value_eur": 300.0})) < -5
    novelty = NoveltyRule()
    assert novelty.score(decl) == 0.0  # nothing known: nothing new
    novelty.learn(decl)
    moved = decl.model_copy(update={"origin": "VN", "commodity_code": "84713000"})
    assert novelty.score(moved) == 1.0  # a new chapter for the importer; 8471 never seen
    assert novelty.score(decl.model_copy(update={"origin": "VN"})) == 1.0


def test_daily_quota_selects_exactly_its_share_every_day() -> None:
    quota = DailyQuota(budget=0.05)
    rng = random.Random(0)
    carried = 0.0
    for volume in (100, 130, 90, 210, 55):
        quota.start_day(volume)
        chosen = sum(quota.decide(rng.random()) for _ in range(volume))
        exact = 0.05 * volume + carried
        assert chosen == int(exact + 1e-9)
        carried = exact - chosen


def test_selection_metrics_on_a_hand_computed_example() -> None:
    labels = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 0], dtype=float)
    targeted = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    audited = np.array([0, 0, 0, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    duty = np.array([10, 5, 20, 30, 1, 1, 40, 1, 1, 1], dtype=float)
    m = selection_metrics(labels, targeted, audited, duty)
    assert m["precision"] == 0.6 and m["precision_targeted"] == 0.6667
    assert m["precision_audits"] == 0.5 and m["hit_ratio"] == 1.3333
    assert m["recall"] == 0.75 and m["duty_recovered"] == 0.6
    assert m["share"] == 0.5 and m["share_targeted"] == 0.3
    weeks = np.array(["W1"] * 5 + ["W2"] * 5, dtype=object)
    per_week = weekly(weeks, labels, targeted, audited, duty, -np.arange(10.0), 0.2)
    assert per_week["W1"]["precision"] == 0.6 and per_week["W2"]["precision"] is None
    assert per_week["W1"]["rank_precision@20%"] == 1.0
    stub = {"precision": 0.0, "precision_targeted": 0.0, "share": 0.08, "partial": True}
    extremes = week_extremes({"W0": stub, **per_week})
    assert extremes["week_min_precision"] == 0.0  # every week, the stub of three days too
    assert extremes["full_week_min_precision"] == 0.6
    groups = kind_groups(["a", None, "a", "b", None, None, "b", None, None, None], np.zeros(10))
    kinds = kind_recall(groups, -np.arange(10.0), 0.2, targeted)
    # AUC of "a" (rows 0 and 2) against the rows of no kind (1, 4, 5, 7, 8, 9): 11 of 12 pairs
    assert kinds["a"] == {"n": 2, "recall_top": 0.5, "auc": 0.9167, "recall_selected": 1.0}
    assert kinds["b"]["recall_top"] == 0.0 and kinds["b"]["recall_selected"] == 0.0
    assert ratio(0.6, 0.4) == 1.5


def test_baselines_run_under_the_engines_label_regime() -> None:
    examples = stream(3000)
    engine = RiskEngine(budget=0.05, audit_share=0.02, seed=1)
    window = Window(START + timedelta(days=10), None)
    trace = prequential(examples, engine, label_delay=DELAY, start=window.start)
    columns = run_baselines(
        examples, trace.audits, budget=0.05, label_delay=DELAY, window=window,
        full_information=False,
    )  # fmt: skip
    n = len(trace.columns["risk"])
    rates = columns["rates"]
    assert len(rates["score"]) == n and rates["targeted"].mean() == pytest.approx(0.05, abs=0.01)
    assert list(rates["audited"]) == trace.columns["audited"]  # the engine's audits
    assert not (rates["targeted"] & rates["audited"]).any()
    labels = np.array(trace.columns["label"])
    # the cheating importers are a tenth: learnt from its own selections, the rates find them
    assert labels[rates["targeted"]].mean() > 2 * labels.mean()
    assert set(columns) == {"rates", "rates_ucb", "robust_z", "robust_abs_z", "novelty"}
    report = metrics(trace, budget=0.05)
    assert report["selection"]["n"] == n and report["selection"]["selected"] > 0


def test_evaluate_command_end_to_end(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vigie.cli import _register, app
    from vigie.cli.output import CommandError
    from vigie_dev.generator import GeneratorConfig, write_files

    out, controls, truth = tmp_path / "d.jsonl", tmp_path / "c.jsonl", tmp_path / "t.jsonl"
    write_files(GeneratorConfig(n=1500, seed=5), out, controls, truth)
    _register()
    runner = CliRunner()
    args = ["evaluate", str(out), "--controls", str(controls), "--rejects", str(tmp_path / "r")]
    inject_args = ["--inject", "under-valuation:0.05,new-origin:0.03", "--seed", "3"]
    done = runner.invoke(
        app, [*args, *inject_args, "--baselines", "--limit", "1200", "--seeds", "2", "--json"]
    )
    assert done.exit_code == 0, done.output
    report = orjson.loads(done.stdout)
    spread = report["seeds"]
    assert spread["seeds"] == [3, 4] and report["engine"]["seed"] == 3
    assert spread["precision"]["values"][0] == report["selection"]["precision"]
    precisions = [v for v in spread["precision"]["values"] if v is not None]
    assert spread["precision"]["min"] == min(precisions)
    assert report["label_regime"] == CLOSED_LOOP and report["n"] == 1200
    assert report["injected"] == ["under-valuation:0.05:0.15-0.5", "new-origin:0.03:0-0"]
    assert {"precision", "hit_ratio", "duty_recovered", "week_min_precision"} <= set(
        report["selection"]
    )
    assert set(report["typologies"]["risk"]) >= {"under_valuation", "new_origin", "any"}
    rates = report["baselines"]["rates"]
    assert rates["ratio"]["precision"] == pytest.approx(
        report["selection"]["precision"] / rates["selection"]["precision"], abs=2e-3
    )
    assert "recall_top[under_valuation]" in report["baselines"]["robust_z"]["ratio"]
    assert all(week.startswith("2026-W") for week in report["weeks"])
    # the generator's world starts on a Thursday: its first week is measured in part
    first = next(iter(report["weeks"].values()))
    assert first["partial"] and report["selection"]["full_week_min_precision"] is not None
    human = runner.invoke(app, [*args, "--full-information", "--baselines", "--seeds", "2"])
    assert human.exit_code == 0, human.output
    assert "selection over the engine's seeds" in human.stdout
    assert EVERY_LABEL in human.stdout and "engine/rates" in human.stdout
    bad = runner.invoke(app, [*args, "--inject", "over-valuation"])
    assert isinstance(bad.exception, CommandError) and "--inject" in str(bad.exception)

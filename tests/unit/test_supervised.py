"""The supervised learner, the infraction history and the inspection budget."""

from __future__ import annotations

import math
import pickle
import random

import pytest

from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
from vigie.model.budget import InspectionBudget
from vigie.model.history import InfractionHistory, declaration_keys
from vigie.model.supervised import ControlLearner, RiskCombiner, ipw


def _stream(n: int, seed: int) -> list[tuple[dict[str, float], bool]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = {"a": rng.gauss(0, 1), "b": rng.gauss(0, 1), "noise": rng.gauss(0, 1)}
        logit = 2.0 * x["a"] - 1.5 * x["b"] - 1.0
        out.append((x, rng.random() < 1 / (1 + 2.718281828**-logit)))
    return out


def test_learner_ranks_by_the_learnt_signal() -> None:
    model = ControlLearner(warm_up=50)
    for x, y in _stream(3000, 0):
        model.learn_one(x, {}, y)
    assert model.is_warm
    assert model.predict_proba_one({"a": 2.0, "b": -2.0, "noise": 0.0}, {}) > 0.9
    assert model.predict_proba_one({"a": -2.0, "b": 2.0, "noise": 0.0}, {}) < 0.1


def test_learner_neutral_before_any_control_and_rejects_changed_features() -> None:
    model = ControlLearner()
    assert model.predict_proba_one({"a": 1.0}, {}) == 0.5
    model.learn_one({"a": 1.0}, {"cat:x=1": 1.0}, True)
    try:
        model.predict_proba_one({"a": 1.0, "b": 2.0}, {})
    except ValueError as exc:
        assert "expected 1 numeric features" in str(exc)
    else:
        raise AssertionError("a changed feature set must be refused")


def test_learner_weights_matter() -> None:
    """Inverse-probability weights: as many infractions as compliant results, but the
    infractions weighted 20, give a probability well above one half."""
    model = ControlLearner(learning_rate=0.05)
    for i in range(400):
        model.learn_one({"a": float(i % 3)}, {}, True, weight=20.0)
        model.learn_one({"a": float(i % 3)}, {}, False, weight=1.0)
    assert model.predict_proba_one({"a": 1.0}, {}) > 0.8


def test_learner_pickles_and_clones() -> None:
    model = ControlLearner(learning_rate=0.05)
    for x, y in _stream(200, 1):
        model.learn_one(x, {}, y)
    copy = pickle.loads(pickle.dumps(model))
    probe = {"a": 0.3, "b": 0.1, "noise": 0.0}
    assert copy.predict_proba_one(probe, {}) == model.predict_proba_one(probe, {})
    assert copy.version == model.version == "supervised-200"
    fresh = model.clone()
    assert fresh.learning_rate == 0.05 and fresh.n_learnt == 0


def test_ipw_clips() -> None:
    assert ipw(None, 0.001, 20.0) == 20.0
    assert ipw(0.25, 0.5, 20.0) == 4.0
    assert ipw(None, 1.0, 20.0) == 1.0


def test_history_uses_only_what_it_learnt() -> None:
    decl = Declaration.model_validate(EXAMPLE_DECLARATION)
    keys = declaration_keys(decl)
    hist = InfractionHistory(prior_strength=1.0)
    rate, n = hist.rate("importer", keys["importer"])
    assert (rate, n) == (0.5, 0.0)
    for fraud in (True, True, True, False):
        hist.learn_one(keys, fraud)
    rate, n = hist.rate("importer", keys["importer"])
    assert n == 4.0 and 0.6 < rate < 0.75
    other = dict(keys, importer="SOMEONE-ELSE")
    assert hist.rate("importer", other["importer"]) == (hist.global_rate, 0.0)
    g = hist.global_rate
    assert hist.features(other)["te:importer"] == pytest.approx(math.log(g / (1 - g)))


def test_history_is_bounded() -> None:
    hist = InfractionHistory(keys=("importer",), max_keys=10)
    for i in range(100):
        hist.learn_one({"importer": f"I{i}"}, i % 2 == 0)
    assert hist.size == 10
    assert hist.rate("importer", "I99")[1] == 1.0
    assert hist.rate("importer", "I0")[1] == 0.0


def test_combiner_starts_unsupervised() -> None:
    stack = RiskCombiner()
    assert stack.predict_proba_one((0.5, 0.8, 0.5)) == 1 - 0.2 * 0.5


def test_budget_selects_about_its_share() -> None:
    rng = random.Random(3)
    budget = InspectionBudget(budget=0.1, audit_share=0.0, seed=0)
    selected = 0
    for i in range(10_000):
        decision = budget.decide(rng.random())
        budget.learn_one(decision.risk)
        selected += decision.selected and i >= 1000
        assert decision.selection in (None, "engine")
    assert 0.08 < selected / 9000 < 0.12


def test_budget_audits_record_their_probability() -> None:
    budget = InspectionBudget(budget=0.0, audit_share=0.2, seed=1)
    decisions = [budget.decide(0.5) for _ in range(2000)]
    audits = [d for d in decisions if d.selected]
    assert all(d.selection == "random_audit" for d in audits)
    assert all(d.selection_probability == 0.2 for d in decisions)
    assert 0.15 < len(audits) / 2000 < 0.25


def test_budget_restart_follows_a_change_of_risk_scale() -> None:
    rng = random.Random(3)
    budget = InspectionBudget(budget=0.05, audit_share=0.0, window=5000, seed=0)
    for _ in range(5000):  # unsupervised risks: uniform on [0.5, 1]
        budget.learn_one(0.5 + 0.5 * rng.random())
    assert budget.threshold > 0.9
    budget.restart()  # calibrated risks: uniform on [0, 0.3]
    selected = 0
    for i in range(2000):
        decision = budget.decide(0.3 * rng.random())
        budget.learn_one(decision.risk)
        selected += decision.selected and i >= 200
    assert budget.threshold < 0.3
    assert 0.03 < selected / 1800 < 0.07


def test_combiner_floors_keep_a_class_at_least_at_the_rate_of_the_classes_it_dominates() -> None:
    floors = [[], [0]]
    combiner = RiskCombiner(warm_up=10, valuation_classes=2, floors=floors)
    rng = random.Random(4)
    for _ in range(2000):  # class 0 is telling, class 1 has few controls and no frauds
        combiner.learn_one((0.0, 0.9, 0.0, 0), rng.random() < 0.6)
    for _ in range(5):
        combiner.learn_one((0.0, 0.9, 0.0, 1), False)
    assert combiner.calibrated(0, 0.9, 1) >= combiner.calibrated(0, 0.9, 0) > 0.5
    with pytest.raises(ValueError, match="lower classes"):
        RiskCombiner(valuation_classes=2, floors=[[1], []])

"""Learning from controls: the learner, the infraction history, the calibration and the
inspection budget."""

from __future__ import annotations

import math
import pickle
import random

import pytest

from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
from vigie.model.budget import InspectionBudget
from vigie.model.calibration import RiskCombiner
from vigie.model.infractions import InfractionHistory
from vigie.model.keys import KEYS, declaration_base, key_values
from vigie.model.learner import ControlLearner, ipw


def _stream(n: int, seed: int) -> list[tuple[list[float], bool]]:
    """Features (a, b, noise) and an outcome whose log-odds is 2a - 1.5b - 1."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b, noise = rng.gauss(0, 1), rng.gauss(0, 1), rng.gauss(0, 1)
        logit = 2.0 * a - 1.5 * b - 1.0
        out.append(([a, b, noise], rng.random() < 1 / (1 + 2.718281828**-logit)))
    return out


def test_learner_ranks_by_the_learnt_signal() -> None:
    model = ControlLearner(warm_up=50)
    for x, y in _stream(3000, 0):
        model.learn_one(x, (), y)
    assert model.is_warm
    assert model.predict_proba_one([2.0, -2.0, 0.0], ()) > 0.9
    assert model.predict_proba_one([-2.0, 2.0, 0.0], ()) < 0.1


def test_learner_neutral_before_any_control_and_rejects_changed_features() -> None:
    model = ControlLearner()
    assert model.predict_proba_one([1.0], ()) == 0.5
    model.learn_one([1.0], ("cat:x=1",), True)
    with pytest.raises(ValueError, match="expected 1 numeric features, got 2"):
        model.predict_proba_one([1.0, 2.0], ())
    with pytest.raises(ValueError, match="expected 1 numeric features, got 2"):
        model.learn_one([1.0, 2.0], (), False)


def test_learner_weights_matter() -> None:
    """Inverse-probability weights: as many infractions as compliant results, but the
    infractions weighted 20, give a probability well above one half."""
    model = ControlLearner(learning_rate=0.05)
    for i in range(400):
        model.learn_one([float(i % 3)], (), True, weight=20.0)
        model.learn_one([float(i % 3)], (), False, weight=1.0)
    assert model.predict_proba_one([1.0], ()) > 0.8


def test_learner_pickles_and_clones() -> None:
    model = ControlLearner(learning_rate=0.05)
    for x, y in _stream(200, 1):
        model.learn_one(x, (), y)
    copy = pickle.loads(pickle.dumps(model))
    probe = [0.3, 0.1, 0.0]
    assert copy.predict_proba_one(probe, ()) == model.predict_proba_one(probe, ())
    assert copy.version == model.version == "supervised-200"
    fresh = model.clone()
    assert fresh.learning_rate == 0.05 and fresh.n_learnt == 0


def test_ipw_clips() -> None:
    assert ipw(None, 0.001, 20.0) == 20.0
    assert ipw(0.25, 0.5, 20.0) == 4.0
    assert ipw(None, 1.0, 20.0) == 1.0


def _learn(hist: InfractionHistory, values: tuple[str, ...], fraud: bool) -> None:
    hist.learn_one(hist.rows(values), hist.epoch, lambda: values, fraud)


def test_history_uses_only_what_it_learnt() -> None:
    keys = key_values(declaration_base(Declaration.model_validate(EXAMPLE_DECLARATION)))
    importer = KEYS.index("importer")
    hist = InfractionHistory(prior_strength=1.0)
    assert hist.rate(hist.rows(keys)[importer]) == (0.5, 0.0)
    for fraud in (True, True, True, False):
        _learn(hist, keys, fraud)
    rate, n = hist.rate(hist.rows(keys)[importer])
    assert n == 4.0 and 0.6 < rate < 0.75
    other = (*keys[:importer], "SOMEONE-ELSE", *keys[importer + 1 :])
    rows = hist.rows(other)
    assert hist.rate(rows[importer]) == (hist.global_rate, 0.0)
    g = hist.global_rate
    assert hist.logits(rows)[importer] == pytest.approx(math.log(g / (1 - g)))


def test_history_learns_again_the_values_it_forgot_since_scoring() -> None:
    hist = InfractionHistory(keys=("importer",), max_keys=10)
    _learn(hist, ("A",), False)
    rows, epoch = hist.rows(("A",)), hist.epoch  # A scored with its row
    others = [(f"I{i}",) for i in range(12)]
    for values in others:  # A, the oldest, is forgotten and its row reused by another
        _learn(hist, values, False)
    assert hist.rows(("A",)) == [0]
    reused = next(values for values in others if hist.rows(values) == rows)
    hist.learn_one(rows, epoch, lambda: ("A",), True)
    assert hist.rate(hist.rows(("A",))[0])[1] == 1.0
    assert hist.rate(rows[0])[1] == 1.0  # the other value's count, untouched
    assert hist.rows(reused) == rows


def test_history_is_bounded() -> None:
    hist = InfractionHistory(keys=("importer",), max_keys=10)
    for i in range(100):
        _learn(hist, (f"I{i}",), i % 2 == 0)
    assert hist.size == 10
    assert hist.rate(hist.rows(("I99",))[0])[1] == 1.0
    assert hist.rate(hist.rows(("I0",))[0])[1] == 0.0


def test_combiner_starts_unsupervised() -> None:
    stack = RiskCombiner()
    assert stack.predict_proba_one((0.5, 0.8, 0.5, 0)) == 1 - 0.2 * 0.5


def test_budget_selects_about_its_share() -> None:
    rng = random.Random(3)
    budget = InspectionBudget(budget=0.1, audit_share=0.0, seed=0)
    selected = 0
    for i in range(10_000):
        decision = budget.decide(rng.random())
        budget.learn_one(decision)
        selected += decision.selected and i >= 1000
        assert decision.selection in (None, "engine")
    assert 0.08 < selected / 9000 < 0.12


def test_budget_audits_record_their_probability() -> None:
    budget = InspectionBudget(budget=0.0, audit_share=0.2, seed=1)
    decisions = []
    for _ in range(2000):
        decisions.append(budget.decide(0.5))
        assert budget.decide(0.5) == decisions[-1]  # deciding draws nothing
        budget.learn_one(decisions[-1])
    audits = [d for d in decisions if d.selected]
    assert all(d.selection == "random_audit" for d in audits)
    assert all(d.selection_probability == 0.2 for d in decisions)
    assert 0.15 < len(audits) / 2000 < 0.25


def test_budget_restart_follows_a_change_of_risk_scale() -> None:
    rng = random.Random(3)
    budget = InspectionBudget(budget=0.05, audit_share=0.0, window=5000, seed=0)
    for _ in range(5000):  # unsupervised risks: uniform on [0.5, 1]
        budget.learn_one(budget.decide(0.5 + 0.5 * rng.random()))
    assert budget.threshold > 0.9
    budget.restart()  # calibrated risks: uniform on [0, 0.3]
    selected = 0
    for i in range(2000):
        decision = budget.decide(0.3 * rng.random())
        budget.learn_one(decision)
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

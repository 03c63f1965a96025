"""ValuationDetector: the live fair price, its fallbacks, and its protection from fraud."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vigie.contracts.schemas import Declaration
from vigie.model.valuation import ValuationDetector

START = datetime(2026, 1, 1, tzinfo=UTC)


def decl(i: int, price: float, mass: float = 100.0, **change: Any) -> Declaration:
    record: dict[str, Any] = {
        "declaration_id": f"V{i}",
        "lodged_at": START + timedelta(hours=i),
        "office": "FR000730",
        "declarant": "D1",
        "importer": f"I{i % 13}",
        "commodity_code": "62034231",
        "origin": "CN",
        "customs_value_eur": price * mass,
        "net_mass_kg": mass,
        "duty_rate_pct": 12.0,
    }
    record.update(change)
    return Declaration.model_validate(record)


def market(
    n: int, price: float = 20.0, sigma: float = 0.2, seed: int = 0, **change: Any
) -> list[Declaration]:
    rng = random.Random(seed)
    return [decl(i, price * rng.lognormvariate(0, sigma), **change) for i in range(n)]


def run(detector: ValuationDetector, declarations: list[Declaration]) -> None:
    for d in declarations:
        detector.score_one(d)
        detector.learn_one(d)


def test_reference_converges_to_the_market_median() -> None:
    det = ValuationDetector(min_support=20)
    run(det, market(2000))
    ev = det.score_one(decl(9999, 20.0))
    assert ev.support_level == "cn8+origin"
    assert ev.reference_unit_value == pytest.approx(20.0, rel=0.05)
    assert ev.ratio == pytest.approx(1.0, rel=0.05)
    assert abs(ev.robust_z or 0) < 0.3 and ev.score < 0.05
    assert not ev.below_lowest_acceptable and ev.duty_at_risk_eur < 30.0


def test_score_is_monotone_in_the_gap_and_duty_at_risk_is_the_unpaid_duty() -> None:
    det = ValuationDetector(min_support=20)
    run(det, market(1000))
    evidences = [det.score_one(decl(9999, 20.0 * r)) for r in (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)]
    scores = [e.score for e in evidences]
    assert scores == sorted(scores) and scores[-1] > 0.99 and scores[0] < 0.05
    low = evidences[4]
    assert low.below_lowest_acceptable and not evidences[2].below_lowest_acceptable
    reference = low.reference_unit_value or 0.0
    assert low.duty_at_risk_eur == pytest.approx((reference * 100 - 400.0) * 0.12)
    assert evidences[-1].ratio == 0.0


def test_sparse_cells_fall_back_to_coarser_levels() -> None:
    det = ValuationDetector(min_support=30)
    run(det, market(40))
    # Same CN8 from another origin: the code alone has support, the (code, origin) cell not.
    ev = det.score_one(decl(1, 20.0, origin="BD"))
    assert ev.support_level == "cn8"
    assert 30 <= ev.support_count <= 40
    # A sibling CN8 of the same HS6 falls back to HS6, a sibling heading to HS2.
    assert det.score_one(decl(2, 20.0, commodity_code="62034239")).support_level == "hs6"
    assert det.score_one(decl(3, 20.0, commodity_code="62099000")).support_level == "hs2"
    fresh = det.score_one(decl(4, 20.0, commodity_code="85171300"))
    assert (fresh.score, fresh.reference_unit_value, fresh.support_level) == (0.0, None, None)


def test_a_young_cell_is_blended_with_its_anchor_by_credibility() -> None:
    det = ValuationDetector(min_support=30, prior_strength=10.0)
    run(det, market(200, sigma=0.05))  # CN at 20 EUR/kg
    run(det, [decl(200 + i, 40.0, origin="BD") for i in range(10)])  # BD at 40 EUR/kg
    ev = det.score_one(decl(300, 40.0, origin="BD"))
    # Ten BD observations against ten pseudo-observations of the CN8 anchor (~20.6).
    assert (ev.support_level, ev.support_count) == ("cn8+origin", 10)
    expected = math.exp(0.5 * math.log(40.0) + 0.5 * math.log(20.6))
    assert ev.reference_unit_value == pytest.approx(expected, rel=0.05)


def test_reference_is_protected_from_the_fraud_it_measures() -> None:
    rng = random.Random(7)
    stream = []
    for i, d in enumerate(market(3000, seed=1)):
        if rng.random() < 0.3:  # 30 % of declarations at a fifth of their value
            d = decl(i, d.customs_value_eur / d.net_mass_kg * 0.2)
        stream.append(d)
    protected = ValuationDetector(min_support=20)
    naive = ValuationDetector(min_support=20, flagged_weight=1.0)
    run(protected, stream)
    run(naive, stream)
    probe = decl(3000, 20.0)
    guarded = protected.score_one(probe).reference_unit_value or 0.0
    dragged = naive.score_one(probe).reference_unit_value or 0.0
    assert guarded == pytest.approx(20.0, rel=0.06)
    assert dragged < 0.9 * 20.0
    assert protected.n_flagged > 700


def test_reference_follows_a_lasting_market_move() -> None:
    det = ValuationDetector(min_support=20, half_life_days=10.0)
    run(det, market(1000, price=20.0))  # about 42 days
    later = [
        decl(
            2000 + i,
            8.0 * random.Random(i).lognormvariate(0, 0.2),
            lodged_at=START + timedelta(days=45 + i / 24),
        )
        for i in range(24 * 90)
    ]
    run(det, later)  # prices fall by 60 % for 90 days
    ev = det.score_one(later[-1].model_copy(update={"customs_value_eur": 800.0}))
    assert ev.reference_unit_value == pytest.approx(8.0, rel=0.1)


def test_supplementary_units_give_a_per_unit_reference() -> None:
    det = ValuationDetector(min_support=20)
    rng = random.Random(3)
    # Mass per piece varies widely, price per piece does not: the unit reference is sharper.
    for i in range(500):
        pieces = 100.0
        mass = pieces * rng.uniform(0.1, 1.0)
        d = decl(
            i,
            0.0,
            mass=mass,
            customs_value_eur=pieces * 30.0 * rng.lognormvariate(0, 0.1),
            supplementary_units=pieces,
        )
        det.learn_one(d)
    half_price = decl(1, 0.0, mass=50.0, customs_value_eur=1500.0, supplementary_units=100.0)
    ev = det.score_one(half_price)
    assert (ev.unit, ev.support_level) == ("unit", "cn8+origin")
    assert ev.reference_unit_value == pytest.approx(30.0, rel=0.05)
    assert ev.score > 0.9


def test_zero_mass_and_zero_value_are_neutral_and_not_learnt() -> None:
    det = ValuationDetector(min_support=5)
    run(det, market(50))
    cells = det.n_cells
    empty = decl(1, 0.0, mass=0.0)
    assert det.score_one(empty).score == 0.0
    det.learn_one(empty)
    assert det.n_cells == cells
    zero_value = det.score_one(decl(2, 0.0, mass=10.0))
    assert zero_value.score > 0.99 and zero_value.ratio == 0.0
    assert math.isfinite(zero_value.robust_z or 0.0)


def test_cells_are_capped() -> None:
    det = ValuationDetector(max_cells=12)
    for i, code in enumerate(["62034231", "61091000", "85171300", "08039010"] * 5):
        det.learn_one(decl(i, 10.0, commodity_code=code, origin="CN" if i % 2 else "TR"))
    assert det.n_cells == 12


def test_support_is_the_decayed_count_across_a_landmark_move() -> None:
    # One declaration a day for 100 days at a 1-day half-life: weights pass 2 ** 40, the
    # landmark moves, and the support is still sum(2 ** -k) = 2.
    det = ValuationDetector(min_support=1, half_life_days=1.0)
    run(det, [decl(i, 20.0, lodged_at=START + timedelta(days=i)) for i in range(100)])
    ev = det.score_one(decl(100, 20.0, lodged_at=START + timedelta(days=99)))
    assert ev.support_count == 2
    assert ev.reference_unit_value == pytest.approx(20.0, rel=0.1)


def test_support_stays_bounded_far_before_the_landmark() -> None:
    # weights grow to 2 ** 39 in 40 days at a 1-day half-life; read 2,000 half-lives
    # earlier, the support is beyond any float: it is bounded, not infinite
    det = ValuationDetector(min_support=1, half_life_days=1.0)
    run(det, [decl(i, 20.0, lodged_at=START + timedelta(days=i)) for i in range(40)])
    ev = det.score_one(decl(40, 20.0, lodged_at=START - timedelta(days=2000)))
    assert ev.support_count == 10**9
    assert ev.reference_unit_value == pytest.approx(20.0, rel=0.1)


@pytest.mark.parametrize("staleness", [0.0, 0.05])
def test_a_stale_reference_lags_by_at_most_its_staleness(staleness: float) -> None:
    stream = market(3000, seed=5)
    det = ValuationDetector(min_support=20, staleness=staleness)
    exact = ValuationDetector(min_support=20, staleness=0.0)
    worst = 0.0
    for d in stream:
        ev, truth = det.score_one(d), exact.score_one(d)
        worst = max(worst, abs(math.log((ev.ratio or 1.0) / (truth.ratio or 1.0))))
        det.learn_one(d)
        exact.learn_one(d)
    # the median lags by a few observations: well under a 10 % bin
    assert worst == 0.0 if staleness == 0.0 else 0.0 < worst < 0.05


def test_a_genuinely_cheaper_origin_becomes_its_own_reference() -> None:
    det = ValuationDetector(min_support=20)
    run(det, market(300, price=20.0))  # CN at 20 EUR/kg
    cheap = market(60, price=4.0, seed=3, origin="BD")  # BD at a fifth of it, honestly
    run(det, [d.model_copy(update={"declaration_id": f"BD{i}"}) for i, d in enumerate(cheap)])
    ev = det.score_one(decl(360, 4.0, origin="BD"))
    assert ev.support_level == "cn8+origin" and (ev.support_count or 0) >= 50
    assert ev.score < 0.05 and ev.reference_unit_value == pytest.approx(4.0, rel=0.1)
    # a fraud at a fifth of the BD price is still flagged there
    assert det.score_one(decl(361, 0.8, origin="BD")).score > 0.99


def test_a_fraud_in_a_young_cell_is_not_learnt_as_its_price() -> None:
    det = ValuationDetector(min_support=20)
    run(det, market(300, price=20.0))
    young = [decl(1000 + i, 20.0 * (0.2 if i % 2 else 1.0), origin="BD") for i in range(12)]
    run(det, young)  # half of a young cell's declarations at a fifth of the price
    ev = det.score_one(decl(2000, 20.0, origin="BD"))
    assert ev.support_level == "cn8+origin"
    assert ev.reference_unit_value == pytest.approx(20.0, rel=0.1)

"""ValuationDetector: identical goods in the same quantity, robust z, fallbacks, bounds."""

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


def test_z_on_a_small_example() -> None:
    """z is (x - median) / sqrt((n s^2 + 5 P^2) / (n + 5)), s the cell's MAD scaled by
    1.4826 and P the level's pooled dispersion."""
    det = ValuationDetector()
    prices = [18.0, 19.0, 20.0, 21.0, 22.0]
    run(det, [decl(i, p) for i, p in enumerate(prices)])
    logs = sorted(math.log(p) for p in prices)
    center = logs[2]
    spread = 1.4826 * sorted(abs(x - center) for x in logs)[2]
    pooled = det._pooled[0]
    scale = math.sqrt((5 * spread**2 + 5 * pooled**2) / 10)
    ev = det.score_one(decl(99, 12.0))
    assert ev.support_level == "hs6+origin+quantity" and ev.support_count == 5
    assert ev.reference_unit_value == pytest.approx(20.0)
    assert ev.robust_z == pytest.approx((math.log(12.0) - center) / scale)
    assert ev.ratio == pytest.approx(0.6) and not ev.below_lowest_acceptable


def test_reference_converges_to_the_market_median() -> None:
    det = ValuationDetector()
    run(det, market(400))
    ev = det.score_one(decl(999, 20.0))
    assert ev.reference_unit_value == pytest.approx(20.0, rel=0.1)
    assert abs(ev.robust_z or 0.0) < 1.0 and ev.score < 0.1


def test_score_is_monotone_in_the_gap_and_duty_at_risk_is_the_unpaid_duty() -> None:
    det = ValuationDetector()
    run(det, market(300))
    findings = [det.score_one(decl(999, 20.0 * r)) for r in (1.0, 0.8, 0.5, 0.3, 0.1)]
    scores = [f.score for f in findings]
    assert scores == sorted(scores) and scores[-1] > 0.9
    low = findings[-1]
    assert low.below_lowest_acceptable
    unpaid = (low.reference_unit_value or 0.0) * 100.0 - 200.0
    assert low.duty_at_risk_eur == pytest.approx(unpaid * 0.12)


def test_identical_goods_in_the_same_quantity_come_first() -> None:
    """Prices per kg fall with quantity: a large consignment is compared with large ones."""
    det = ValuationDetector()
    small = market(200, price=30.0, mass=10.0, seed=1)
    large = [
        decl(500 + i, d.customs_value_eur / 10.0 * 2 / 3, mass=1000.0)
        for i, d in enumerate(market(200, price=30.0, mass=10.0, seed=2))
    ]
    run(det, small + large)
    ev = det.score_one(decl(999, 20.0, mass=1000.0))
    assert ev.support_level == "hs6+origin+quantity"
    assert ev.reference_unit_value == pytest.approx(20.0, rel=0.15)
    other = det.score_one(decl(998, 20.0, mass=100.0))  # no consignment of 100 kg yet
    assert other.support_level == "hs6+origin"


def test_sparse_references_fall_back_to_coarser_levels() -> None:
    det = ValuationDetector()
    run(det, market(10, commodity_code="62034231", origin="VN"))
    ev = det.score_one(decl(999, 20.0, origin="BD", mass=333.0))  # no BD, no such mass
    assert ev.support_level == "hs6" and ev.support_count == 10
    run(det, market(3, origin="BD", mass=333.0))
    assert det.score_one(decl(998, 20.0, origin="BD", mass=333.0)).support_level == (
        "hs6+origin+quantity"
    )


def test_a_window_follows_a_lasting_market_move() -> None:
    det = ValuationDetector(window=32)
    run(det, market(100, price=20.0))
    run(det, [decl(200 + i, d.customs_value_eur / 100.0 * 2) for i, d in enumerate(market(40))])
    ev = det.score_one(decl(999, 40.0))
    assert ev.reference_unit_value == pytest.approx(40.0, rel=0.1)


def test_zero_mass_and_zero_value_are_neutral_and_not_learnt() -> None:
    det = ValuationDetector()
    run(det, market(50))
    n = det.n_cells
    for change in ({"net_mass_kg": 0.0, "customs_value_eur": 10.0}, {"customs_value_eur": 0.0}):
        odd = decl(999, 20.0).model_copy(update=change)
        assert det.score_one(odd).score == 0.0 and det.score_one(odd).robust_z is None
        det.learn_one(odd)
    assert det.n_cells == n


def test_cells_are_capped() -> None:
    det = ValuationDetector(max_cells=12)
    for i in range(100):
        det.learn_one(decl(i, 20.0, mass=1.0 + i, origin=("CN", "VN", "BD", "IN")[i % 4]))
    assert all(len(cells) <= 12 for cells in det._cells)


def test_a_reference_window_is_bounded() -> None:
    det = ValuationDetector(window=8)
    run(det, market(100))
    cells = [cell.tolist() for level in det._cells for cell in level.values()]
    assert all(len(cell) <= 2 * 8 for cell in cells)
    # the arrivals, then the same values sorted
    assert all(sorted(cell[: len(cell) // 2]) == cell[len(cell) // 2 :] for cell in cells)
    assert max(len(cell) for cell in cells) == 2 * 8


def test_removing_a_value_keeps_a_reference_as_if_it_had_never_come() -> None:
    """Against a plain list: the arrivals in order, the sorted half sorted, the window."""
    from array import array

    from vigie.model.valuation import add_value, remove_value

    rng = random.Random(5)
    for _ in range(200):
        cell, kept = array("d"), list[float]()
        for _ in range(rng.randrange(1, 40)):
            x = float(rng.randrange(8))  # repeats on purpose
            add_value(cell, x, window=10)
            kept = [*kept, x][-10:]
        x = float(rng.randrange(8))
        held = x in kept
        assert remove_value(cell, x) is held
        if held:
            del kept[len(kept) - 1 - kept[::-1].index(x)]  # the latest arrival goes
        n = len(cell) // 2
        assert list(cell[:n]) == kept and list(cell[n:]) == sorted(kept)


def test_a_value_found_in_infraction_no_longer_sets_the_norm() -> None:
    """An under-declared consignment stays in its references until a control finds it;
    then the next one at that price is judged against the honest values alone."""
    from vigie.model.base import declared

    det = ValuationDetector()
    for i in range(8):
        det.learn_one(decl(i, price=100.0 + i))
    cheat = declared(decl(50, price=30.0))
    for _ in range(10):  # a habit: the low price becomes the reference's median
        det.learn_declared(cheat)
    before = det.score_one(decl(60, price=30.0))
    for _ in range(10):
        det.forget_value("620342", "CN", cheat.customs_value_eur, cheat.net_mass_kg)
    after = det.score_one(decl(60, price=30.0))
    assert before.support_count == 18 and after.support_count == 8
    assert before.score < 0.1 and not before.below_lowest_acceptable
    assert (after.robust_z or 0.0) < -3.0 and after.below_lowest_acceptable
    assert det.score_one(decl(61, price=104.0)).score < 0.1

"""AtypicalityDetector: novelty damped by history, bursts, incoherences, bounded memory."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from vigie.contracts.schemas import Declaration
from vigie.model.assessment import AtypicalityFinding
from vigie.model.atypicality import IMPORTANCE, AtypicalityDetector

START = datetime(2026, 1, 1, 8, tzinfo=UTC)


def decl(i: int, **change: Any) -> Declaration:
    record: dict[str, Any] = {
        "declaration_id": f"A{i}",
        "lodged_at": START + timedelta(hours=6 * i),
        "office": "FR000730",
        "declarant": "D1",
        "importer": f"I{i % 10}",
        "seller": f"S{i % 10}",
        "commodity_code": "62034231",
        "origin": "CN",
        "dispatch": "CN",
        "customs_value_eur": 20.0 * 500 * (1 + (i % 7) / 20),
        "net_mass_kg": 500.0,
        "supplementary_units": 1000.0,
        "duty_rate_pct": 12.0,
    }
    record.update(change)
    return Declaration.model_validate(record)


def trained(n: int = 1200, **params: Any) -> AtypicalityDetector:
    det = AtypicalityDetector(warm_up=100, **params)
    for i in range(n):
        d = decl(i)
        det.score_one(d)
        det.learn_one(d)
    return det


def weights(ev: AtypicalityFinding) -> dict[str, float]:
    return {c.name: c.weight for c in ev.contributions}


def test_a_normal_declaration_is_not_atypical() -> None:
    det = trained()
    ev = det.score_one(decl(1200))
    assert ev.score < 0.3


def test_new_chapter_for_an_established_importer() -> None:
    det = trained()
    ev = det.score_one(decl(1200, commodity_code="85171300", net_mass_kg=50.0))
    assert weights(ev)["new_chapter_for_importer"] > 0.45
    assert ev.score >= weights(ev)["new_chapter_for_importer"]  # the trees may add to it
    assert [c.weight for c in ev.contributions] == sorted(
        (c.weight for c in ev.contributions), reverse=True
    )
    assert len(ev.contributions) <= det.top_k


def test_a_new_importer_is_not_atypical_merely_for_being_new() -> None:
    det = trained()
    ev = det.score_one(decl(1200, importer="NEWCOMER", seller="S-NEW"))
    novelty = {"new_chapter_for_importer", "new_route_for_importer", "new_seller_for_importer"}
    assert not novelty & set(weights(ev))
    assert ev.score < 0.3


def test_importer_that_always_changes_seller_is_not_surprised_by_a_new_one() -> None:
    det = AtypicalityDetector(warm_up=10)
    for i in range(200):
        det.learn_one(decl(i, importer="BROKER", seller=f"S{i}"))
    diverse = weights(det.score_one(decl(200, importer="BROKER", seller="S-NEXT")))
    loyal = trained()
    faithful = weights(loyal.score_one(decl(1200, seller="S-NEXT")))
    assert diverse.get("new_seller_for_importer", 0.0) < 0.02
    assert faithful["new_seller_for_importer"] > 0.25


def test_volume_burst() -> None:
    det = trained()
    burst_start = START + timedelta(hours=6 * 1200)
    for j in range(15):
        d = decl(2000 + j, importer="I3", lodged_at=burst_start + timedelta(minutes=5 * j))
        det.learn_one(d)
    ev = det.score_one(decl(3000, importer="I3", lodged_at=burst_start + timedelta(hours=2)))
    assert weights(ev)["volume_burst"] > 0.5


def test_origin_hub_and_mass_incoherences() -> None:
    det = trained()
    assert (
        weights(det.score_one(decl(1200, origin="BR", dispatch="BR")))["origin_unusual_for_product"]
        > 0.5
    )
    assert weights(det.score_one(decl(1200, dispatch="AE")))["unusual_transit_hub"] > 0.4
    heavy = weights(det.score_one(decl(1200, net_mass_kg=20_000.0)))
    assert heavy["mass_per_unit_incoherent"] > 0.5
    assert heavy["unit_value_incoherent"] > 0.5


def test_every_feature_has_an_importance_and_contributions_name_them() -> None:
    det = trained(300)
    ev = det.score_one(decl(300, commodity_code="85171300", origin="BR", dispatch="AE"))
    assert {c.name for c in ev.contributions} <= set(IMPORTANCE)


def test_memory_is_bounded() -> None:
    det = AtypicalityDetector(warm_up=10, max_importers=50, set_cap=4)
    rng = random.Random(0)
    for i in range(500):
        det.learn_one(decl(i, importer=f"I{rng.randrange(200)}", seller=f"S{i}"))
    assert det.n_importers == 50
    assert all(p.distinct(2) <= 4 for p in det._importers.values())  # sellers


def test_learning_after_scoring_equals_learning_alone() -> None:
    # learn_one reuses the features score_one computed; the state must be the same
    scored, unscored = AtypicalityDetector(warm_up=50), AtypicalityDetector(warm_up=50)
    rng = random.Random(3)
    for i in range(600):
        d = decl(i, importer=f"I{rng.randrange(30)}", seller=f"S{rng.randrange(40)}")
        scored.score_one(decl(i, declaration_id=f"other{i}"))  # another declaration first
        scored.score_one(d)
        scored.learn_one(d)
        unscored.learn_one(d)
    probe = decl(600, commodity_code="85171300", dispatch="AE", net_mass_kg=3000.0)
    assert scored.score_one(probe) == unscored.score_one(probe)
    assert scored.version == unscored.version == "atypicality-600"


def test_a_flag_feature_reports_the_value_one() -> None:
    det = trained()
    ev = det.score_one(decl(1200, origin="BR", dispatch="BR", seller="S-NEW"))
    flags = {c.name: c.value for c in ev.contributions}
    assert flags["origin_unusual_for_product"] == 1.0
    assert flags["new_route_for_importer"] == flags["new_seller_for_importer"] == 1.0


def test_a_value_beyond_any_ratio_to_the_usual_ones_stays_finite() -> None:
    det = trained(300)
    # values the contract refuses, set past it: the detector must survive them anyway
    for i in range(5):  # an importer declaring next to nothing
        tiny = decl(300 + i, importer="TINY").model_copy(update={"customs_value_eur": 1e-300})
        det.learn_one(tiny)
    huge = decl(400, importer="TINY").model_copy(update={"customs_value_eur": 1e308})
    ev = det.score_one(huge)
    flags = {c.name: c.value for c in ev.contributions}
    assert flags["value_unusual_for_importer"] == 1100.0  # log2 of the ratio, bounded
    assert weights(ev)["value_unusual_for_importer"] > 0.25

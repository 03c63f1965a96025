"""AtypicalityDetector: graded novelty over the coherence pairs, bounded memory."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from vigie.contracts.schemas import Declaration
from vigie.model.assessment import AtypicalityFinding
from vigie.model.atypicality import PAIRS, AtypicalityDetector, surprise

START = datetime(2026, 1, 1, 8, tzinfo=UTC)


def decl(i: int, **change: Any) -> Declaration:
    record: dict[str, Any] = {
        "declaration_id": f"A{i}",
        "lodged_at": START + timedelta(minutes=10 * i),
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


def trained(n: int = 400, **params: Any) -> AtypicalityDetector:
    det = AtypicalityDetector(**params)
    for i in range(n):
        d = decl(i)
        det.score_one(d)
        det.learn_one(d)
    return det


def surprises(ev: AtypicalityFinding) -> dict[str, float]:
    return {c.name: c.value for c in ev.contributions}


def test_a_normal_declaration_is_not_atypical() -> None:
    assert trained().score_one(decl(5000)).score == 0.0


def test_surprise_is_the_good_turing_chance_of_a_new_value() -> None:
    """A product always from CN (400 declarations, 1 origin): a new origin surprises by
    -log(2 / 402); BR has no history as an origin: its dispatch surprises nothing."""
    ev = trained().score_one(decl(5000, origin="BR", dispatch="BR"))
    found = surprises(ev)
    assert found["origin_new_for_product"] == math.log(402 / 2)
    assert found["origin_new_for_product_regime"] == math.log(402 / 2)
    assert "dispatch_new_for_origin" not in found  # BR has no history: nothing to compare
    assert "origin_new_for_consignment" in found  # the same consignment, another origin
    assert ev.score == 1.0 - math.exp(-sum(found.values()) / 4)


def test_a_context_that_keeps_producing_new_values_is_not_surprised() -> None:
    """An importer who buys a new chapter every time: a new one surprises little."""
    det = AtypicalityDetector()
    for i in range(40):
        d = decl(i, importer="IMPX", commodity_code=f"{10 + i:02d}0342")
        det.learn_one(d)
    ev = det.score_one(decl(99, importer="IMPX", commodity_code="990342"))
    assert surprises(ev)["chapter_new_for_importer"] == surprise(40, 40) < 0.03


def test_new_chapter_for_an_established_importer() -> None:
    ev = trained().score_one(decl(5000, commodity_code="85171300"))
    found = surprises(ev)
    assert found["chapter_new_for_importer"] == surprise(40, 1)
    assert ev.contributions[0].weight > 0.5


def test_a_new_importer_is_not_atypical_merely_for_being_new() -> None:
    ev = trained().score_one(decl(5000, importer="NEWCO"))
    assert ev.score == 0.0


def test_a_consignment_keeps_its_code_and_origin() -> None:
    det = trained()
    same = decl(7, commodity_code="85171300")  # the same value and mass as decl 7
    found = surprises(det.score_one(same))
    assert found["product_new_for_consignment"] > 0.0


def test_duty_rate_and_regime_coherence() -> None:
    det = trained()
    assert "duty_rate_new_for_product" in surprises(det.score_one(decl(5000, duty_rate_pct=0.0)))
    pref = decl(5000, attributes={"tax_type": "FTA-KR"})
    assert "regime_new_for_origin" in surprises(det.score_one(pref))


def test_every_pair_is_named_and_weights_are_shares() -> None:
    ev = trained().score_one(
        decl(5000, origin="BR", dispatch="AR", commodity_code="85171300", duty_rate_pct=3.0)
    )
    assert ev.contributions and all(c.name in PAIRS for c in ev.contributions)
    assert all(0.0 < c.weight < 1.0 for c in ev.contributions)
    values = [c.value for c in ev.contributions]
    assert values == sorted(values, reverse=True) and len(values) <= 3


def test_memory_is_bounded() -> None:
    det = AtypicalityDetector(max_contexts=50, cap=4)
    for i in range(500):
        det.learn_one(decl(i, importer=f"I{i}", commodity_code=f"{10 + i % 80:02d}0342"))
    assert all(len(contexts) <= 50 for contexts in det._contexts)
    assert all(len(entry) - 1 <= 4 for table in det._contexts for entry in table.values())


def test_learning_after_scoring_equals_learning_alone() -> None:
    scored, unscored = AtypicalityDetector(), AtypicalityDetector()
    for i in range(300):
        d = decl(i, origin=("CN", "VN", "BD")[i % 3], importer=f"I{i % 37}")
        scored.score_one(d)
        scored.learn_one(d)
        unscored.learn_one(d)
    probe = decl(9999, origin="BR", importer="I3", commodity_code="85171300")
    assert scored.score_one(probe) == unscored.score_one(probe)

"""Invariants of the unsupervised detectors, for any valid declaration."""

from __future__ import annotations

import math
import pickle
import random
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vigie.contracts.schemas import FUTURE_LIMIT, MIN_MASS_KG, Declaration
from vigie.model.atypicality import AtypicalityDetector
from vigie.model.valuation import ValuationDetector

START = datetime(2026, 1, 1, tzinfo=UTC)
KNOWN = {"62034231": ("CN", 12.5), "85171300": ("VN", 900.0), "080390": ("EC", 0.9)}
COUNTRIES = ["CN", "VN", "EC", "TR", "BR", "AE", "ZZ", "US"]

finite = st.floats(min_value=0.0, max_value=1e12, allow_nan=False, allow_infinity=False)
declarations = st.fixed_dictionaries(
    {
        "declaration_id": st.from_regex(r"[A-Z0-9]{1,12}", fullmatch=True),
        "lodged_at": st.datetimes(  # valid: from 1990 to a year ahead
            min_value=datetime(1990, 1, 1),
            max_value=datetime.now() + FUTURE_LIMIT - timedelta(days=1),
            timezones=st.just(UTC),
        ),
        "office": st.sampled_from(["FR000730", "FR002300", "BE1"]),
        "declarant": st.just("D1"),
        "importer": st.sampled_from([f"IMP{i}" for i in range(5)] + ["NEW"]),
        "commodity_code": st.one_of(
            st.sampled_from(sorted(KNOWN)), st.from_regex(r"\d{6}(\d{2}(\d{2})?)?", fullmatch=True)
        ),
        "origin": st.sampled_from(COUNTRIES),
        "customs_value_eur": finite,
        "net_mass_kg": st.one_of(st.just(0.0), st.floats(min_value=MIN_MASS_KG, max_value=1e10)),
        "duty_rate_pct": st.floats(min_value=0.0, max_value=1000.0),
    },
    optional={
        "seller": st.sampled_from(["S1", "S2", "S3"]),
        "dispatch": st.sampled_from(COUNTRIES),
        "supplementary_units": finite,
        "item_number": st.integers(min_value=1, max_value=999),
    },
)


def market(n: int) -> list[Declaration]:
    rng = random.Random(0)
    out = []
    for i in range(n):
        code = rng.choice(sorted(KNOWN))
        origin, price = KNOWN[code]
        mass = rng.uniform(10, 1000)
        out.append(
            Declaration.model_validate(
                {
                    "declaration_id": f"M{i}",
                    "lodged_at": START + timedelta(hours=i),
                    "office": "FR000730",
                    "declarant": "D1",
                    "importer": f"IMP{i % 5}",
                    "seller": f"S{i % 3}",
                    "commodity_code": code,
                    "origin": origin,
                    "customs_value_eur": mass * price * rng.lognormvariate(0, 0.2),
                    "net_mass_kg": mass,
                    "supplementary_units": mass * 2,
                    "duty_rate_pct": 10.0,
                }
            )
        )
    return out


@cache
def trained_bytes(kind: str) -> bytes:
    detector: Any = (
        ValuationDetector(min_support=20, flagged_weight=0.0)
        if kind == "valuation"
        else AtypicalityDetector(warm_up=100)
    )
    for d in market(600):
        detector.score_one(d)
        detector.learn_one(d)
    return pickle.dumps(detector)


def trained(kind: str) -> Any:
    return pickle.loads(trained_bytes(kind))


def floats_of(evidence: Any) -> list[float]:
    dumped = evidence.model_dump()
    values = [v for v in dumped.values() if isinstance(v, float)]
    for contribution in dumped.get("contributions", ()):
        values += [contribution["value"], contribution["weight"]]
    return values


@settings(max_examples=80, deadline=None)
@given(record=declarations)
def test_scores_are_finite_for_any_valid_declaration(record: dict[str, Any]) -> None:
    decl = Declaration.model_validate(record)
    for kind in ("valuation", "atypicality"):
        detector = trained(kind)
        evidence = detector.score_one(decl)
        assert 0.0 <= evidence.score <= 1.0
        assert all(math.isfinite(x) for x in floats_of(evidence))
        detector.learn_one(decl)
        assert 0.0 <= detector.score_one(decl).score <= 1.0


@settings(max_examples=40, deadline=None)
@given(record=declarations, seed=st.integers(0, 2**16))
def test_scores_do_not_depend_on_field_order(record: dict[str, Any], seed: int) -> None:
    keys = list(record)
    random.Random(seed).shuffle(keys)
    shuffled = {key: record[key] for key in keys}
    for kind in ("valuation", "atypicality"):
        a = trained(kind).score_one(Declaration.model_validate(record))
        b = trained(kind).score_one(Declaration.model_validate(shuffled))
        assert a == b


@settings(max_examples=60, deadline=None)
@given(
    code=st.sampled_from(sorted(KNOWN)),
    ratio=st.floats(min_value=0.0, max_value=0.45),
    mass=st.floats(min_value=1.0, max_value=1e5),
)
def test_reference_unchanged_by_rejected_fraud(code: str, ratio: float, mass: float) -> None:
    detector: ValuationDetector = trained("valuation")
    origin, price = KNOWN[code]
    base = market(601)[-1].model_copy(update={"commodity_code": code, "origin": origin})
    probe = base.model_copy(update={"net_mass_kg": 100.0, "customs_value_eur": 100.0 * price})
    before = detector.score_one(probe)
    fraud = base.model_copy(
        update={
            "declaration_id": "FRAUD",
            "net_mass_kg": mass,
            "supplementary_units": mass * 2,
            "customs_value_eur": mass * price * ratio,
        }
    )
    evidence = detector.score_one(fraud)
    assert evidence.below_lowest_acceptable
    detector.learn_one(fraud)
    after = detector.score_one(probe)
    assert after.reference_unit_value == before.reference_unit_value
    assert after.robust_z == before.robust_z

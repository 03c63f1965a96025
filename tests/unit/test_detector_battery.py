"""The shared battery every detector must pass (River's estimator checks, for Vigie).

Append a factory to ``FACTORIES`` to enrol a new detector; ``headline`` reads the main
figure of whatever ``score_one`` returns. The whole :class:`RiskEngine` is enrolled through
:class:`EngineAtEventTime`.
"""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from vigie.contracts.schemas import Declaration, Score
from vigie.model.atypicality import AtypicalityDetector
from vigie.model.engine import RiskEngine
from vigie.model.valuation import ValuationDetector


class EngineAtEventTime:
    """The risk engine as the battery sees it: scored at the declaration's event time and
    with the measured latency left out, the two fields of a Score that describe the run
    rather than the model."""

    def __init__(self, engine: RiskEngine | None = None) -> None:
        self.engine = engine or RiskEngine(warm_up=20)

    def score_one(self, decl: Declaration) -> Score:
        score = self.engine.score_one(decl, now=decl.lodged_at)
        return score.model_copy(update={"latency_ms": 0.0})

    def learn_one(self, decl: Declaration) -> None:
        self.engine.learn_one(decl)

    @property
    def version(self) -> str:
        return self.engine.version

    def clone(self) -> EngineAtEventTime:
        return EngineAtEventTime(self.engine.clone())

    def __repr__(self) -> str:
        return repr(self.engine)


FACTORIES: dict[str, Callable[[], Any]] = {
    "valuation": lambda: ValuationDetector(min_support=10),
    "atypicality": lambda: AtypicalityDetector(warm_up=50),
    "risk_engine": EngineAtEventTime,
}

_PRODUCTS = (
    ("62034231", "CN", 12.5, 2.0),
    ("85171300", "VN", 900.0, 0.2),
    ("080390", "EC", 0.9, 0),
)
_START = datetime(2026, 1, 5, 8, tzinfo=UTC)


def headline(output: Any) -> float:
    """The main figure of a detector's output: ``score`` of evidence, ``risk`` of a Score."""
    return float(output.score if hasattr(output, "score") else output.risk)


def stream(n: int, seed: int = 0) -> list[Declaration]:
    """A small market: three products, twenty importers, log-normal prices."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        code, origin, price, kg_per_unit = rng.choice(_PRODUCTS)
        mass = round(rng.uniform(50, 5000), 1)
        record: dict[str, Any] = {
            "declaration_id": f"B{seed}-{i}",
            "lodged_at": _START + timedelta(minutes=37 * i),
            "office": rng.choice(["FR000730", "FR002300"]),
            "declarant": "DCL1",
            "importer": f"IMP{rng.randrange(20)}",
            "seller": f"S{rng.randrange(5)}",
            "commodity_code": code,
            "origin": origin,
            "dispatch": origin,
            "customs_value_eur": round(mass * price * rng.lognormvariate(0, 0.25), 2),
            "net_mass_kg": mass,
            "duty_rate_pct": 12.0,
        }
        if kg_per_unit:
            record["supplementary_units"] = round(mass / kg_per_unit)
        out.append(Declaration.model_validate(record))
    return out


def numbers(model: BaseModel) -> list[float]:
    """Every float of a (nested) output record."""
    found: list[float] = []

    def walk(value: Any) -> None:
        if isinstance(value, BaseModel):
            for field in type(value).model_fields:
                walk(getattr(value, field))
        elif isinstance(value, tuple | list):
            for item in value:
                walk(item)
        elif isinstance(value, float):
            found.append(value)

    walk(model)
    return found


def trained(factory: Callable[[], Any], n: int = 300) -> Any:
    detector = factory()
    for decl in stream(n):
        detector.score_one(decl)
        detector.learn_one(decl)
    return detector


@pytest.fixture(params=sorted(FACTORIES))
def factory(request: pytest.FixtureRequest) -> Callable[[], Any]:
    return FACTORIES[request.param]


def test_learn_one_returns_none_and_changes_version(factory: Callable[[], Any]) -> None:
    detector = factory()
    before = detector.version
    assert detector.learn_one(stream(1)[0]) is None
    assert detector.version != before


def test_pickle_round_trip_scores_identically(factory: Callable[[], Any]) -> None:
    detector = trained(factory)
    restored = pickle.loads(pickle.dumps(detector))
    for decl in stream(40, seed=1):
        assert restored.score_one(decl) == detector.score_one(decl)
        detector.learn_one(decl)
        restored.learn_one(decl)
    assert restored.version == detector.version


def test_clone_is_fresh_with_same_parameters(factory: Callable[[], Any]) -> None:
    detector = trained(factory)
    clone = detector.clone()
    assert repr(clone) == repr(detector)
    fresh = factory()
    assert clone.version == fresh.version != detector.version
    probe = stream(1, seed=2)[0]
    assert clone.score_one(probe) == fresh.score_one(probe)


def test_warm_up_is_neutral(factory: Callable[[], Any]) -> None:
    detector = factory()
    for decl in stream(5, seed=3):
        assert headline(detector.score_one(decl)) == 0.0
        detector.learn_one(decl)


def test_missing_optional_fields(factory: Callable[[], Any]) -> None:
    detector = trained(factory)
    bare = Declaration.model_validate(
        {
            "declaration_id": "BARE",
            "lodged_at": "2026-02-01T00:00:00Z",
            "office": "FR000730",
            "declarant": "D",
            "importer": "IMP1",
            "commodity_code": "620342",
            "origin": "CN",
            "customs_value_eur": 100.0,
            "net_mass_kg": 10.0,
            "duty_rate_pct": 0.0,
        }
    )
    output = detector.score_one(bare)
    assert 0.0 <= headline(output) <= 1.0
    detector.learn_one(bare)


def test_scores_are_finite_and_bounded(factory: Callable[[], Any]) -> None:
    detector = trained(factory)
    odd = [
        {"net_mass_kg": 0.0, "customs_value_eur": 0.0},
        {"net_mass_kg": 5.0, "customs_value_eur": 0.0},
        {"net_mass_kg": 0.0, "customs_value_eur": 1e9},
        {"net_mass_kg": 1e-6, "customs_value_eur": 1e12, "supplementary_units": 1e-6},
    ]
    for decl in stream(50, seed=4):
        for change in [{}, *odd]:
            probe = decl.model_copy(update=change)
            output = detector.score_one(probe)
            assert 0.0 <= headline(output) <= 1.0
            assert all(math.isfinite(x) for x in numbers(output))
            detector.learn_one(probe)

"""The check battery (vigie.model.checks) on every model, the whole RiskEngine included.

Enrol a new model by adding a factory to ``FACTORIES``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vigie.contracts.schemas import Declaration
from vigie.model.assessment import ValuationFinding
from vigie.model.atypicality import AtypicalityDetector
from vigie.model.base import Detector
from vigie.model.checks import CHECKS, Factory, check_model
from vigie.model.engine import RiskEngine
from vigie.model.valuation import ValuationDetector

FACTORIES: dict[str, Factory] = {
    "valuation": lambda: ValuationDetector(window=16),
    "atypicality": lambda: AtypicalityDetector(cap=16),
    "risk_engine": lambda: RiskEngine(exploration=0.5),
}


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_model_passes_check(name: str, check: Callable[[Factory], None]) -> None:
    check(FACTORIES[name])


class LearnsWhenScoring(Detector):
    """A model that counts what it scores: the battery must catch it."""

    def __init__(self, step: float = 0.001) -> None:
        self.step = step
        self._seen = 0

    @property
    def version(self) -> str:
        return f"counter-{self._seen}"

    def score_one(self, decl: Declaration) -> ValuationFinding:
        self._seen += 1
        return ValuationFinding(score=min(1.0, self._seen * self.step))

    def learn_one(self, decl: Declaration) -> None:
        self._seen += 1


def test_the_battery_names_the_check_a_model_fails() -> None:
    with pytest.raises(AssertionError, match="check_score_one_learns_nothing: scoring"):
        check_model(LearnsWhenScoring)

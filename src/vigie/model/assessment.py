"""What the models say about one declaration: plain, immutable values, no wire format.

The detectors return findings and the engine an :class:`Assessment`; the worker turns an
assessment into the wire :class:`~vigie.contracts.schemas.Score` and stamps it with the
time it was scored and how long that took. The field names are the Score's, so the
conversion is a copy. Every float is finite.

They live for one declaration, and are written as JSON for each: without ``__slots__``,
orjson reads their fields from ``__dict__`` at once, three times faster. Nothing changes
them once built, yet they are not ``frozen``: a frozen dataclass sets each field through
``object.__setattr__``, which made an Assessment three times slower to build (1.5 us
against 0.56).

Examples
--------
>>> a = Assessment(
...     valuation=ValuationFinding(score=0.9, ratio=0.3),
...     atypicality=AtypicalityFinding(score=0.2),
...     supervised_probability=0.4, risk=0.93, expected_recoverable_eur=120.0,
...     selected=True, selection="engine", selection_probability=1.0, threshold=0.8,
...     reasons=(Reason("VALUE_BELOW_REFERENCE", "declared unit value 30 % ..."),),
...     model_versions={"valuation": "valuation-12"})
>>> a.valuation.ratio, a.reasons[0].code
(0.3, 'VALUE_BELOW_REFERENCE')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

Selection = Literal["engine", "random_audit"]

MAX_EUR: Final = 1e15
"""Amounts in EUR are bounded at this (a thousand trillion), so that they stay finite
whatever value is declared."""


@dataclass
class Reason:
    """A stable reason code and the sentence a targeting agent reads."""

    code: str
    text: str


@dataclass
class Contribution:
    """A feature that pushed the atypicality up: its value and its weight in the score."""

    name: str
    value: float
    weight: float


@dataclass
class ValuationFinding:
    """The declared value against the live fair price of the same goods."""

    score: float
    reference_unit_value: float | None = None
    unit: Literal["kg", "unit"] | None = None
    support_level: str | None = None
    support_count: int = 0
    ratio: float | None = None
    robust_z: float | None = None
    below_lowest_acceptable: bool = False
    duty_at_risk_eur: float = 0.0


@dataclass
class AtypicalityFinding:
    """How far the declaration is from the reference model of normal flows, and why."""

    score: float
    contributions: tuple[Contribution, ...] = ()


@dataclass
class Assessment:
    """The engine's whole answer for one declaration: findings, risk and decision."""

    valuation: ValuationFinding
    atypicality: AtypicalityFinding
    supervised_probability: float
    risk: float
    expected_recoverable_eur: float
    selected: bool
    selection: Selection | None
    selection_probability: float
    threshold: float
    reasons: tuple[Reason, ...] = ()
    model_versions: dict[str, str] = field(default_factory=dict)

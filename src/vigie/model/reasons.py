"""Reason codes and the short sentences a targeting agent reads.

Each reason is a stable code (for dashboards and rules) and a sentence with the figures
that justify it. :func:`explain` gathers the candidates from the evidence of one
declaration, orders them by strength and keeps the first ``limit``.

Examples
--------
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
>>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> valuation = ValuationFinding(score=0.97, reference_unit_value=40.3, unit="kg",
...     support_level="hs6+origin", support_count=412, ratio=0.31,
...     below_lowest_acceptable=True)
>>> facts = Facts(rates={"importer": (0.42, 57.0)}, global_rate=0.2,
...     new_importer=False, new_chapter=True, supervised=None)
>>> for r in explain(decl, valuation, AtypicalityFinding(score=0.0), facts):
...     print(r.code)
...     print("  " + r.text)
VALUE_BELOW_REFERENCE
  declared unit value 31 % of the reference for 620342 from CN, 412 comparable declarations
IMPORTER_HISTORY
  importer infraction rate 42 % over 57 controls
NEW_CHAPTER
  first declaration of chapter 62 by this importer
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple

from vigie.contracts.schemas import Declaration
from vigie.model.assessment import AtypicalityFinding, Reason, ValuationFinding

HISTORY_SUBJECTS: Final[dict[str, tuple[str, str]]] = {
    "importer": ("IMPORTER_HISTORY", "importer"),
    "declarant": ("DECLARANT_HISTORY", "declarant"),
    "seller": ("SELLER_HISTORY", "seller"),
    "hs6_origin": ("PRODUCT_ORIGIN_HISTORY", "this commodity and origin"),
    "importer_hs6": ("IMPORTER_PRODUCT_HISTORY", "this importer and commodity"),
}
"""History keys that can give a reason: code and how the sentence names the subject."""

ATYPICAL_SENTENCES: Final[dict[str, str]] = {
    "new_route_for_importer": "new route (origin, dispatch, office) for this importer",
    "new_seller_for_importer": "first purchase from this seller by this importer",
    "origin_unusual_for_product": "origin never or rarely seen for this commodity",
    "unusual_transit_hub": "dispatched from a country rarely used for this origin",
    "volume_burst": "burst of declarations by this importer",
    "value_unusual_for_importer": "value far above this importer's usual declarations",
    "unit_value_incoherent": "unit value incoherent with the commodity",
    "mass_per_unit_incoherent": "mass per unit incoherent with the commodity",
    "multivariate_outlier": "unusual combination of value, mass and duty",
}

MIN_CONTROLS: Final = 5
"""Controls a key needs before its infraction rate is given as a reason."""


class Facts(NamedTuple):
    """What the engine knows beyond the detectors' evidence."""

    rates: Mapping[str, tuple[float, float]]
    """Smoothed infraction rate and number of controls, per history key."""
    global_rate: float
    new_importer: bool
    new_chapter: bool
    supervised: float | None
    """The supervised probability, when the model is warm."""


def _valuation(decl: Declaration, ev: ValuationFinding) -> tuple[float, Reason] | None:
    if ev.ratio is None or not (ev.below_lowest_acceptable or ev.score >= 0.5):
        return None
    text = (
        f"declared unit value {ev.ratio * 100:.0f} % of the reference for "
        f"{decl.commodity_code[:6]} from {decl.origin}, {ev.support_count} comparable "
        "declarations"
    )
    return 1.0 + ev.score, Reason("VALUE_BELOW_REFERENCE", text)


def _history(facts: Facts) -> list[tuple[float, Reason]]:
    out: list[tuple[float, Reason]] = []
    floor = max(1.5 * facts.global_rate, facts.global_rate + 0.1)
    for key, (code, subject) in HISTORY_SUBJECTS.items():
        rate, n = facts.rates.get(key, (0.0, 0.0))
        if n < MIN_CONTROLS or rate < floor:
            continue
        text = f"{subject} infraction rate {rate * 100:.0f} % over {n:.0f} controls"
        out.append((0.5 + rate, Reason(code, text)))
    return out


def _novelty(decl: Declaration, facts: Facts) -> list[tuple[float, Reason]]:
    if facts.new_importer:
        return [(0.4, Reason("NEW_IMPORTER", "first declaration by this importer"))]
    if facts.new_chapter:
        text = f"first declaration of chapter {decl.commodity_code[:2]} by this importer"
        return [(0.5, Reason("NEW_CHAPTER", text))]
    return []


def _atypical(ev: AtypicalityFinding) -> list[tuple[float, Reason]]:
    out: list[tuple[float, Reason]] = []
    for c in ev.contributions:
        sentence = ATYPICAL_SENTENCES.get(c.name)
        if sentence is not None and c.weight >= 0.3:
            out.append((c.weight, Reason(f"ATYPICAL_{c.name.upper()}", sentence)))
    return out


def explain(
    decl: Declaration,
    valuation: ValuationFinding,
    atypicality: AtypicalityFinding,
    facts: Facts,
    limit: int = 4,
) -> tuple[Reason, ...]:
    """The strongest ``limit`` reasons for a declaration's risk, strongest first."""
    found: list[tuple[float, Reason]] = []
    value = _valuation(decl, valuation)
    if value is not None:
        found.append(value)
    found.extend(_history(facts))
    found.extend(_novelty(decl, facts))
    found.extend(_atypical(atypicality))
    if facts.supervised is not None and facts.supervised >= 0.5:
        text = f"controls of similar declarations: infraction probability {facts.supervised:.0%}"
        found.append((facts.supervised, Reason("CONTROL_HISTORY_MODEL", text)))
    found.sort(key=lambda item: -item[0])
    return tuple(reason for _, reason in found[:limit])

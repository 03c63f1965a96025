"""Reason codes and the short sentences a targeting agent reads.

Each reason is a stable code (for dashboards and rules) and a sentence with the figures
that justify it: which level of the case memory knows infractions, the value against which
reference, which declared fact is new in which context, why an inspection teaches.
:func:`explain` orders the candidates by strength and keeps the first ``limit``.

Examples
--------
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
>>> from vigie.model.base import declared
>>> decl = declared(Declaration.model_validate(EXAMPLE_DECLARATION))
>>> valuation = ValuationFinding(score=0.97, reference_unit_value=40.3, unit="kg",
...     support_level="hs6+origin", support_count=412, ratio=0.31, robust_z=-6.2,
...     below_lowest_acceptable=True)
>>> facts = Facts(mu=0.8, level=3, controls=12.0, infractions=10.0, global_rate=0.2,
...     exploration=0.0)
>>> for r in explain(decl, valuation, AtypicalityFinding(score=0.0), facts):
...     print(r.code)
...     print("  " + r.text)
VALUE_BELOW_REFERENCE
  declared unit value 31 % of the reference of 620342 from CN (412 declarations, z -6.2)
PRODUCT_ORIGIN_HISTORY
  620342 from CN: 10 infractions in 12 controls (infraction probability 80 %)
"""

from __future__ import annotations

from typing import Final, NamedTuple

from vigie.model.assessment import AtypicalityFinding, Reason, ValuationFinding
from vigie.model.atypicality import tax_type
from vigie.model.base import Declared

HISTORY_CODES: Final[tuple[str, ...]] = (
    "CHAPTER_HISTORY",
    "HEADING_HISTORY",
    "PRODUCT_HISTORY",
    "PRODUCT_ORIGIN_HISTORY",
    "PRODUCT_ORIGIN_REGIME_HISTORY",
    "CONSIGNMENT_HISTORY",
)
"""The reason code of each level of the case memory (:data:`vigie.model.memory.LEVELS`)."""

ATYPICAL_SENTENCES: Final[dict[str, str]] = {
    "origin_new_for_product": "origin {origin} never declared for {hs6}",
    "chapter_new_for_importer": "first declaration of chapter {hs2} by this importer",
    "regime_new_for_origin": "tax type {regime} never declared for origin {origin}",
    "duty_rate_new_for_product": "duty rate {rate} % never declared for {hs6}",
    "dispatch_new_for_origin": "dispatch from {dispatch} never seen for origin {origin}",
    "origin_new_for_product_regime": "origin {origin} never declared for {hs6} under {regime}",
    "product_new_for_consignment": "the same consignment was declared under another code",
    "origin_new_for_consignment": "the same consignment was declared from another origin",
    "chapter_new_for_importer_recently": "chapter {hs2} is new for this importer (recent switch)",
    "route_new_for_importer": "route {origin} > {dispatch} @ {office} new for this importer",
    "broker_new_for_importer": "declarant {declarant} new for this importer",
    "seller_new_for_importer": "seller {seller} new for this importer",
    "unit_value_incoherent": "value per kg far from that of {hs6}",
    "mass_per_unit_incoherent": "mass per unit far from that of {hs6}",
    "burst": "many declarations of the same importer, seller and goods within hours",
    "value_unusual_for_shipment": "value far from this importer's usual for {hs6} from this seller",
}
"""The sentence of each novelty pair and behaviour signal
(:data:`vigie.model.atypicality.EVIDENCE`)."""

_REFERENCES: Final[dict[str, str]] = {
    "hs6+origin+quantity": "identical goods in the same quantity ({hs6} from {origin})",
    "hs6+origin": "{hs6} from {origin}",
    "hs6": "{hs6}",
    "hs4": "heading {hs4}",
}
MIN_CONTROLS: Final = 3
"""Control results a level needs before its rate is given as a reason."""


class Facts(NamedTuple):
    """What the case memory says of the declaration."""

    mu: float
    """Posterior infraction probability."""
    level: int
    """The finest level of the chain with control results (-1: none)."""
    controls: float
    infractions: float
    global_rate: float
    exploration: float
    """The exploration value added to the selection score."""


def _subject(decl: Declared, level: int) -> str:
    hs6 = decl.commodity_code[:6]
    return (
        f"chapter {hs6[:2]}",
        f"heading {hs6[:4]}",
        hs6,
        f"{hs6} from {decl.origin}",
        f"{hs6} from {decl.origin} under tax type {tax_type(decl)}",
        f"this consignment ({hs6} from {decl.origin}, same value and mass)",
    )[level]


def _history(decl: Declared, facts: Facts) -> list[tuple[float, Reason]]:
    if facts.level < 0 or facts.controls < 1 or facts.infractions <= 0:
        return []
    floor = max(1.5 * facts.global_rate, facts.global_rate + 0.1)
    if facts.mu < floor or (facts.controls < MIN_CONTROLS and facts.level < 5):
        return []
    text = (
        f"{_subject(decl, facts.level)}: {facts.infractions:.0f} infractions in "
        f"{facts.controls:.0f} controls (infraction probability {facts.mu * 100:.0f} %)"
    )
    return [(0.5 + facts.mu, Reason(HISTORY_CODES[facts.level], text))]


def _valuation(decl: Declared, ev: ValuationFinding) -> list[tuple[float, Reason]]:
    if ev.ratio is None or ev.robust_z is None or ev.support_level is None:
        return []
    if not (ev.below_lowest_acceptable or ev.score >= 0.5):
        return []
    hs6 = decl.commodity_code[:6]
    reference = _REFERENCES.get(ev.support_level, ev.support_level).format(
        hs6=hs6, hs4=hs6[:4], origin=decl.origin
    )
    text = (
        f"declared unit value {ev.ratio * 100:.0f} % of the reference of {reference} "
        f"({ev.support_count} declarations, z {ev.robust_z:.1f})"
    )
    return [(1.0 + ev.score, Reason("VALUE_BELOW_REFERENCE", text))]


def _atypical(decl: Declared, ev: AtypicalityFinding) -> list[tuple[float, Reason]]:
    out: list[tuple[float, Reason]] = []
    hs6 = decl.commodity_code[:6]
    for c in ev.contributions:
        sentence = ATYPICAL_SENTENCES.get(c.name)
        if sentence is None or c.weight < 0.3:
            continue
        text = sentence.format(
            origin=decl.origin,
            hs6=hs6,
            hs2=hs6[:2],
            regime=tax_type(decl),
            rate=f"{decl.duty_rate_pct:g}",
            dispatch=decl.dispatch or "-",
            office=decl.office,
            declarant=decl.declarant,
            seller=decl.seller or "-",
        )
        out.append((c.weight, Reason(f"ATYPICAL_{c.name.upper()}", text)))
    return out


def _exploration(facts: Facts) -> list[tuple[float, Reason]]:
    if facts.exploration < 0.05:
        return []
    text = (
        "recurring consignment with few control results: its inspection decides the next "
        f"ones (exploration value {facts.exploration:.2f})"
    )
    return [(0.2 + facts.exploration, Reason("EXPLORATION", text))]


def explain(
    decl: Declared,
    valuation: ValuationFinding,
    atypicality: AtypicalityFinding,
    facts: Facts,
    limit: int = 4,
) -> tuple[Reason, ...]:
    """The strongest ``limit`` reasons for a declaration's selection, strongest first."""
    found = _valuation(decl, valuation)
    found.extend(_history(decl, facts))
    found.extend(_atypical(decl, atypicality))
    found.extend(_exploration(facts))
    found.sort(key=lambda item: -item[0])
    return tuple([reason for _, reason in found[:limit]])

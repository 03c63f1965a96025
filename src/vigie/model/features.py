"""The engine's feature layout: what the supervised model and the combiner read.

The supervised model reads :data:`FEATURES` (numbers, in this order) and the one-hot
categories of :func:`one_hot`; the combiner reads the valuation depth and evidence class
(:func:`valuation_depth`, :func:`valuation_class`). Why these: docs/learning-from-controls.md.
"""

from __future__ import annotations

import math
from typing import Final

from vigie.contracts.schemas import Declaration
from vigie.model.activity import ACTIVITY_FEATURES
from vigie.model.assessment import AtypicalityFinding, ValuationFinding
from vigie.model.atypicality import IMPORTANCE
from vigie.model.keys import BASE_FIELDS, KEYS

_ONE_HOT: Final = tuple(
    (BASE_FIELDS.index(name), f"cat:{name}=")
    for name in (
        "transport_mode",
        "procedure",
        "import_type",
        "import_use",
        "payment_type",
        "tax_type",
        "origin_indicator",
    )
)
DECLARATION_FEATURES: Final = (
    "num:duty",
    "num:log_value",
    "num:log_mass",
    "num:log_unit_value",
    "num:courier",
)
DETECTOR_FEATURES: Final = (
    "val:score",
    "val:log_ratio",
    "val:z",
    "val:below",
    "val:log_support",
    "atyp:score",
    *(f"atyp:{name}" for name in IMPORTANCE),
)
HISTORY_FEATURES: Final = tuple(f"te:{key}" for key in KEYS)
FEATURES: Final = (
    *DECLARATION_FEATURES,
    *ACTIVITY_FEATURES,
    *DETECTOR_FEATURES,
    "val:importer_flagged",
    *HISTORY_FEATURES,
)
"""The supervised model's numeric features, in the order of the engine's feature vector."""
_CONTRIBUTION_AT: Final = {name: i for i, name in enumerate(IMPORTANCE)}
_MAX_LOG: Final = 710.0
"""Above the natural log of any finite float: only an overflow to infinity is clipped."""

DEPTH_Z: Final = 10.0
"""Robust z-score at which the valuation depth saturates (``depth = -z / DEPTH_Z``)."""
SUPPORT_CLASSES: Final[tuple[float, ...]] = (20.0, 100.0)
"""Support (effective comparable declarations) bounds of the valuation evidence classes."""
OWN_LOWEST: Final = 0.6
"""A value under this share of the importer's own usual price of the same goods is
"below its own price"."""
VALUATION_CLASSES: Final = 18


def declaration_features(decl: Declaration) -> list[float]:
    """Value, mass and duty features (:data:`DECLARATION_FEATURES`).

    >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
    >>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
    >>> [round(v, 2) for v in declaration_features(decl)]
    [12.0, 10.13, 7.6, 2.6, 0.0]
    """
    mass = decl.net_mass_kg
    value = decl.customs_value_eur
    return [
        decl.duty_rate_pct,
        math.log1p(value),
        math.log1p(mass),
        min(math.log1p(value / mass), _MAX_LOG) if mass > 0 else 0.0,
        1.0 if "courier" in decl.attributes else 0.0,
    ]


def detector_features(valuation: ValuationFinding, atyp: AtypicalityFinding) -> list[float]:
    """The unsupervised detectors' outputs as supervised features (:data:`DETECTOR_FEATURES`).

    >>> f = detector_features(ValuationFinding(score=0.9, ratio=0.25, robust_z=-4.0),
    ...                       AtypicalityFinding(score=0.3))
    >>> f = dict(zip(DETECTOR_FEATURES, f))
    >>> round(f["val:log_ratio"], 3), f["val:z"], f["atyp:score"]
    (-1.386, -4.0, 0.3)
    """
    ratio = valuation.ratio
    z = valuation.robust_z
    contributions = [0.0] * len(_CONTRIBUTION_AT)
    for c in atyp.contributions:
        contributions[_CONTRIBUTION_AT[c.name]] = c.weight
    return [
        valuation.score,
        max(-5.0, min(5.0, math.log(ratio))) if ratio and ratio > 0 else 0.0,
        max(-10.0, min(10.0, z)) if z is not None else 0.0,
        1.0 if valuation.below_lowest_acceptable else 0.0,
        math.log1p(valuation.support_count),
        atyp.score,
        *contributions,
    ]


def one_hot(base: tuple[str, ...]) -> tuple[str, ...]:
    """The one-hot indicators that are on, for the low-cardinality fields (transport mode
    to origin marking) of a declaration's base fields.

    >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
    >>> from vigie.model.keys import declaration_base
    >>> sorted(one_hot(declaration_base(Declaration.model_validate(EXAMPLE_DECLARATION))))[:2]
    ['cat:import_type=-', 'cat:import_use=-']
    """
    return tuple([prefix + base[i] for i, prefix in _ONE_HOT])


def valuation_depth(valuation: ValuationFinding) -> float:
    """How far below its reference a value is, ``-z / DEPTH_Z`` in [0, 1] (0 without one).

    >>> valuation_depth(ValuationFinding(score=1.0, ratio=0.2, robust_z=-6.0)), (
    ...     valuation_depth(ValuationFinding(score=0.0)))
    (0.6, 0.0)
    """
    z = valuation.robust_z
    if z is None:
        return 0.0
    return min(1.0, max(0.0, -z / DEPTH_Z))


def valuation_class(valuation: ValuationFinding, own_ratio: float | None = None) -> int:
    """The kind of valuation evidence, 0 to 17: ``6 * own + 2 * support class + below``.

    ``support class``: under 20, 20 to 100, over 100 comparable declarations; ``below``:
    under half of the reference; ``own``: the value against the importer's own usual
    price of the same goods, 0 in line with it, 1 no history, 2 under :data:`OWN_LOWEST`.

    >>> valuation_class(ValuationFinding(score=1.0, ratio=0.3, robust_z=-5.0,
    ...                                  support_count=400, below_lowest_acceptable=True))
    11
    >>> valuation_class(ValuationFinding(score=0.9, ratio=0.6, robust_z=-4.0, support_count=8),
    ...                 own_ratio=1.1)
    0
    """
    support = valuation.support_count
    level = sum(support >= bound for bound in SUPPORT_CLASSES)
    own = 1 if own_ratio is None else (2 if own_ratio < OWN_LOWEST else 0)
    return 6 * own + 2 * level + (1 if valuation.below_lowest_acceptable else 0)


def class_order() -> tuple[list[list[int]], list[list[int]]]:
    """Which valuation classes bound which: :class:`~vigie.model.calibration.RiskCombiner`'s
    ``floors`` and ``borrows``.

    A value below half of the reference (odd class) keeps at least the rates of the class
    above half (class - 1), of the denser reference (class - 2) and of the lower own-price
    state (class - 6); a value above half is only smoothed toward the last two.

    >>> floors, borrows = class_order()
    >>> floors[5], borrows[4], floors[17], borrows[16]
    ([4, 3], [2], [16, 15, 11], [14, 10])
    """
    floors: list[list[int]] = []
    borrows: list[list[int]] = []
    for c in range(VALUATION_CLASSES):
        lower = [c - 2] if c % 6 >= 2 else []
        if c >= 6:
            lower.append(c - 6)
        if c % 2:
            floors.append([c - 1, *lower])
            borrows.append([])
        else:
            floors.append([])
            borrows.append(lower)
    return floors, borrows

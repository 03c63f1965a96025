"""Atypicality (atypie): how far a declaration is from the normal flows, and why.

Eleven features, each turned into a surprise in [0, 1] and weighted by its importance
(:data:`IMPORTANCE`): novelty for the importer (chapter, route, seller, broker), origin
and transit hub unusual for the product, volume bursts, a value far from the importer's
usual ones, unit value and mass per unit incoherent with the product, and River's
Half-Space Trees over the numeric features. The score is the noisy-or of the weighted
surprises; the contributions are the largest of them. Why and how: docs/detectors.md.
"""

from __future__ import annotations

import math
import sys
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Final, TypeVar

from river import anomaly

from vigie.contracts.schemas import Declaration
from vigie.model.assessment import AtypicalityFinding, Contribution
from vigie.model.base import Detector
from vigie.model.behaviour import (
    Horizons,
    ImporterProfile,
    Keys,
    ProductMemory,
    aspect_keys,
    squash,
)
from vigie.model.quantiles import SECONDS_PER_DAY, EWStats, OnlineQuantile

NOVELTIES: Final = (
    "new_chapter_for_importer",
    "new_route_for_importer",
    "new_seller_for_importer",
    "new_declarant_for_importer",
)
"""The importer novelty features, in the order of ``behaviour.ASPECTS``."""

IMPORTANCE: Final[dict[str, float]] = {
    "new_chapter_for_importer": 0.5,
    "new_route_for_importer": 0.3,
    "new_seller_for_importer": 0.3,
    "new_declarant_for_importer": 0.35,
    "origin_unusual_for_product": 0.6,
    "unusual_transit_hub": 0.5,
    "volume_burst": 0.6,
    "value_unusual_for_importer": 0.35,
    "unit_value_incoherent": 0.7,
    "mass_per_unit_incoherent": 0.6,
    "multivariate_outlier": 0.45,
}
"""The weight of each feature when fully surprising."""

LIMITS: Final[dict[Hashable, tuple[float, float]]] = {
    "log_value": (0.0, 8.0),
    "log_mass": (0.0, 8.0),
    "unit_value_z": (-6.0, 6.0),
    "mass_per_unit_z": (-6.0, 6.0),
    "duty_rate": (0.0, 0.5),
    "burst_nats": (0.0, 20.0),
    "log_value_ratio": (-8.0, 8.0),
    "transit": (0.0, 1.0),
}
"""Fixed ranges of the numeric features fed to the Half-Space Trees."""

# The features live in two lists (values, surprises) laid out as IMPORTANCE, not in a dict
# of tuples: one declaration builds no per-feature object.
_NAMES: Final = tuple(IMPORTANCE)
_WEIGHTS: Final = tuple(IMPORTANCE.values())
(_CHAPTER, _ROUTE, _SELLER, _DECLARANT, _ORIGIN, _HUB, _BURST, _VALUE, _UNIT_VALUE, _MASS_PER_UNIT,
 _OUTLIER) = range(len(_NAMES))  # fmt: skip
_FLAGS: Final = (1.0,) * (_ORIGIN + 1) + (0.0,) * (len(_NAMES) - _ORIGIN - 1)
"""Initial values: a novelty's value is 1.0, read only when its surprise is positive."""
_AFTER_NOVELTIES: Final = (0.0,) * (len(_NAMES) - len(NOVELTIES))
_MAX_LOG2: Final = 1100.0
"""Above the base-2 log of any ratio of finite floats: only an overflow is clipped."""
_NEUTRAL: Final = AtypicalityFinding(score=0.0)
_Memory = TypeVar("_Memory", ImporterProfile, ProductMemory, EWStats)

_Prepared = tuple[
    float,  # event time in days
    list[float],  # feature values, as _NAMES
    list[float],  # feature surprises, as _NAMES
    dict[Hashable, float],  # the numeric inputs of the trees
    Keys,  # the importer profile keys
    ImporterProfile | None,  # the memories read (None: not known yet)
    ProductMemory | None,
    EWStats | None,  # the HS4 kg per unit
    float | None,  # log unit value (EUR/kg)
    float | None,  # log kg per supplementary unit
]


class AtypicalityDetector(Detector):
    """Multivariate outlyingness plus categorical novelty and behaviour features.

    Parameters
    ----------
    n_trees, height, window_size
        Half-Space Trees parameters.
    seed
        Random seed of the trees.
    warm_up
        Declarations learnt before the detector scores anything (neutral 0 before).
    max_importers, max_products
        Caps on importer profiles and per-product memories (LRU eviction).
    set_cap
        At most this many distinct chapters / routes / sellers remembered per importer.
    short_days, long_days
        Half-lives of the importer's recent and long-run activity counters.
    importer_tau, product_tau
        History lengths over which novelty surprise matures (see ``behaviour``).
    fresh_days
        Half-life of the surprise of an importer's latest new chapter, route, seller or
        broker while it repeats (the follow-ups of a switch stay atypical).
    hub_share
        A transit country carrying less than this share of an origin's flow is unusual.
    top_k
        Contributions reported.

    Examples
    --------
    An importer of shirts from China, through Roissy, suddenly declaring engines from
    China dispatched via the Emirates:

    >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
    >>> det = AtypicalityDetector(warm_up=100)
    >>> for i in range(300):
    ...     d = dict(EXAMPLE_DECLARATION, declaration_id=f"D{i}",
    ...              lodged_at=f"2026-03-{1 + i // 20:02d}T{i % 20:02d}:30:00Z",
    ...              customs_value_eur=25000.0 + 100 * (i % 7))
    ...     det.learn_one(Declaration.model_validate(d))
    >>> odd = dict(EXAMPLE_DECLARATION, declaration_id="ODD", commodity_code="84082010",
    ...            dispatch="AE", lodged_at="2026-03-16T09:00:00Z")
    >>> ev = det.score_one(Declaration.model_validate(odd))
    >>> round(ev.score, 2)
    0.9
    >>> for c in ev.contributions:
    ...     print(f"{c.name:<25} {c.weight:.2f}")
    unusual_transit_hub       0.50
    new_chapter_for_importer  0.50
    multivariate_outlier      0.45
    new_route_for_importer    0.30
    """

    def __init__(
        self,
        n_trees: int = 3,
        height: int = 5,
        window_size: int = 250,
        seed: int = 0,
        warm_up: int = 250,
        max_importers: int = 100_000,
        max_products: int = 50_000,
        set_cap: int = 32,
        short_days: float = 0.25,
        long_days: float = 60.0,
        importer_tau: float = 3.0,
        fresh_days: float = 7.0,
        product_tau: float = 50.0,
        hub_share: float = 0.02,
        top_k: int = 5,
    ) -> None:
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed
        self.warm_up = warm_up
        self.max_importers = max_importers
        self.max_products = max_products
        self.set_cap = set_cap
        self.short_days = short_days
        self.long_days = long_days
        self.importer_tau = importer_tau
        self.fresh_days = fresh_days
        self.product_tau = product_tau
        self.hub_share = hub_share
        self.top_k = top_k
        self._trees: Any = anomaly.HalfSpaceTrees(  # River's methods are untyped
            n_trees=n_trees, height=height, window_size=window_size, limits=LIMITS, seed=seed
        )
        self._horizons = Horizons(set_cap, short_days, long_days, importer_tau, fresh_days)
        self._q90 = OnlineQuantile(0.90, step=0.002)
        self._q99 = OnlineQuantile(0.99, step=0.002)
        self._importers: OrderedDict[str, ImporterProfile] = OrderedDict()
        self._products: OrderedDict[str, ProductMemory] = OrderedDict()
        self._unit_masses: OrderedDict[str, EWStats] = OrderedDict()
        self._hubs: dict[str, dict[str, int]] = {}
        self._n = 0
        self._last: tuple[str, int, _Prepared] | None = None

    @property
    def version(self) -> str:
        """Changes whenever the detector learns."""
        return f"atypicality-{self._n}"

    @property
    def n_importers(self) -> int:
        return len(self._importers)

    def score_one(self, decl: Declaration) -> AtypicalityFinding:
        """The atypicality score and its top contributions; neutral during warm-up."""
        prepared = self._prepare(decl)
        self._last = (decl.declaration_id, decl.item_number, prepared)
        if self._n < self.warm_up:
            return _NEUTRAL
        return self._finding(prepared[1], prepared[2])

    def learn_one(self, decl: Declaration) -> None:
        """Learn one declaration (every declaration: novelty is about what was seen)."""
        last = self._last
        self._last = None
        if last is not None and last[0] == decl.declaration_id and last[1] == decl.item_number:
            prepared = last[2]
        else:
            prepared = self._prepare(decl)
        t, values, _, numeric, keys, profile, product, masses, log_uv, log_kpu = prepared
        raw = values[_OUTLIER]
        self._q90.update(raw)
        self._q99.update(raw)
        self._trees.learn_one(numeric)
        if profile is None:
            profile = _added(self._importers, decl.importer, ImporterProfile(t), self.max_importers)
        else:
            self._importers.move_to_end(decl.importer)
        profile.learn(keys, decl.customs_value_eur, t, self._horizons)
        self._learn_product(decl, product, masses, log_uv, log_kpu)
        self._n += 1

    def _finding(self, values: list[float], surprises: list[float]) -> AtypicalityFinding:
        """Noisy-or of the weighted surprises; the ``top_k`` largest weights (>= 0.01)."""
        remaining = 1.0
        weighted = []
        for importance, surprise, name, value in zip(
            _WEIGHTS, surprises, _NAMES, values, strict=True
        ):
            if surprise > 0.0:
                weight = importance * surprise
                remaining *= 1.0 - weight
                if weight >= 0.01:
                    weighted.append((weight, name, value))
        if remaining == 1.0:
            return _NEUTRAL
        weighted.sort(reverse=True)
        contributions = tuple(
            [Contribution(name, value, weight) for weight, name, value in weighted[: self.top_k]]
        )
        return AtypicalityFinding(1.0 - remaining, contributions)

    # -- features -------------------------------------------------------------------

    def _prepare(self, decl: Declaration) -> _Prepared:
        """Every feature of one declaration, with what ``learn_one`` needs (see _Prepared)."""
        t = decl.lodged_at.timestamp() / SECONDS_PER_DAY
        code, origin, dispatch = decl.commodity_code, decl.origin, decl.dispatch
        value_eur, mass, units = decl.customs_value_eur, decl.net_mass_kg, decl.supplementary_units
        route = f"{origin}>{dispatch or origin}@{decl.office}"
        keys = aspect_keys(code[:2], route, decl.seller, decl.declarant)
        values = list(_FLAGS)
        profile = self._importers.get(decl.importer)
        if profile is None:
            surprises = [0.0] * len(_NAMES)
        else:
            surprises = profile.surprises(keys, t, self._horizons)
            surprises.extend(_AFTER_NOVELTIES)
            self._activity_features(profile, value_eur, t, values, surprises)
        product = self._products.get(code[:6])
        log_uv = _log_or_none(value_eur / mass) if mass > 0 else None
        if product is not None:
            surprises[_ORIGIN] = product.origins.surprise(origin, self.product_tau)
            values[_UNIT_VALUE], surprises[_UNIT_VALUE] = _incoherence(product.unit_values, log_uv)
        transit = dispatch is not None and dispatch != origin
        if dispatch is not None and transit:
            values[_HUB], surprises[_HUB] = self._hub(origin, dispatch)
        masses = self._unit_masses.get(code[:4])
        log_kpu = _log_or_none(mass / units) if units and mass > 0 else None
        if masses is not None:
            values[_MASS_PER_UNIT], surprises[_MASS_PER_UNIT] = _incoherence(masses, log_kpu)
        # Bounds applied by conditional expressions, not min/max calls: built every time.
        unit_z, mass_z, nats = values[_UNIT_VALUE], values[_MASS_PER_UNIT], values[_BURST]
        ratio, duty = values[_VALUE], decl.duty_rate_pct / 100.0
        numeric: dict[Hashable, float] = {
            "log_value": math.log10(value_eur + 1.0),
            "log_mass": math.log10(mass + 1.0),
            "unit_value_z": unit_z if -6.0 <= unit_z <= 6.0 else math.copysign(6.0, unit_z),
            "mass_per_unit_z": mass_z if -6.0 <= mass_z <= 6.0 else math.copysign(6.0, mass_z),
            "duty_rate": duty if duty < 0.5 else 0.5,
            "burst_nats": nats if nats < 20.0 else 20.0,
            "log_value_ratio": ratio if -8.0 <= ratio <= 8.0 else math.copysign(8.0, ratio),
            "transit": 1.0 if transit else 0.0,
        }
        raw = float(self._trees.score_one(numeric))  # River returns int 0 while warming up
        q90 = self._q90.value
        spread = self._q99.value - q90
        position = (raw - q90) / (spread if spread > 0.1 else 0.1)
        values[_OUTLIER] = raw
        surprises[_OUTLIER] = 0.0 if position <= 0.0 else position if position < 1.0 else 1.0
        return t, values, surprises, numeric, keys, profile, product, masses, log_uv, log_kpu

    def _activity_features(
        self,
        profile: ImporterProfile,
        value_eur: float,
        t: float,
        values: list[float],
        surprises: list[float],
    ) -> None:
        """Volume burst and value far from the importer's mean."""
        nats = profile.burst_nats(t, self._horizons)
        values[_BURST], surprises[_BURST] = nats, squash(nats, 5.0, 6.0)
        ratio = profile.value_ratio(value_eur)
        log_ratio = _clip(math.log2(ratio), _MAX_LOG2) if ratio > 0 else 0.0
        values[_VALUE] = log_ratio
        if abs(log_ratio) > 4.0:  # squash below is 0 otherwise
            maturity = 1.0 - math.exp(-profile.n / self.importer_tau)
            surprises[_VALUE] = maturity * squash(abs(log_ratio), 4.0, 2.0)

    def _hub(self, origin: str, dispatch: str) -> tuple[float, float]:
        counts = self._hubs.get(origin)
        if not counts:
            return (0.0, 0.0)
        total = counts[""]
        share = counts.get(dispatch, 0) / total
        maturity = 1.0 - math.exp(-total / self.product_tau)
        return (share, maturity * max(0.0, 1.0 - share / self.hub_share))

    # -- learning -------------------------------------------------------------------

    def _learn_product(
        self,
        decl: Declaration,
        product: ProductMemory | None,
        masses: EWStats | None,
        log_uv: float | None,
        log_kpu: float | None,
    ) -> None:
        code, origin = decl.commodity_code, decl.origin
        if product is None:
            product = _added(
                self._products, code[:6], ProductMemory(self.set_cap), self.max_products
            )
        else:
            self._products.move_to_end(code[:6])
        product.origins.add(origin)
        if log_uv is not None:
            product.unit_values.update(log_uv)
        if log_kpu is not None:
            if masses is None:
                masses = _added(self._unit_masses, code[:4], EWStats(), self.max_products)
            else:
                self._unit_masses.move_to_end(code[:4])
            masses.update(log_kpu)
        counts = self._hubs.get(origin)
        if counts is None:
            counts = self._hubs[sys.intern(origin)] = {"": 0}
        counts[""] += 1
        dispatch = decl.dispatch or origin
        if dispatch in counts or len(counts) <= self.set_cap:
            counts[dispatch] = counts.get(dispatch, 0) + 1


def _added(table: OrderedDict[str, _Memory], key: str, item: _Memory, cap: int) -> _Memory:
    """Add ``item`` as the most recent entry, evicting the least recent beyond ``cap``."""
    table[sys.intern(key)] = item
    if len(table) > cap:
        table.popitem(last=False)
    return item


def _incoherence(stats: EWStats, x: float | None) -> tuple[float, float]:
    """Two-sided robust deviation of ``x`` from a product's statistics, as a surprise."""
    if x is None or stats.n < 2:
        return (0.0, 0.0)
    z = stats.z(x, floor=0.05)
    if abs(z) <= 3.0:  # squash below is 0
        return (z, 0.0)
    maturity = 1.0 - math.exp(-stats.n / 20.0)
    return (z, maturity * squash(abs(z), 3.0, 2.0))


def _log_or_none(x: float) -> float | None:
    """Natural log bounded to +-50, or None for a non-positive value."""
    if x <= 0:
        return None
    return _clip(math.log(x), 50.0)


def _clip(x: float, bound: float) -> float:
    return min(max(x, -bound), bound)

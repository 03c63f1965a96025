"""Atypicality (atypie): how far a declaration is from the normal flows, and why.

Eleven features, each turned into a surprise in [0, 1] and weighted by its importance:

========================== ===========================================================
new_chapter_for_importer   the importer never declared this HS chapter
new_route_for_importer     new (origin, dispatch, office) for the importer
new_seller_for_importer    a seller the importer never bought from
new_declarant_for_importer a customs broker the importer never used
origin_unusual_for_product an origin never seen for this HS6
unusual_transit_hub        dispatched from a country rarely used for that origin
volume_burst               the importer's count in the last hours vs its own rate
value_unusual_for_importer a value far from the importer's mean (16 times, either way)
unit_value_incoherent      log EUR/kg far from the HS6 (either side)
mass_per_unit_incoherent   log kg per supplementary unit far from the HS4
multivariate_outlier       River Half-Space Trees over the numeric features
========================== ===========================================================

Novelty is read as surprise given the history (see :mod:`vigie.detectors.behaviour`):
an importer's first declarations are not atypical merely for being first, nor is a new
seller for an importer that changes seller every time; the latest new chapter, route,
seller or broker stays surprising for a few days (``fresh_days``) while it repeats, so
every declaration of an abrupt switch is flagged, not only the first. The score combines
the weighted surprises as a noisy-or, ``1 - prod(1 - w_i)``; ``contributions`` lists the
features with the largest weights. The Half-Space Trees score is calibrated against its
own running 90th and 99th percentiles, so only its top decile contributes. Five trees of
height 6 separate the generator's typologies as well as ten of height 8, at half the
cost (bench/eval_detectors.py, bench/bench_detectors.py).

Memory is bounded: at most ``max_importers`` importer profiles and ``max_products``
product memories (least recently used evicted), sets capped at ``set_cap`` values.
"""

from __future__ import annotations

import math
import sys
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from river import anomaly

from vigie.detectors.base import Detector
from vigie.detectors.behaviour import Horizons, ImporterProfile, NoveltySet, squash
from vigie.detectors.quantiles import SECONDS_PER_DAY, EWStats, OnlineQuantile
from vigie.topics.schemas import AtypicalityEvidence, Contribution, Declaration

NOVELTIES = (
    "new_chapter_for_importer",
    "new_route_for_importer",
    "new_seller_for_importer",
    "new_declarant_for_importer",
)
"""The importer novelty features, in the order of ``behaviour.ASPECTS``."""

IMPORTANCE: dict[str, float] = {
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

LIMITS: dict[Hashable, tuple[float, float]] = {
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

_NEUTRAL = AtypicalityEvidence(score=0.0)
Features = dict[str, tuple[float, float]]  # name -> (value, surprise)
Aspects = tuple[str | None, ...]
_Prepared = tuple[float, Features, dict[str, float], Aspects]


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

    >>> from vigie.topics.schemas import EXAMPLE_DECLARATION
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
        n_trees: int = 5,
        height: int = 6,
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
        self._origins: OrderedDict[str, NoveltySet] = OrderedDict()
        self._unit_values: OrderedDict[str, EWStats] = OrderedDict()
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

    def score_one(self, decl: Declaration) -> AtypicalityEvidence:
        """The atypicality score and its top contributions; neutral during warm-up."""
        prepared = self._prepare(decl)
        self._last = (decl.declaration_id, decl.item_number, prepared)
        features = prepared[1]
        if self._n < self.warm_up:
            return _NEUTRAL
        weighted = [
            (IMPORTANCE[name] * surprise, name, value)
            for name, (value, surprise) in features.items()
            if surprise > 0.0
        ]
        weighted.sort(reverse=True)
        remaining = 1.0
        for weight, _, _ in weighted:
            remaining *= 1.0 - weight
        contributions = tuple(
            Contribution(name=name, value=value, weight=weight)
            for weight, name, value in weighted[: self.top_k]
            if weight >= 0.01
        )
        return AtypicalityEvidence(score=1.0 - remaining, contributions=contributions)

    def learn_one(self, decl: Declaration) -> None:
        """Learn one declaration (every declaration: novelty is about what was seen)."""
        last = self._last
        if last is not None and last[0] == decl.declaration_id and last[1] == decl.item_number:
            t, features, numeric, aspects = last[2]
        else:
            t, features, numeric, aspects = self._prepare(decl)
        self._last = None
        raw = features["multivariate_outlier"][0]
        self._q90.update(raw)
        self._q99.update(raw)
        self._trees.learn_one(numeric)
        self._learn_importer(decl, aspects, t)
        self._learn_product(decl)
        self._n += 1

    # -- features -------------------------------------------------------------------

    def _prepare(self, decl: Declaration) -> _Prepared:
        """Event time, the features, the numeric inputs of the trees, the importer aspects."""
        t = decl.lodged_at.timestamp() / SECONDS_PER_DAY
        aspects = _aspects(decl)
        features: Features = {}
        self._importer_features(decl, aspects, t, features)
        self._product_features(decl, features)
        numeric = {
            "log_value": math.log10(decl.customs_value_eur + 1.0),
            "log_mass": math.log10(decl.net_mass_kg + 1.0),
            "unit_value_z": _clip(features["unit_value_incoherent"][0], 6.0),
            "mass_per_unit_z": _clip(features["mass_per_unit_incoherent"][0], 6.0),
            "duty_rate": min(decl.duty_rate_pct / 100.0, 0.5),
            "burst_nats": min(features["volume_burst"][0], 20.0),
            "log_value_ratio": _clip(features["value_unusual_for_importer"][0], 8.0),
            "transit": 1.0 if decl.dispatch not in (None, decl.origin) else 0.0,
        }
        raw = self._trees.score_one(numeric)
        spread = max(self._q99.value - self._q90.value, 0.1)
        features["multivariate_outlier"] = (raw, _unit((raw - self._q90.value) / spread))
        return t, features, numeric, aspects

    def _importer_features(
        self, decl: Declaration, aspects: Aspects, t: float, out: Features
    ) -> None:
        profile = self._importers.get(decl.importer)
        if profile is None:
            for name in (*NOVELTIES, "volume_burst", "value_unusual_for_importer"):
                out[name] = (0.0, 0.0)
            return
        tau = self.importer_tau
        surprises = profile.surprises(aspects, t, self._horizons)
        for name, surprise in zip(NOVELTIES, surprises, strict=True):
            out[name] = (float(surprise > 0), surprise)
        nats = profile.burst_nats(t, self._horizons)
        out["volume_burst"] = (nats, squash(nats, 5.0, 6.0))
        ratio = profile.value_ratio(decl.customs_value_eur)
        log_ratio = math.log2(ratio) if ratio > 0 else 0.0
        maturity = 1.0 - math.exp(-profile.n / tau)
        surprise = maturity * squash(abs(log_ratio), 4.0, 2.0)
        out["value_unusual_for_importer"] = (log_ratio, surprise)

    def _product_features(self, decl: Declaration, out: Features) -> None:
        origins = self._origins.get(decl.hs6)
        surprise = 0.0 if origins is None else origins.surprise(decl.origin, self.product_tau)
        out["origin_unusual_for_product"] = (float(surprise > 0), surprise)
        out["unusual_transit_hub"] = self._hub(decl)
        out["unit_value_incoherent"] = _incoherence(
            self._unit_values.get(decl.hs6), _log_or_none(decl.unit_value_per_kg)
        )
        out["mass_per_unit_incoherent"] = _incoherence(
            self._unit_masses.get(decl.commodity_code[:4]), _log_or_none(_kg_per_unit(decl))
        )

    def _hub(self, decl: Declaration) -> tuple[float, float]:
        if decl.dispatch is None or decl.dispatch == decl.origin:
            return (0.0, 0.0)
        counts = self._hubs.get(decl.origin)
        if not counts:
            return (0.0, 0.0)
        total = counts[""]
        share = counts.get(decl.dispatch, 0) / total
        maturity = 1.0 - math.exp(-total / self.product_tau)
        return (share, maturity * max(0.0, 1.0 - share / self.hub_share))

    # -- learning -------------------------------------------------------------------

    def _learn_importer(self, decl: Declaration, aspects: Aspects, t: float) -> None:
        importers = self._importers
        profile = importers.get(decl.importer)
        if profile is None:
            profile = importers[sys.intern(decl.importer)] = ImporterProfile(t)
            if len(importers) > self.max_importers:
                importers.popitem(last=False)
        else:
            importers.move_to_end(decl.importer)
        profile.learn(aspects, decl.customs_value_eur, t, self._horizons)

    def _learn_product(self, decl: Declaration) -> None:
        hs6 = decl.hs6
        _lru(self._origins, hs6, lambda: NoveltySet(self.set_cap), self.max_products).add(
            sys.intern(decl.origin)
        )
        log_uv = _log_or_none(decl.unit_value_per_kg)
        if log_uv is not None:
            _lru(self._unit_values, hs6, EWStats, self.max_products).update(log_uv)
        log_kg_per_unit = _log_or_none(_kg_per_unit(decl))
        if log_kg_per_unit is not None:
            stats = _lru(self._unit_masses, decl.commodity_code[:4], EWStats, self.max_products)
            stats.update(log_kg_per_unit)
        counts = self._hubs.setdefault(sys.intern(decl.origin), {"": 0})
        counts[""] += 1
        dispatch = decl.dispatch or decl.origin
        if dispatch in counts or len(counts) <= self.set_cap:
            counts[dispatch] = counts.get(dispatch, 0) + 1


def _aspects(decl: Declaration) -> Aspects:
    """The values an importer profile remembers, in the order of ``behaviour.ASPECTS``."""
    route = f"{decl.origin}>{decl.dispatch or decl.origin}@{decl.office}"
    return (decl.chapter, route, decl.seller, decl.declarant)


def _lru(table: OrderedDict[str, Any], key: str, factory: Any, cap: int) -> Any:
    item = table.get(key)
    if item is None:
        item = factory()
        table[sys.intern(key)] = item
        if len(table) > cap:
            table.popitem(last=False)
    else:
        table.move_to_end(key)
    return item


def _incoherence(stats: EWStats | None, x: float | None) -> tuple[float, float]:
    """Two-sided robust deviation of ``x`` from a product's statistics, as a surprise."""
    if stats is None or x is None or stats.n < 2:
        return (0.0, 0.0)
    z = stats.z(x, floor=0.05)
    maturity = 1.0 - math.exp(-stats.n / 20.0)
    return (z, maturity * squash(abs(z), 3.0, 2.0))


def _kg_per_unit(decl: Declaration) -> float | None:
    if decl.supplementary_units and decl.net_mass_kg > 0:
        return decl.net_mass_kg / decl.supplementary_units
    return None


def _log_or_none(x: float | None) -> float | None:
    """Natural log bounded to +-50, or None for a missing or non-positive value."""
    if x is None or x <= 0:
        return None
    return _clip(math.log(x), 50.0)


def _clip(x: float, bound: float) -> float:
    return min(max(x, -bound), bound)


def _unit(x: float) -> float:
    return min(max(x, 0.0), 1.0)

"""Operator behaviour: what is new for an importer, incoherent for a product, or a burst.

Three kinds of surprise, each in nats like the coherence pairs' (docs/detectors.md):

- an importer's usual routes (origin > dispatch @ office) and brokers: a new one surprises
  by the Good-Turing chance of a new value in the importer's history; the follow-ups of
  its latest new chapter, route or broker keep that surprise, halved every
  ``fresh_days`` (an abrupt switch lodges several declarations);
- value per kg and mass per unit against the product's recent ones, both ways: the tail
  beyond three robust deviations, ``(|z| - 3)^2 / 2``;
- a burst: the Poisson surprise of the importer's count over the last hours against its
  own long-run rate.

Examples
--------
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
>>> from vigie.model.base import declared
>>> from datetime import timedelta
>>> behaviour = Behaviour()
>>> base = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> for i in range(40):
...     behaviour.learn_one(declared(base.model_copy(update={"lodged_at": base.lodged_at
...         + timedelta(days=i), "customs_value_eur": 25_000.0 + 10 * i})))
>>> switch = base.model_copy(update={"lodged_at": base.lodged_at + timedelta(days=41),
...     "commodity_code": "85171300", "declarant": "BROKER9"})
>>> [round(s, 2) for s in behaviour.surprises(declared(switch))]
[0.0, 0.0, 3.04, 0.0, 0.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_left, insort
from typing import Final, TypeAlias

from vigie.model.base import Declared
from vigie.model.tables import ChangeSet, Tracked, refreshed

Profile: TypeAlias = "tuple[array[float], list[tuple[str, ...]], list[str]]"
"""An importer's habits. Per aspect of :func:`_aspects`: in the array, its declarations
(4 numbers), then the day and surprise of its latest new value (4 pairs); its values seen
(tuples of interned strings: most hold one or two); its latest new value. Numbers in an
array take 8 bytes each where a list of floats takes 40."""

SIGNALS: Final[tuple[str, ...]] = (
    "chapter_new_for_importer_recently",
    "route_new_for_importer",
    "broker_new_for_importer",
    "seller_new_for_importer",
    "unit_value_incoherent",
    "mass_per_unit_incoherent",
    "burst",
    "value_unusual_for_shipment",
)
"""The behaviour surprises, in the order of :meth:`Behaviour.surprises`."""
_ASPECTS: Final = 4
_SHORT_DAYS: Final = 0.25
_LONG_DAYS: Final = 60.0
_WINDOW: Final = 32
_MIN_VALUES: Final = 5
_NO_NUMBERS: Final = (0.0,) * (3 * _ASPECTS)
_Z_FREE: Final = 3.0
_BURST_FREE: Final = 3.0
"""Nats of a burst taken as ordinary (arrivals are over-dispersed, not Poisson)."""
_VALUE_FREE: Final = 2.0
"""Log-ratio of a value to the shipment's usual one taken as ordinary (a factor e ** 2)."""


def poisson_nats(k: float, mu: float) -> float:
    """``-log P(X >= k)`` for a Poisson count of mean ``mu`` (0 when ``k <= mu``).

    >>> round(poisson_nats(5, 0.5), 2), poisson_nats(1, 2.0)
    (8.67, 0.0)
    """
    if k <= mu:
        return 0.0
    term = math.exp(-mu)
    below = 0.0
    for i in range(int(k)):
        below += term
        term *= mu / (i + 1)
    return -math.log(max(1.0 - below, 1e-300))


def _novel(n: float, distinct: int) -> float:
    return -math.log(min((distinct + 1.0) / (n + 2.0), 1.0))


def _robust_z(ordered: list[float], x: float) -> float:
    """``x`` against sorted values: median, and interquartile range / 1.349 as the scale.

    >>> round(_robust_z([1.0, 2.0, 3.0, 4.0, 5.0], 9.0), 2)
    4.05
    """
    k = len(ordered)
    center = 0.5 * (ordered[(k - 1) // 2] + ordered[k // 2])
    spread = (ordered[(3 * k) // 4] - ordered[k // 4]) / 1.349
    return (x - center) / max(spread, 0.1)


class Behaviour:
    """Importer novelties with persistence, product incoherences, bursts.

    Parameters
    ----------
    fresh_days
        Half-life of the surprise of an importer's latest new value while it repeats.
    cap
        Distinct values remembered per importer and aspect.
    max_keys
        At most this many importers and products (least recently used forgotten).
    """

    def __init__(self, fresh_days: float = 7.0, cap: int = 32, max_keys: int = 1_000_000) -> None:
        self.fresh_days = fresh_days
        self.cap = cap
        self.max_keys = max_keys
        self._importers: dict[str, Profile] = {}
        self._activity: dict[str, Activity] = {}
        # HS6 -> the last value-per-kg and mass-per-unit logs, each in arrival order and sorted
        self._products: dict[str, tuple[list[float], list[float], list[float], list[float]]] = {}
        self._importers_changed: ChangeSet = {}
        self._activity_changed: ChangeSet = {}
        self._products_changed: ChangeSet = {}

    def tables(self) -> list[Tracked]:
        """The large tables and their change sets (:mod:`vigie.model.tables`)."""
        return [(self._importers, self._importers_changed),
                (self._activity, self._activity_changed),
                (self._products, self._products_changed)]  # fmt: skip

    def surprises(self, decl: Declared) -> list[float]:
        """The surprise of each of :data:`SIGNALS`."""
        day = decl.day
        out = [0.0] * len(SIGNALS)
        profile = self._importers.get(decl.importer)
        if profile is not None:
            numbers, seen, latest = profile
            for k, value in enumerate(_aspects(decl)):
                n = numbers[k]
                if n == 0:
                    continue
                if value not in seen[k]:
                    # the chapter's first one is the coherence pair's (atypicality.PAIRS)
                    out[k] = 0.0 if k == 0 else _novel(n, len(seen[k]))
                elif value == latest[k]:
                    age = max(day - numbers[_ASPECTS + 2 * k], 0.0)
                    out[k] = numbers[_ASPECTS + 2 * k + 1] * 0.5 ** (age / self.fresh_days)
        product = self._products.get(decl.commodity_code[:6])
        if product is not None:
            ratios = _ratios(decl)
            for k in range(2):
                x, ordered = ratios[k], product[2 * k + 1]
                if x is not None and len(ordered) >= _MIN_VALUES:
                    z = abs(_robust_z(ordered, x))
                    out[_ASPECTS + k] = 0.5 * (z - _Z_FREE) ** 2 if z > _Z_FREE else 0.0
        activity = self._activity.get(_shipment(decl))
        if activity is not None and activity.n >= 2:
            out[_ASPECTS + 2] = max(activity.burst(day, decl.declaration_id) - _BURST_FREE, 0.0)
            out[_ASPECTS + 3] = activity.value_surprise(decl.customs_value_eur)
        return out

    def learn_one(self, decl: Declared) -> None:
        """Learn one declaration's aspects, ratios and activity."""
        day = decl.day
        self._learn_importer(decl, day)
        code = decl.commodity_code[:6]
        product = refreshed(self._products, self._products_changed, code, self.max_keys)
        if product is None:
            product = ([], [], [], [])
        self._products[code] = product
        ratios = _ratios(decl)
        for k in range(2):
            x, arrived, ordered = ratios[k], product[2 * k], product[2 * k + 1]
            if x is not None:
                arrived.append(x)
                insort(ordered, x)
                if len(arrived) > _WINDOW:
                    del ordered[bisect_left(ordered, arrived.pop(0))]
        shipment = _shipment(decl)
        activity = refreshed(self._activity, self._activity_changed, shipment, self.max_keys)
        if activity is None:
            activity = Activity(day)
        activity.learn(day, decl.declaration_id, decl.customs_value_eur)
        self._activity[shipment] = activity

    def _learn_importer(self, decl: Declared, day: float) -> None:
        profile = refreshed(self._importers, self._importers_changed, decl.importer, self.max_keys)
        if profile is None:
            profile = (array("d", _NO_NUMBERS), [()] * _ASPECTS, [""] * _ASPECTS)
        self._importers[decl.importer] = profile
        numbers, seen, latest = profile
        for k, value in enumerate(_aspects(decl)):
            n = numbers[k]
            if value not in seen[k]:
                value = sys.intern(value)
                if n > 0:
                    latest[k] = value
                    numbers[_ASPECTS + 2 * k] = day
                    numbers[_ASPECTS + 2 * k + 1] = _novel(n, len(seen[k]))
                if len(seen[k]) < self.cap:
                    seen[k] = (*seen[k], value)
            numbers[k] = n + 1.0


class Activity:
    """An importer's declarations over the last hours and in the long run (exponentially
    weighted counts); the items of one declaration count once."""

    def __init__(self, day: float = 0.0) -> None:
        self.recent = 0.0
        self.long_run = 0.0
        self.since = day
        self.first = day
        self.n = 0
        self.last_id = ""
        self.log_value = 0.0
        self.values = 0

    def value_surprise(self, value: float) -> float:
        """How far (log) the value is from the usual one, beyond :data:`_VALUE_FREE`."""
        if self.values < _MIN_VALUES or value <= 0:
            return 0.0
        return max(abs(math.log(value) - self.log_value) - _VALUE_FREE, 0.0)

    def _decayed(self, day: float) -> tuple[float, float]:
        if day <= self.since:
            return self.recent, self.long_run
        return (
            self.recent * 2.0 ** ((self.since - day) / _SHORT_DAYS),
            self.long_run * 2.0 ** ((self.since - day) / _LONG_DAYS),
        )

    def burst(self, day: float, declaration_id: str) -> float:
        """The Poisson surprise of the recent count, this declaration included."""
        recent, long_run = self._decayed(day)
        coverage = 1.0 - 2.0 ** (-max(day - self.first, _SHORT_DAYS) / _LONG_DAYS)
        mu = max(long_run / (_LONG_DAYS * coverage) * _SHORT_DAYS, 1e-3)
        k = recent if declaration_id == self.last_id else recent + 1.0
        return poisson_nats(k, mu)

    def learn(self, day: float, declaration_id: str, value: float) -> None:
        """Count one item (a declaration's further items are not counted again)."""
        if value > 0:
            self.values += 1
            self.log_value += (math.log(value) - self.log_value) / min(self.values, _WINDOW)
        self.recent, self.long_run = self._decayed(day)
        self.since = max(day, self.since)
        if declaration_id != self.last_id:
            self.recent += 1.0
            self.long_run += 1.0
            self.n += 1
            self.last_id = declaration_id


def _shipment(decl: Declared) -> str:
    """The parties and goods of a shipment: importer, seller and HS6."""
    return f"{decl.importer}|{decl.seller}|{decl.commodity_code[:6]}"


def _aspects(decl: Declared) -> tuple[str, str, str, str]:
    """Chapter, route (origin > dispatch @ office), declarant and seller: an importer's
    habits."""
    origin = decl.origin
    return (
        decl.commodity_code[:2],
        f"{origin}>{decl.dispatch or origin}@{decl.office}",
        decl.declarant,
        decl.seller or "-",
    )


def _ratios(decl: Declared) -> tuple[float | None, float | None]:
    """log value per kg and log kg per unit (None without them), bounded."""
    mass, value, units = decl.net_mass_kg, decl.customs_value_eur, decl.supplementary_units
    per_kg = math.log(value) - math.log(mass) if value > 0 and mass > 0 else None
    per_unit = math.log(mass) - math.log(units) if units and units > 0 and mass > 0 else None
    return (
        None if per_kg is None else min(max(per_kg, -50.0), 50.0),
        None if per_unit is None else min(max(per_unit, -50.0), 50.0),
    )

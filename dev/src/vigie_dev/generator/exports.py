"""Export declarations: the same operators selling abroad, so a company's flows go both ways.

About a third of the importers also export. An export is drawn from the exporter's own
chapters (a wholesaler of clothing exports clothing), mostly of French origin, to a third
country weighted like France's main extra-EU customers, lodged at the exporter's usual
office for the transport mode. Exports pay no duty and carry no fraud typology: they
give Vision 360 its export flows, not the engine a target.

Exports are drawn from a generator of their own (seeded from the stream's seed), after
the imports: a stream without exports is exactly the stream of before.

Examples
--------
>>> import numpy as np
>>> from datetime import date
>>> from vigie_dev.generator.world import build_world
>>> world = build_world(np.random.default_rng(7), n_importers=300, days=30)
>>> ex = draw_exports(np.random.default_rng(1), world, 500, days=30, start=date(2026, 1, 1))
>>> len(ex), bool((np.diff(ex.t) >= 0).all()), bool((ex.value > 0).all())
(500, True, True)
>>> len(set(ex.exporter.tolist())) < 300
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from vigie_dev.generator.draft import AIR, DAY, ROAD, SEA, day_weights, seconds_in_day
from vigie_dev.generator.world import (
    COUNTRY_INDEX,
    MODES,
    BoolArray,
    FloatArray,
    IntArray,
    World,
    floats,
    office_weights,
    offices_for,
)

DESTINATIONS: dict[str, float] = {
    "US": 22, "GB": 16, "CH": 13, "CN": 9, "JP": 5, "KR": 3, "TR": 5, "MA": 5, "AE": 5,
    "CA": 4, "SG": 4, "NO": 4, "AU": 3, "IN": 2,
}  # fmt: skip
"""Third countries of French exports, with their relative weights."""

NEAR_DESTINATIONS = frozenset({"GB", "CH", "TR", "MA", "NO"})
"""Destinations reached mostly by road (or ro-ro ferry)."""

EXPORTER_SHARE = 0.35
"""Share of the importers that also export."""

FRENCH_ORIGIN = 0.8
"""Share of exported goods of French origin (the rest re-exports, of their import origin)."""

EXPORT_PROCEDURE = "1000"
"""Permanent export."""


@dataclass(frozen=True)
class Exports:
    """Export declarations as columns, in lodging order (``t`` seconds since the start).

    ``french`` marks goods of French origin; the others are re-exports of goods from
    ``origin`` (an index of the world's countries, which hold no EU member).
    """

    t: FloatArray
    exporter: IntArray
    commodity: IntArray
    french: BoolArray
    origin: IntArray
    destination: IntArray
    office: IntArray
    mode: IntArray
    declarant: IntArray
    mass: FloatArray
    units: FloatArray
    value: FloatArray

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def none(cls) -> Exports:
        """A stream without exports."""
        empty_int, empty_float = np.zeros(0, dtype=np.int64), floats([])
        return cls(
            t=empty_float, exporter=empty_int, commodity=empty_int,
            french=np.zeros(0, dtype=bool), origin=empty_int, destination=empty_int,
            office=empty_int, mode=empty_int, declarant=empty_int,
            mass=empty_float, units=empty_float, value=empty_float,
        )  # fmt: skip


def draw_exports(rng: np.random.Generator, world: World, n: int, days: int, start: date) -> Exports:
    """``n`` export declarations of the world's exporters over ``days`` days from ``start``."""
    if n == 0:
        return Exports.none()
    imp, goods = world.importers, world.goods
    exporters = np.flatnonzero(_exporters(rng, len(imp.ids)))
    counts = rng.multinomial(n, day_weights(start, days))
    t = np.repeat(np.arange(days), counts) * DAY + seconds_in_day(rng, n)
    order = np.argsort(t, kind="stable")
    weight = imp.activity[exporters] / imp.activity[exporters].sum()
    exporter = exporters[rng.choice(len(exporters), size=n, p=weight)]
    slot = np.floor(imp.slot_count[exporter] * rng.random(n)).astype(np.int64)
    commodity = imp.slot_commodity[exporter, slot]
    names = tuple(DESTINATIONS)
    weights = floats(list(DESTINATIONS.values()))
    destination_name = rng.choice(len(names), size=n, p=weights / weights.sum())
    destination = np.array([COUNTRY_INDEX[names[i]] for i in destination_name], dtype=np.int64)
    near = np.isin(destination_name, [names.index(c) for c in NEAR_DESTINATIONS])
    mode = np.where(near & (rng.random(n) < 0.75), ROAD, np.where(rng.random(n) < 0.2, AIR, SEA))
    french = rng.random(n) < FRENCH_ORIGIN
    mass = np.exp(np.where(mode == AIR, 4.2, 6.8) + rng.normal(0.0, 0.8, n))
    kpu = goods.kg_per_unit[commodity]
    per_unit = np.nan_to_num(kpu, nan=1.0)
    units = np.where(np.isnan(kpu), np.nan, np.maximum(1.0, np.round(mass / per_unit)))
    value = mass * goods.median_eur_kg[commodity] * 1.3 * rng.lognormal(0.0, 0.35, n)
    columns = Exports(
        t=floats(t),
        exporter=exporter.astype(np.int64),
        commodity=commodity.astype(np.int64),
        french=french,
        origin=imp.slot_origin[exporter, slot, 0].astype(np.int64),
        destination=destination,
        office=_offices(rng, world, exporter, mode),
        mode=mode.astype(np.int64),
        declarant=imp.main_declarant[exporter],
        mass=floats(np.round(mass, 1)),
        units=floats(units),
        value=floats(np.round(value, 2)),
    )
    return Exports(**{name: getattr(columns, name)[order] for name in columns.__dataclass_fields__})


def _exporters(rng: np.random.Generator, n: int) -> BoolArray:
    """Which importers also export (at least one)."""
    chosen = rng.random(n) < EXPORTER_SHARE
    chosen[0] = True
    return chosen


def _offices(
    rng: np.random.Generator, world: World, exporter: IntArray, mode: IntArray
) -> IntArray:
    """The exporter's usual office for the mode, now and then another of that mode."""
    usual = world.importers.home_office[exporter, mode]
    other = np.empty(len(exporter), dtype=np.int64)
    for m, name in enumerate(MODES):
        sel = mode == m
        other[sel] = offices_for(name)[
            rng.choice(len(offices_for(name)), int(sel.sum()), p=office_weights(name))
        ]
    return np.where(rng.random(len(exporter)) < 0.85, usual, other).astype(np.int64)

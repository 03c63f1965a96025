"""Masses, values, duties and invoices of drafted declarations.

Unit values are log-normal around a median per commodity, scaled by the price level of
the true origin, the importer's usual quality, and a slow yearly trend per chapter.
Commodities with supplementary units are priced per unit and their mass follows from the
units, so value per unit is the tighter signal and value per kg the looser one.

Duties: the declared rate follows the declared origin (free-trade preference 300, GSP
200, most-favoured-nation 100, anti-dumping on Chinese goods of some headings) and
consignments under EUR 150 are relieved of duty.

Examples
--------
>>> import numpy as np
>>> from vigie_dev.generator.world import build_world
>>> from vigie_dev.generator.draft import draw_structure
>>> rng = np.random.default_rng(2)
>>> world = build_world(rng, n_importers=200, days=30)
>>> draft = draw_structure(rng, world, n=2000, days=30)
>>> price(rng, world, draft)
>>> bool((draft.value > 0).all()), bool((draft.value == draft.true_value).all())
(True, True)
>>> apply_duties(rng, world, draft)
>>> float(draft.rate.max()) <= 17.0 + 64.0, bool((draft.rate == draft.true_rate).all())
(True, True)
"""

from __future__ import annotations

import numpy as np

from vigie_dev.generator import catalogue as cat
from vigie_dev.generator.draft import AIR, CURRENCIES, DAY, INCOTERM_NAMES, ROAD, SEA, Draft
from vigie_dev.generator.world import COUNTRY_INDEX, FloatArray, IntArray, World, floats

LOG_MASS_BY_MODE = {SEA: 7.9, ROAD: 7.2, AIR: 4.6}
"""Median consignment mass per mode: about 2.7 t by sea, 1.3 t by road, 100 kg by air."""

FTA = np.array(sorted(COUNTRY_INDEX[c] for c in cat.FREE_TRADE), dtype=np.int64)
GSP_ZERO = np.array(sorted(COUNTRY_INDEX[c] for c in cat.GSP_ZERO), dtype=np.int64)
GSP_STANDARD = np.array(sorted(COUNTRY_INDEX[c] for c in cat.GSP_STANDARD), dtype=np.int64)
CHINA = COUNTRY_INDEX["CN"]


def unit_price(rng: np.random.Generator, world: World, draft: Draft, rows: IntArray) -> FloatArray:
    """EUR per kg (or per unit, for unit-declared goods) of ``rows``, with its noise."""
    g = world.goods
    com = draft.commodity[rows]
    per_kg = (
        g.median_eur_kg[com]
        * g.origin_factor[com, draft.true_origin[rows]]
        * world.importers.premium[draft.importer[rows]]
        * np.exp(g.chapter_trend[g.chapter[com]] * draft.t[rows] / (365.0 * DAY))
        * rng.lognormal(0.0, g.price_sigma[com])
    )
    kpu = g.kg_per_unit[com]
    return np.where(np.isnan(kpu), per_kg, per_kg * kpu)


def price(
    rng: np.random.Generator, world: World, draft: Draft, rows: IntArray | None = None
) -> None:
    """Fill mass, units and (true and declared) value of ``rows`` (default all)."""
    idx = np.arange(len(draft)) if rows is None else rows
    n = len(idx)
    com = draft.commodity[idx]
    kpu = world.goods.kg_per_unit[com]
    mu = np.select(
        [draft.mode[idx] == m for m in LOG_MASS_BY_MODE], list(LOG_MASS_BY_MODE.values())
    )
    courier = world.importers.courier[draft.importer[idx]]
    mu = np.where(courier, 0.8, mu + world.importers.size[draft.importer[idx]])
    raw_mass = np.exp(mu + rng.normal(0.0, 0.7, n))
    has_units = ~np.isnan(kpu)
    units = np.where(
        has_units, np.maximum(1.0, np.round(raw_mass / np.where(has_units, kpu, 1.0))), np.nan
    )
    mass = np.where(
        has_units, units * np.where(has_units, kpu, 0.0) * rng.lognormal(0.0, 0.06, n), raw_mass
    )
    mass = np.maximum(0.01, np.round(mass, 2))
    value = np.round(np.where(has_units, units, mass) * unit_price(rng, world, draft, idx), 2)
    draft.units[idx] = units
    draft.mass[idx] = mass
    draft.true_mass[idx] = mass
    draft.true_value[idx] = value
    draft.value[idx] = value


def apply_duties(
    rng: np.random.Generator,
    world: World,
    draft: Draft,
    rows: IntArray | None = None,
    claim_rate: float = cat.PREFERENCE_CLAIM_RATE,
) -> None:
    """Declared preference and duty rate of ``rows`` from their declared origin and value.

    The due rate is set equal to the declared one; fraud injection changes it afterwards.
    """
    idx = np.arange(len(draft)) if rows is None else rows
    origin = draft.origin[idx]
    com = draft.commodity[idx]
    mfn = world.goods.duty_rate[com]
    claims = rng.random(len(idx)) < claim_rate
    fta = np.isin(origin, FTA) & claims
    gsp0 = np.isin(origin, GSP_ZERO) & claims
    gsp = np.isin(origin, GSP_STANDARD) & claims
    pref = np.select([fta, gsp0 | gsp], [3, 2], 1)
    rate = np.select([fta | gsp0, gsp], [0.0, np.maximum(0.0, mfn - 3.5)], mfn)
    ad = world.goods.anti_dumping[com] * (origin == CHINA)
    low = draft.value[idx] < cat.LOW_VALUE_LIMIT_EUR
    draft.preference[idx] = np.where(low, 0, pref)
    draft.rate[idx] = np.where(low, 0.0, rate + ad)
    draft.true_rate[idx] = draft.rate[idx]
    draft.anti_dumping[idx] = (ad > 0) & ~low
    draft.low_value[idx] = low


def due_rate(world: World, commodity: IntArray, true_origin: IntArray) -> FloatArray:
    """The most-favoured-nation rate plus any anti-dumping duty of the true origin."""
    ad = world.goods.anti_dumping[commodity] * (true_origin == CHINA)
    return floats(world.goods.duty_rate[commodity] + ad)


def exchange_rates(rng: np.random.Generator, days: int) -> FloatArray:
    """EUR per unit of each currency (rows, in ``CURRENCIES`` order) for each day."""
    steps = rng.normal(0.0, 0.004, (len(CURRENCIES), days))
    steps[CURRENCIES.index("EUR")] = 0.0
    steps[CURRENCIES.index("TRY")] -= 0.0008
    base = np.array([cat.EUR_PER_UNIT[c] for c in CURRENCIES])
    return floats(base[:, None] * np.exp(np.cumsum(steps, axis=1)))


def invoice_amounts(draft: Draft, fx: FloatArray) -> FloatArray:
    """Invoice price in its currency: the declared customs value, back through the incoterm
    (freight and insurance) and the exchange rate of the lodging day."""
    factor = np.array([cat.INCOTERMS[name][1] for name in INCOTERM_NAMES])[draft.incoterm]
    day = np.clip((draft.t // DAY).astype(np.int64), 0, fx.shape[1] - 1)
    return floats(np.round(draft.value / factor / fx[draft.currency, day], 2))

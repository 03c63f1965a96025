"""The stream as columns: the structure of every declaration, drawn in one vectorised pass.

A :class:`Draft` holds one numpy array per field, in drawing order (not yet sorted by
time). :func:`draw_structure` fills who imports what from where, when and through which
office; :mod:`vigie_dev.generator.pricing` then adds masses, values and duties.

Examples
--------
>>> import numpy as np
>>> from vigie_dev.generator.world import build_world
>>> rng = np.random.default_rng(1)
>>> world = build_world(rng, n_importers=200, days=30)
>>> draft = draw_structure(rng, world, n=500, days=30)
>>> len(draft), bool((draft.t >= 0).all() and (draft.t < 30 * 86400).all())
(500, True)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import TypedDict

import numpy as np

from vigie_dev.generator import catalogue as cat
from vigie_dev.generator.world import (
    COUNTRIES,
    COUNTRY_INDEX,
    FloatArray,
    IntArray,
    World,
    floats,
    office_weights,
    offices_for,
)

DAY = 86400.0
WEEKDAY_FACTOR = (1.0, 1.06, 1.05, 1.0, 0.93, 0.22, 0.07)
INCOTERM_NAMES: tuple[str, ...] = tuple(cat.INCOTERMS)
CURRENCIES: tuple[str, ...] = tuple(cat.EUR_PER_UNIT)
PROCEDURES: tuple[str, ...] = tuple(cat.PROCEDURES)
PREFERENCES: tuple[str | None, ...] = (None, "100", "200", "300")
NEAR_INDEX = np.array(sorted(COUNTRY_INDEX[c] for c in cat.NEAR), dtype=np.int64)
ASIAN_MAKERS = np.array([COUNTRY_INDEX[c] for c in ("JP", "KR", "TW", "VN", "MY", "TH")])
CHINA_INDEX = COUNTRY_INDEX["CN"]
SEA, ROAD, AIR = 0, 1, 2


@dataclass
class Draft:
    """One array per field. ``t`` is seconds since the start; indices point into the world.

    ``true_origin`` is where goods really come from; ``rate``/``true_rate`` the declared
    and due duty rates (percent); ``typology`` 0 for clean items, else 1 + the index in
    :data:`vigie_dev.generator.config.TYPOLOGIES`; ``event`` groups the items of one fraud.
    """

    t: FloatArray
    importer: IntArray
    commodity: IntArray
    origin: IntArray
    true_origin: IntArray
    dispatch: IntArray
    office: IntArray
    mode: IntArray
    seller: IntArray
    declarant: IntArray
    incoterm: IntArray
    currency: IntArray
    procedure: IntArray
    preference: IntArray
    mass: FloatArray
    true_mass: FloatArray
    units: FloatArray
    true_value: FloatArray
    value: FloatArray
    rate: FloatArray
    true_rate: FloatArray
    anti_dumping: IntArray
    low_value: IntArray
    typology: IntArray
    event: IntArray

    def __len__(self) -> int:
        return len(self.t)

    def extend(self, other: Draft) -> Draft:
        """This draft followed by ``other``."""
        return Draft(
            **{
                f.name: np.concatenate((getattr(self, f.name), getattr(other, f.name)))
                for f in fields(self)
            }
        )

    def take(self, order: IntArray) -> Draft:
        """The rows at ``order``, in that order."""
        return Draft(**{f.name: getattr(self, f.name)[order] for f in fields(self)})


class Economics(TypedDict):
    """The columns :mod:`vigie_dev.generator.pricing` and fraud injection fill in."""

    preference: IntArray
    mass: FloatArray
    true_mass: FloatArray
    units: FloatArray
    true_value: FloatArray
    value: FloatArray
    rate: FloatArray
    true_rate: FloatArray
    anti_dumping: IntArray
    low_value: IntArray
    typology: IntArray
    event: IntArray


def empty_economics(n: int) -> Economics:
    """Value, mass and duty columns before pricing: zeros, no typology, no event."""
    zeros = np.zeros(n)
    ints = np.zeros(n, dtype=np.int64)
    return {
        "preference": ints.copy(),
        "mass": zeros.copy(),
        "true_mass": zeros.copy(),
        "units": np.full(n, np.nan),
        "true_value": zeros.copy(),
        "value": zeros.copy(),
        "rate": zeros.copy(),
        "true_rate": zeros.copy(),
        "anti_dumping": ints.copy(),
        "low_value": ints.copy(),
        "typology": ints.copy(),
        "event": np.full(n, -1, dtype=np.int64),
    }


def day_weights(start: date, days: int) -> FloatArray:
    """Relative traffic per day: working week, a fourth-quarter peak, a slow upward trend."""
    out = np.empty(days)
    for d in range(days):
        day = start + timedelta(days=d)
        season = 1.0 + 0.2 * np.cos(2 * np.pi * (day.timetuple().tm_yday - 305) / 365.25)
        out[d] = WEEKDAY_FACTOR[day.weekday()] * season * (1.0 + 0.08 * d / 365.0)
    return floats(out / out.sum())


def seconds_in_day(rng: np.random.Generator, n: int) -> FloatArray:
    """Lodging times of day (UTC): mostly office hours, some round the clock."""
    office = 6.0 + 11.5 * rng.beta(2.2, 2.5, n)
    anytime = rng.uniform(0.0, 24.0, n)
    return np.where(rng.random(n) < 0.88, office, anytime) * 3600.0


def draw_structure(
    rng: np.random.Generator, world: World, n: int, days: int, start: date = date(2026, 1, 1)
) -> Draft:
    """Draw the structure of ``n`` clean declarations (importer, goods, route, parties)."""
    counts = rng.multinomial(n, day_weights(start, days))
    day = np.repeat(np.arange(days), counts)
    importer = _importers_by_day(rng, world, counts)
    t = day * DAY + seconds_in_day(rng, n)
    imp = world.importers
    slot = np.floor(imp.slot_count[importer] * rng.random(n) ** 1.6).astype(np.int64)
    alt = (rng.random(n) < 0.25).astype(np.int64)
    commodity = imp.slot_commodity[importer, slot]
    origin = imp.slot_origin[importer, slot, alt]
    seller = imp.slot_seller[importer, slot, alt]
    mode = draw_modes(rng, world, importer, commodity, origin)
    return Draft(
        t=t,
        importer=importer,
        commodity=commodity,
        origin=origin,
        true_origin=origin.copy(),
        dispatch=draw_dispatch(rng, origin, mode),
        office=draw_offices(rng, world, importer, mode),
        mode=mode,
        seller=seller,
        declarant=np.where(
            rng.random(n) < 0.88, imp.main_declarant[importer], imp.second_declarant[importer]
        ),
        incoterm=_categorical(rng, [w for w, _ in cat.INCOTERMS.values()], n),
        currency=draw_currencies(rng, world.sellers.country[seller]),
        procedure=_categorical(rng, list(cat.PROCEDURES.values()), n),
        **empty_economics(n),
    )


def _importers_by_day(rng: np.random.Generator, world: World, counts: IntArray) -> IntArray:
    """Importers of each day's declarations, among those already trading that day."""
    imp = world.importers
    out = []
    for d, k in enumerate(counts):
        p = np.where(imp.entry_day <= d, imp.activity, 0.0)
        out.append(rng.choice(len(p), size=int(k), p=p / p.sum()))
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def draw_modes(
    rng: np.random.Generator,
    world: World,
    importer: IntArray,
    commodity: IntArray,
    origin: IntArray,
) -> IntArray:
    """Border transport mode: road from neighbours, air for light goods, else sea."""
    n = len(importer)
    air_share = np.array([cat.CHAPTERS[c].air_share for c in cat.CHAPTERS])
    p_air = np.clip(
        air_share[world.goods.chapter[commodity]] * world.importers.air_bias[importer], 0.0, 0.9
    )
    u = rng.random(n)
    far = np.where(u < p_air, AIR, SEA)
    near = np.where(u < 0.7, ROAD, np.where(u < 0.9, SEA, AIR))
    mode = np.where(np.isin(origin, NEAR_INDEX), near, far)
    return np.where(world.importers.courier[importer], AIR, mode).astype(np.int64)


def draw_dispatch(rng: np.random.Generator, origin: IntArray, mode: IntArray) -> IntArray:
    """Country of dispatch: the origin, or for far-away origins now and then a hub."""
    n = len(origin)
    sea_hubs = np.array([COUNTRY_INDEX[c] for c in ("NL", "BE")])
    air_hubs = np.array([COUNTRY_INDEX[c] for c in ("AE", "HK", "SG")])
    hub = np.where(mode == AIR, air_hubs[rng.integers(0, 3, n)], sea_hubs[rng.integers(0, 2, n)])
    u = rng.random(n)
    far = ~np.isin(origin, NEAR_INDEX) & (mode != ROAD)
    # Components made elsewhere in Asia are often consolidated and shipped from China.
    from_china = (u >= 0.12) & (u < 0.15) & np.isin(origin, ASIAN_MAKERS)
    out = np.where(far & (u < 0.12), hub, np.where(from_china, CHINA_INDEX, origin))
    return out.astype(np.int64)


def draw_offices(
    rng: np.random.Generator, world: World, importer: IntArray, mode: IntArray
) -> IntArray:
    """The importer's usual office for the mode, or another office of that mode."""
    n = len(importer)
    usual = world.importers.home_office[importer, mode]
    other = np.empty(n, dtype=np.int64)
    for m, name in enumerate(("1", "3", "4")):
        sel = mode == m
        other[sel] = offices_for(name)[
            rng.choice(len(offices_for(name)), int(sel.sum()), p=office_weights(name))
        ]
    return np.where(rng.random(n) < 0.9, usual, other).astype(np.int64)


def draw_currencies(rng: np.random.Generator, seller_country: IntArray) -> IntArray:
    """Invoice currency, by the seller's country."""
    n = len(seller_country)
    out = np.empty(n, dtype=np.int64)
    u = rng.random(n)
    for ci in np.unique(seller_country):
        table = cat.CURRENCY_BY_ORIGIN.get(COUNTRIES[ci], cat.DEFAULT_CURRENCY)
        names = list(table)
        cum = np.cumsum([table[c] for c in names], dtype=float)
        sel = seller_country == ci
        pick = np.searchsorted(cum / cum[-1], u[sel], side="right")
        out[sel] = [CURRENCIES.index(names[min(int(k), len(names) - 1)]) for k in pick]
    return out


def _categorical(rng: np.random.Generator, weights: list[float], n: int) -> IntArray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int64)

"""The synthetic world a stream is drawn from: commodities, countries, traders, offices.

Everything is drawn from one ``numpy.random.Generator``, so a seed fixes the world. The
world holds arrays rather than objects, so that a stream of a million declarations can be
drawn from it with vectorised look-ups.

Examples
--------
>>> import numpy as np
>>> world = build_world(np.random.default_rng(7), n_importers=300, days=90)
>>> len(world.importers.ids), len(world.goods.codes), world.goods.codes[0][:2]
(300, 382, '08')
>>> world.importers.ids[0][:2], len(world.importers.ids[0])
('FR', 16)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vigie_dev.generator import catalogue as cat

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

MAX_SLOTS = 12
"""Most commodity lines an importer regularly buys."""

COMMODITIES_PER_WEIGHT = 3.6
"""Commodity codes per unit of chapter weight (about 380 codes in all)."""

PRICE_LEVEL: dict[str, float] = {
    "CN": 0.85, "BD": 0.7, "VN": 0.85, "IN": 0.8, "PK": 0.7, "KH": 0.7, "MM": 0.65,
    "ID": 0.8, "TH": 0.9, "MY": 0.95, "PH": 0.85, "LK": 0.8, "TR": 1.0, "MA": 0.95,
    "TN": 0.95, "US": 1.35, "JP": 1.45, "CH": 1.6, "GB": 1.3, "KR": 1.15, "TW": 1.1,
}  # fmt: skip
"""Relative price level of each supplier (1.0 when absent)."""

COUNTRIES: tuple[str, ...] = tuple(
    sorted(
        {c for ch in cat.CHAPTERS.values() for c in ch.origins}
        | set(cat.HUBS)
        | set(cat.TRANSHIPMENT)
        | set(cat.EXTRA_COUNTRIES)
        | cat.FREE_TRADE
    )
)
COUNTRY_INDEX: dict[str, int] = {c: i for i, c in enumerate(COUNTRIES)}
CHAPTER_CODES: tuple[str, ...] = tuple(cat.CHAPTERS)


@dataclass(frozen=True)
class Goods:
    """Commodity arrays, indexed by commodity (``origin_*`` by commodity and country)."""

    codes: tuple[str, ...]
    chapter: IntArray
    median_eur_kg: FloatArray
    popularity: FloatArray
    price_sigma: FloatArray
    kg_per_unit: FloatArray
    duty_rate: FloatArray
    anti_dumping: FloatArray
    origin_weight: FloatArray
    origin_factor: FloatArray
    chapter_trend: FloatArray


@dataclass(frozen=True)
class Sellers:
    """Foreign sellers, grouped by country: country ``c`` owns ``start[c]:start[c]+count[c]``."""

    names: tuple[str, ...]
    country: IntArray
    start: IntArray
    count: IntArray


@dataclass(frozen=True)
class Importers:
    """Importer arrays; ``slot_*`` tables are the lines each one buys (commodity, origins,
    sellers), ``home_office`` its usual office per transport mode (sea, road, air)."""

    ids: tuple[str, ...]
    activity: FloatArray
    entry_day: IntArray
    courier: BoolArray
    premium: FloatArray
    size: FloatArray
    air_bias: FloatArray
    slot_count: IntArray
    slot_commodity: IntArray
    slot_origin: IntArray
    slot_seller: IntArray
    home_office: IntArray
    main_declarant: IntArray
    second_declarant: IntArray


@dataclass(frozen=True)
class World:
    """The goods, sellers, importers and customs brokers of one synthetic stream."""

    goods: Goods
    sellers: Sellers
    importers: Importers
    declarants: tuple[str, ...]

    def importer_chapters(self, importer: int) -> set[int]:
        """The chapters an importer usually buys from."""
        imp = self.importers
        used = imp.slot_commodity[importer, : imp.slot_count[importer]]
        return {int(c) for c in self.goods.chapter[used]}


def build_world(rng: np.random.Generator, n_importers: int, days: int) -> World:
    """Draw a world of ``n_importers`` importers and about 380 commodity codes."""
    goods = _commodities(rng)
    sellers = _sellers(rng, n_importers)
    declarants, declarant_weight = _declarants(rng, n_importers)
    importers = _importers(rng, n_importers, days, goods, sellers, declarant_weight)
    return World(goods=goods, sellers=sellers, importers=importers, declarants=declarants)


def _commodities(rng: np.random.Generator) -> Goods:
    codes: list[str] = []
    chapter: list[int] = []
    for ci, spec in enumerate(cat.CHAPTERS.values()):
        count = max(8, round(spec.weight * COMMODITIES_PER_WEIGHT))
        seen: set[str] = set()
        while len(seen) < count:
            heading = spec.headings[int(rng.integers(len(spec.headings)))]
            sub = ("10", "20", "30", "40", "90", "11", "19", "99")[int(rng.integers(8))]
            cn = ("00", "10", "90", "20", "30", "80")[int(rng.integers(6))]
            seen.add(heading + sub + cn)
        codes.extend(sorted(seen))
        chapter.extend([ci] * count)
    chap = np.asarray(chapter, dtype=np.int64)
    specs = [cat.CHAPTERS[CHAPTER_CODES[c]] for c in chap]
    weights, factors = _origin_tables(rng, specs)
    return Goods(
        codes=tuple(codes),
        chapter=chap,
        median_eur_kg=_nested_prices(rng, codes, specs),
        popularity=rng.pareto(1.0, len(codes)) + 1.0,
        price_sigma=rng.uniform(0.15, 0.28, len(codes)),
        kg_per_unit=_unit_masses(rng, codes, specs),
        duty_rate=np.array([s.duty_rates[int(rng.integers(len(s.duty_rates)))] for s in specs]),
        anti_dumping=np.array(
            [(s.anti_dumping or {}).get(c[:4], 0.0) for s, c in zip(specs, codes, strict=True)]
        ),
        origin_weight=weights,
        origin_factor=factors,
        chapter_trend=rng.normal(0.03, 0.04, len(CHAPTER_CODES)),
    )


def _nested(keys: list[str], draw: Callable[[], float]) -> list[float]:
    """One draw per distinct key, shared by every position with that key."""
    drawn: dict[str, float] = {}
    out = []
    for key in keys:
        if key not in drawn:
            drawn[key] = draw()
        out.append(drawn[key])
    return out


def _nested_prices(
    rng: np.random.Generator, codes: list[str], specs: list[cat.Chapter]
) -> FloatArray:
    """Median EUR/kg: a level per HS4 heading, then smaller steps per HS6 and per CN8, so
    that codes of one heading cost about the same (coarser references stay meaningful)."""
    level: dict[str, float] = {}
    for code, spec in zip(codes, specs, strict=True):
        if code[:4] not in level:
            lo, hi = np.log(spec.price_eur_kg[0]), np.log(spec.price_eur_kg[1])
            level[code[:4]] = float(np.exp(rng.uniform(lo, hi)))
    hs6 = _nested([c[:6] for c in codes], lambda: float(rng.lognormal(0.0, 0.15)))
    cn8 = rng.lognormal(0.0, 0.1, len(codes))
    return floats([level[c[:4]] * f * g for c, f, g in zip(codes, hs6, cn8, strict=True)])


def _unit_masses(
    rng: np.random.Generator, codes: list[str], specs: list[cat.Chapter]
) -> FloatArray:
    """Mass of one supplementary unit (per HS6, with a small CN8 step), NaN for goods
    declared by mass only."""
    out = np.full(len(specs), np.nan)
    per_hs6: dict[str, float] = {}
    for i, (code, spec) in enumerate(zip(codes, specs, strict=True)):
        if spec.unit_kg is None:
            continue
        if code[:6] not in per_hs6:
            lo, hi = spec.unit_kg
            units = rng.random() < spec.unit_share
            per_hs6[code[:6]] = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if units else 0.0
        if per_hs6[code[:6]] > 0:
            out[i] = per_hs6[code[:6]] * float(rng.lognormal(0.0, 0.1))
    return out


def _origin_tables(
    rng: np.random.Generator, specs: list[cat.Chapter]
) -> tuple[FloatArray, FloatArray]:
    """Per commodity: which countries supply it (weights) and at what relative price."""
    weights = np.zeros((len(specs), len(COUNTRIES)))
    factors = np.ones((len(specs), len(COUNTRIES)))
    for i, spec in enumerate(specs):
        pool = spec.origins
        names = list(pool)
        base = np.array([pool[c] for c in names], dtype=float)
        k = int(rng.integers(3, min(7, len(names)) + 1))
        chosen = rng.choice(len(names), size=k, replace=False, p=base / base.sum())
        for j in chosen:
            col = COUNTRY_INDEX[names[j]]
            weights[i, col] = base[j] * rng.lognormal(0.0, 0.5)
            factors[i, col] = PRICE_LEVEL.get(names[j], 1.0) * rng.lognormal(0.0, 0.15)
    return weights / weights.sum(axis=1, keepdims=True), factors


def _sellers(rng: np.random.Generator, n_importers: int) -> Sellers:
    """A pool of foreign sellers per country, contiguous in the seller arrays."""
    supply = np.zeros(len(COUNTRIES))
    for spec in cat.CHAPTERS.values():
        for name, weight in spec.origins.items():
            supply[COUNTRY_INDEX[name]] += weight * spec.weight
    share = supply / supply.sum()
    count = np.maximum(3, np.round(share * n_importers * 0.8)).astype(np.int64)
    names: list[str] = []
    country: list[int] = []
    for ci, c in enumerate(COUNTRIES):
        numbers = rng.choice(90000, size=int(count[ci]), replace=False) + 10000
        names.extend(f"{c}-S{int(x):05d}" for x in numbers)
        country.extend([ci] * int(count[ci]))
    return Sellers(
        names=tuple(names),
        country=np.asarray(country, dtype=np.int64),
        start=np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64),
        count=count,
    )


def _importers(
    rng: np.random.Generator,
    n: int,
    days: int,
    goods: Goods,
    sellers: Sellers,
    declarant_weight: FloatArray,
) -> Importers:
    """Importer identities and traits: heavy-tailed activity, entry day, size, habits."""
    activity = rng.pareto(1.15, n) + 1.0
    courier = np.zeros(n, dtype=bool)
    courier[rng.choice(n, size=max(1, n // 200), replace=False)] = True
    activity[courier] *= 6.0
    activity /= activity.sum()
    late = rng.random(n) < 0.12
    entry = np.where(late, rng.integers(0, max(1, int(days * 0.8)), n), 0)
    count, com, org, sel = _slots(rng, courier, activity, goods, sellers)
    n_dcl = len(declarant_weight)
    return Importers(
        ids=tuple(f"FR{x:09d}{y:05d}" for x, y in _unique_ids(rng, n)),
        activity=activity,
        entry_day=entry.astype(np.int64),
        courier=courier,
        premium=rng.lognormal(0.0, 0.07, n),
        size=0.25 * np.log(activity * n) + rng.normal(0.0, 0.4, n),
        air_bias=rng.lognormal(0.0, 0.5, n),
        slot_count=count,
        slot_commodity=com,
        slot_origin=org,
        slot_seller=sel,
        home_office=_home_offices(rng, n),
        main_declarant=rng.choice(n_dcl, size=n, p=declarant_weight).astype(np.int64),
        second_declarant=rng.choice(n_dcl, size=n, p=declarant_weight).astype(np.int64),
    )


def _unique_ids(rng: np.random.Generator, n: int) -> list[tuple[int, int]]:
    """SIRET-like (SIREN, establishment) pairs, all distinct."""
    sirens = np.unique(rng.integers(100_000_000, 999_999_999, n + 64))[: n + 32]
    rng.shuffle(sirens)
    nic = rng.integers(1, 99, n) * 10 + rng.integers(0, 10, n)
    return [(int(s), int(e)) for s, e in zip(sirens[:n], nic, strict=True)]


def _slots(
    rng: np.random.Generator,
    courier: BoolArray,
    activity: FloatArray,
    goods: Goods,
    sellers: Sellers,
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """The commodity lines of every importer: commodity, two origins, two sellers each."""
    n = len(activity)
    by_chapter = [np.flatnonzero(goods.chapter == c) for c in range(len(CHAPTER_CODES))]
    chap_w = np.array([cat.CHAPTERS[c].weight for c in CHAPTER_CODES], dtype=float)
    courier_chaps = [CHAPTER_CODES.index(c) for c in ("61", "62", "64", "85", "95")]
    cum_pop = [np.cumsum(goods.popularity[p]) / goods.popularity[p].sum() for p in by_chapter]
    for cum in cum_pop:
        cum[-1] = 1.0
    count = np.clip(1 + rng.poisson(1.5 + 1.2 * np.log(activity * n + 1.0)), 1, MAX_SLOTS)
    count[courier] = MAX_SLOTS
    com = np.zeros((n, MAX_SLOTS), dtype=np.int64)
    org = np.zeros((n, MAX_SLOTS, 2), dtype=np.int64)
    sel = np.zeros((n, MAX_SLOTS, 2), dtype=np.int64)
    for i in range(n):
        k_ch = 1 + int(rng.random() < 0.35) + int(rng.random() < 0.1)
        picked = rng.choice(len(CHAPTER_CODES), k_ch, replace=False, p=chap_w / chap_w.sum())
        chaps = courier_chaps if courier[i] else [int(c) for c in picked]
        for s in range(int(count[i])):
            c = chaps[0] if rng.random() < 0.7 else chaps[int(rng.integers(len(chaps)))]
            pool = by_chapter[c]
            com[i, s] = pool[int(np.searchsorted(cum_pop[c], rng.random(), side="right"))]
            origins = rng.choice(len(COUNTRIES), 2, p=goods.origin_weight[com[i, s]])
            org[i, s] = origins
            sel[i, s] = [pick_seller(rng, int(o), sellers) for o in origins]
    return count.astype(np.int64), com, org, sel


def pick_seller(rng: np.random.Generator, country: int, sellers: Sellers, hub: float = 0.08) -> int:
    """A seller in ``country``, or now and then (``hub``) a trading house in a hub."""
    if rng.random() < hub:
        country = COUNTRY_INDEX[cat.HUBS[int(rng.integers(len(cat.HUBS)))]]
    return int(sellers.start[country]) + int(rng.integers(int(sellers.count[country])))


def _declarants(rng: np.random.Generator, n_importers: int) -> tuple[tuple[str, ...], FloatArray]:
    """Customs brokers, a few large and many small (Zipf shares)."""
    n = max(15, n_importers // 25)
    weight = np.arange(1, n + 1, dtype=float) ** -0.9
    names = tuple(f"FR{s:09d}{e:05d}" for s, e in _unique_ids(rng, n))
    return names, weight / weight.sum()


def _home_offices(rng: np.random.Generator, n: int) -> IntArray:
    """Each importer's usual office for each transport mode: columns sea, road, air."""
    out = np.zeros((n, 3), dtype=np.int64)
    for col, mode in enumerate(MODES):
        out[:, col] = offices_for(mode)[
            rng.choice(len(offices_for(mode)), n, p=office_weights(mode))
        ]
    return out


MODES: tuple[str, ...] = ("1", "3", "4")
"""Transport modes at the border: sea, road, air (the column order of mode tables)."""


def offices_for(mode: str) -> IntArray:
    """Indices of the offices that handle ``mode``."""
    return np.array([i for i, o in enumerate(cat.OFFICES) if o.mode == mode], dtype=np.int64)


def office_weights(mode: str) -> FloatArray:
    """Traffic shares of the offices that handle ``mode``."""
    w = np.array([cat.OFFICES[i].weight for i in offices_for(mode)], dtype=float)
    return floats(w / w.sum())


def floats(values: object) -> FloatArray:
    """``values`` as a float64 array (keeps numpy's typing precise)."""
    return np.asarray(values, dtype=np.float64)

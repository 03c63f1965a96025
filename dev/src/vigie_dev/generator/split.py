"""Split consignments: one air shipment lodged as many sub-EUR 150 declarations.

Each part claims low-value relief (no duty) although the shipment as a whole owes duty.
The parts share importer, seller, commodity and origin, and are lodged within three
hours of each other through the importer's usual airport.

Examples
--------
>>> import numpy as np
>>> from vigie_dev.generator.world import build_world
>>> from vigie_dev.generator.draft import draw_structure
>>> from vigie_dev.generator.typologies import Events
>>> rng = np.random.default_rng(5)
>>> world = build_world(rng, n_importers=200, days=30)
>>> base = draw_structure(rng, world, n=1000, days=30)
>>> parts = draw_splits(rng, world, base, 40, 30, Events())
>>> len(parts), bool((parts.value < 150).all()), bool((parts.true_rate >= parts.rate).all())
(40, True, True)
"""

from __future__ import annotations

import numpy as np

from vigie_dev.generator import catalogue as cat
from vigie_dev.generator.draft import AIR, DAY, Draft, draw_currencies, empty_economics
from vigie_dev.generator.pricing import due_rate, unit_price
from vigie_dev.generator.typologies import CODE, Events
from vigie_dev.generator.world import IntArray, World

TARGET_EUR = (60.0, cat.LOW_VALUE_LIMIT_EUR - 1.0)
"""Value of each part: just under the relief threshold."""


def cheap_slots(world: World) -> tuple[IntArray, IntArray]:
    """(importer, slot) pairs of regular importers whose goods sell below EUR 50 a unit."""
    imp, g = world.importers, world.goods
    com = imp.slot_commodity
    per_unit = g.median_eur_kg[com] * np.where(
        np.isnan(g.kg_per_unit[com]), 1.0, g.kg_per_unit[com]
    )
    used = np.arange(com.shape[1])[None, :] < imp.slot_count[:, None]
    ok = used & (per_unit < 50.0) & ~imp.courier[:, None]
    rows, slots = np.nonzero(ok)
    return rows.astype(np.int64), slots.astype(np.int64)


def draw_splits(
    rng: np.random.Generator, world: World, base: Draft, k: int, days: int, events: Events
) -> Draft:
    """``k`` parts of split shipments (fewer only if no importer buys cheap goods)."""
    importers, slots = cheap_slots(world)
    parts: list[Draft] = []
    done = 0
    weight = world.importers.activity[importers]
    for _ in range(50 * max(k, 1)):
        if done >= k or len(importers) == 0:
            break
        pick = int(rng.choice(len(importers), p=weight / weight.sum()))
        size = min(k - done, 4 + int(rng.poisson(6.0)))
        if 0 < k - done - size < 4:
            size = k - done
        part = _shipment(rng, world, int(importers[pick]), int(slots[pick]), size, days)
        part.event[:] = events.next()
        parts.append(part)
        done += len(part)
    out = parts[0] if parts else base.take(np.zeros(0, dtype=np.int64))
    for part in parts[1:]:
        out = out.extend(part)
    return out


def _shipment(
    rng: np.random.Generator, world: World, importer: int, slot: int, size: int, days: int
) -> Draft:
    imp = world.importers
    entry = int(imp.entry_day[importer])
    day = int(rng.integers(entry, max(entry + 1, days)))
    t0 = day * DAY + rng.uniform(7.0, 14.0) * 3600.0
    ones = np.ones(size, dtype=np.int64)
    com = int(imp.slot_commodity[importer, slot])
    origin = int(imp.slot_origin[importer, slot, 0])
    seller = int(imp.slot_seller[importer, slot, 0])
    draft = Draft(
        t=np.minimum(np.sort(t0 + rng.uniform(0.0, 3 * 3600.0, size)), days * DAY - 1.0),
        importer=ones * importer,
        commodity=ones * com,
        origin=ones * origin,
        true_origin=ones * origin,
        dispatch=ones * origin,
        office=ones * int(imp.home_office[importer, AIR]),
        mode=ones * AIR,
        seller=ones * seller,
        declarant=ones * int(imp.main_declarant[importer]),
        incoterm=ones * int(rng.integers(len(cat.INCOTERMS))),
        currency=draw_currencies(rng, world.sellers.country[ones * seller]),
        procedure=ones * 0,
        **empty_economics(size),
    )
    affordable = _price_parts(rng, world, draft)
    return draft.take(np.flatnonzero(affordable))


def _price_parts(rng: np.random.Generator, world: World, draft: Draft) -> np.ndarray:
    """Price the parts; returns which of them stay under the threshold."""
    size = len(draft)
    price = unit_price(rng, world, draft, np.arange(size))
    kpu = world.goods.kg_per_unit[draft.commodity]
    target = rng.uniform(*TARGET_EUR, size)
    has_units = ~np.isnan(kpu)
    quantity = np.where(has_units, np.maximum(1.0, np.floor(target / price)), target / price)
    value = np.round(quantity * price, 2)
    units_kg = np.where(has_units, kpu, 1.0)
    mass = np.where(has_units, quantity * units_kg * rng.lognormal(0.0, 0.06, size), quantity)
    draft.units[:] = np.where(has_units, quantity, np.nan)
    draft.mass[:] = np.maximum(0.01, np.round(mass, 2))
    draft.true_mass[:] = draft.mass
    draft.value[:] = value
    draft.true_value[:] = value
    draft.low_value[:] = 1
    draft.true_rate[:] = due_rate(world, draft.commodity, draft.true_origin)
    draft.typology[:] = CODE["split_consignment"]
    return value < cat.LOW_VALUE_LIMIT_EUR

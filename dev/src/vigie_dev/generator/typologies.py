"""Fraud injection: six labelled typologies, each leaving an honest trace in the data.

Nothing here writes the label into a declaration field. Each typology changes what a
fraudster would change, and the truth (due value, due duty rate) is kept beside it:

- ``under_valuation``: a few dishonest importers, more often on high-duty goods, declare
  a fraction ``1 - gap`` of the value (gap uniform in 20-90 %). Trace: low unit value.
- ``new_route``: Chinese goods re-labelled as originating in a transhipment country
  (MY, VN, TH, KR, TW, ID), dispatched from China or a hub, through an office the
  importer does not use, to dodge anti-dumping duty or claim a preference. Trace: an
  origin/dispatch/office combination new for the importer.
- ``origin_inconsistent``: an origin that never produces the goods, usually to claim a
  free-trade preference. Trace: a (commodity, origin) pair unseen in the traffic.
- ``mass_value_incoherence``: hidden goods (the weighed mass is k times what the
  declared units and value imply) or a mass divided by k. Trace: value per kg or kg per
  unit far from the commodity's norm.
- ``chapter_switch``: an importer abruptly declares goods of a chapter it never
  imported (misdescribed goods of a higher duty), through another broker and office, as
  when an identity is hijacked, within a few days. Trace: new importer-chapter, -broker
  and -office pairs, and a burst.
- ``split_consignment``: one air shipment split into many sub-EUR 150 declarations the
  same day (same importer, seller, commodity) to claim low-value relief. Trace: a burst.

Examples
--------
>>> import numpy as np
>>> from vigie_dev.generator.world import build_world
>>> from vigie_dev.generator.draft import draw_structure
>>> from vigie_dev.generator.pricing import price, apply_duties
>>> rng = np.random.default_rng(4)
>>> world = build_world(rng, n_importers=300, days=60)
>>> draft = draw_structure(rng, world, n=6000, days=60)
>>> price(rng, world, draft); apply_duties(rng, world, draft)
>>> events = Events()
>>> under_valuation(rng, world, draft, 120, events)
>>> rows = np.flatnonzero(draft.typology == 1)
>>> gap = 1 - draft.value[rows] / draft.true_value[rows]
>>> len(rows), round(float(gap.min()), 1), round(float(gap.max()), 1)
(120, 0.2, 0.9)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vigie_dev.generator import catalogue as cat
from vigie_dev.generator.config import TYPOLOGIES
from vigie_dev.generator.draft import DAY, Draft, draw_modes, draw_offices
from vigie_dev.generator.pricing import CHINA, due_rate
from vigie_dev.generator.world import (
    CHAPTER_CODES,
    COUNTRY_INDEX,
    FloatArray,
    IntArray,
    World,
    pick_seller,
)

CODE = {name: i + 1 for i, name in enumerate(TYPOLOGIES)}
"""Typology name -> the code stored in ``Draft.typology`` (0 for clean items)."""

TRANSHIPMENT = np.array([COUNTRY_INDEX[c] for c in cat.TRANSHIPMENT], dtype=np.int64)
FTA_TRANSHIPMENT = np.array([COUNTRY_INDEX[c] for c in ("VN", "KR")], dtype=np.int64)
TRANSIT_HUBS = np.array([COUNTRY_INDEX[c] for c in ("AE", "HK", "SG")], dtype=np.int64)
FALSE_ORIGINS = tuple(COUNTRY_INDEX[c] for c in cat.FALSE_ORIGIN_CANDIDATES)


@dataclass
class Events:
    """Numbers the fraud events (a split shipment, a switching importer...) in order."""

    count: int = 0

    def next(self) -> int:
        self.count += 1
        return self.count - 1


def free_rows(world: World, draft: Draft) -> IntArray:
    """Rows still clean, of regular (non-courier, not low-value) traffic."""
    ok = (draft.typology == 0) & ~world.importers.courier[draft.importer]
    return np.flatnonzero(ok & (draft.low_value == 0))


def weighted_sample(rng: np.random.Generator, weights: FloatArray, k: int) -> IntArray:
    """``k`` distinct indices drawn with probability proportional to ``weights``."""
    k = min(k, int((weights > 0).sum()))
    keys = np.log(rng.random(len(weights))) / np.maximum(weights, 1e-12)
    return np.argsort(-keys, kind="stable")[:k].astype(np.int64)


def _mark(draft: Draft, rows: IntArray, name: str, event: int | IntArray) -> None:
    draft.typology[rows] = CODE[name]
    draft.event[rows] = event


def under_valuation(
    rng: np.random.Generator, world: World, draft: Draft, k: int, events: Events
) -> None:
    """Dishonest importers declare a fraction of the value, more often on high duty."""
    rows = free_rows(world, draft)
    if k <= 0 or len(rows) == 0:
        return
    per_importer = np.bincount(draft.importer[rows], minlength=len(world.importers.ids))
    duty = np.bincount(draft.importer[rows], weights=draft.rate[rows], minlength=len(per_importer))
    mean_duty = duty / np.maximum(per_importer, 1)
    # Small and mid-sized traders: a fraudster rarely sets the going price of a product.
    eligible = (per_importer >= 3) & (per_importer <= max(20, 0.002 * len(draft)))
    order = weighted_sample(
        rng, np.where(eligible, np.minimum(mean_duty, 20.0) + 2.0, 0.0), len(per_importer)
    )
    enough = np.searchsorted(np.cumsum(per_importer[order]), 4.0 * k) + 1
    dishonest = order[:enough]
    pool = rows[np.isin(draft.importer[rows], dishonest)]
    chosen = pool[weighted_sample(rng, np.minimum(draft.rate[pool], 20.0) + 2.0, k)]
    gap = rng.uniform(0.2, 0.9, len(chosen))
    draft.value[chosen] = np.round(draft.true_value[chosen] * (1.0 - gap), 2)
    _mark(draft, chosen, "under_valuation", np.array([events.next() for _ in chosen]))


def new_route(rng: np.random.Generator, world: World, draft: Draft, k: int, events: Events) -> None:
    """Chinese goods re-labelled through a transhipment country and an unusual office.

    Runs on the structure, before pricing: the price stays that of Chinese goods.
    """
    rows = free_rows(world, draft)
    if k <= 0 or len(rows) == 0:
        return
    late = (draft.true_origin[rows] == CHINA) & (draft.t[rows] >= 0.15 * draft.t.max())
    rows = rows[late]
    ad = world.goods.anti_dumping[draft.commodity[rows]] > 0
    mfn = world.goods.duty_rate[draft.commodity[rows]] > 0
    weight = np.where(ad, 6.0, np.where(mfn, 1.0, 0.0))
    done = 0
    for seed in rows[weighted_sample(rng, weight, k)]:
        if done >= k or draft.typology[seed] != 0:
            continue
        same = rows[
            (draft.importer[rows] == draft.importer[seed]) & (draft.t[rows] >= draft.t[seed])
        ]
        same = same[(draft.typology[same] == 0) & (draft.commodity[same] == draft.commodity[seed])]
        same = same[np.argsort(draft.t[same], kind="stable")]
        take = same[: min(k - done, 1 + int(rng.poisson(1.0)), 4)]
        _relabel_route(
            rng, world, draft, take, bool(world.goods.anti_dumping[draft.commodity[seed]] > 0)
        )
        _mark(draft, take, "new_route", events.next())
        done += len(take)


def _relabel_route(
    rng: np.random.Generator, world: World, draft: Draft, rows: IntArray, anti_dumping: bool
) -> None:
    choices = TRANSHIPMENT if anti_dumping else FTA_TRANSHIPMENT
    claimed = int(choices[int(rng.integers(len(choices)))])
    draft.origin[rows] = claimed
    draft.dispatch[rows] = CHINA if rng.random() < 0.7 else int(rng.choice(TRANSIT_HUBS))
    draft.seller[rows] = pick_seller(rng, claimed, world.sellers, hub=0.0)
    draft.office[rows] = unusual_offices(rng, world, draft, rows)


def unusual_offices(
    rng: np.random.Generator, world: World, draft: Draft, rows: IntArray
) -> IntArray:
    """Offices of the rows' transport modes other than their importers' usual ones."""
    home = world.importers.home_office[draft.importer[rows], draft.mode[rows]]
    offices = draw_offices(rng, world, draft.importer[rows], draft.mode[rows])
    for _ in range(50):
        clash = offices == home
        if not clash.any():
            break
        offices[clash] = draw_offices(
            rng, world, draft.importer[rows][clash], draft.mode[rows][clash]
        )
    return offices


def origin_inconsistent(
    rng: np.random.Generator, world: World, draft: Draft, k: int, events: Events
) -> None:
    """An origin that never produces the goods, claiming a preference. Runs on the structure."""
    rows = free_rows(world, draft)
    com = draft.commodity[rows]
    chosen = rows[weighted_sample(rng, world.goods.duty_rate[com] + 0.2, k)]
    for row in chosen:
        chapter = cat.CHAPTERS[CHAPTER_CODES[world.goods.chapter[draft.commodity[row]]]]
        producers = {COUNTRY_INDEX[c] for c in chapter.origins}
        candidates = [c for c in FALSE_ORIGINS if c not in producers]
        claimed = candidates[int(rng.integers(len(candidates)))]
        draft.origin[row] = claimed
        if rng.random() < 0.5:
            draft.dispatch[row] = claimed
    _mark(draft, chosen, "origin_inconsistent", np.array([events.next() for _ in chosen]))


def chapter_switch(
    rng: np.random.Generator, world: World, draft: Draft, k: int, events: Events
) -> None:
    """Importers with a history suddenly declare goods of a chapter they never bought."""
    rows = free_rows(world, draft)
    counts = np.bincount(draft.importer[rows], minlength=len(world.importers.ids))
    candidates = weighted_sample(rng, np.where(counts >= 12, 1.0, 0.0), len(counts))
    done = 0
    for importer in candidates:
        if done >= k:
            break
        mine = rows[draft.importer[rows] == importer]
        mine = mine[np.argsort(draft.t[mine], kind="stable")]
        start = int(len(mine) * rng.uniform(0.4, 0.75))
        take = mine[start : start + min(k - done, 3 + int(rng.poisson(4.0)))]
        if len(take) == 0:
            continue
        # The hijacked identity is used hard and fast: the items come within a few days.
        first, horizon = draft.t[take[0]], draft.t.max()
        draft.t[take] = np.minimum(first + np.sort(rng.uniform(0, 4 * DAY, len(take))), horizon)
        _switch(rng, world, draft, take, int(importer))
        _mark(draft, take, "chapter_switch", events.next())
        done += len(take)


def _switch(
    rng: np.random.Generator, world: World, draft: Draft, rows: IntArray, importer: int
) -> None:
    usual = world.importer_chapters(importer)
    others = [c for c in range(len(CHAPTER_CODES)) if c not in usual]
    chapter = others[int(rng.integers(len(others)))]
    pool = np.flatnonzero(world.goods.chapter == chapter)
    goods = rng.choice(pool, size=min(2, len(pool)), replace=False)
    com = goods[rng.integers(0, len(goods), len(rows))]
    origin = int(
        rng.choice(len(world.goods.origin_weight[0]), p=world.goods.origin_weight[goods[0]])
    )
    draft.commodity[rows] = com
    draft.origin[rows] = origin
    draft.true_origin[rows] = origin
    draft.dispatch[rows] = origin
    draft.seller[rows] = pick_seller(rng, origin, world.sellers)
    draft.mode[rows] = draw_modes(rng, world, draft.importer[rows], com, draft.origin[rows])
    # A hijacked identity: another broker, another office than the real importer's.
    draft.office[rows] = unusual_offices(rng, world, draft, rows)
    usual = {
        int(world.importers.main_declarant[importer]),
        int(world.importers.second_declarant[importer]),
    }
    brokers = [b for b in range(len(world.declarants)) if b not in usual]
    draft.declarant[rows] = brokers[int(rng.integers(len(brokers)))]


def mass_value_incoherence(
    rng: np.random.Generator, world: World, draft: Draft, k: int, events: Events
) -> None:
    """Hidden goods (mass k times the declared quantity) or a mass divided by k."""
    rows = free_rows(world, draft)
    chosen = rows[weighted_sample(rng, np.ones(len(rows)), k)]
    has_units = ~np.isnan(world.goods.kg_per_unit[draft.commodity[chosen]])
    hidden = has_units & (rng.random(len(chosen)) < 0.6)
    factor = np.where(
        hidden, rng.uniform(4.0, 12.0, len(chosen)), rng.uniform(5.0, 20.0, len(chosen))
    )
    h, light = chosen[hidden], chosen[~hidden]
    draft.mass[h] = np.round(draft.mass[h] * factor[hidden], 2)
    draft.true_mass[h] = draft.mass[h]
    draft.true_value[h] = np.round(draft.true_value[h] * factor[hidden], 2)
    draft.mass[light] = np.maximum(0.01, np.round(draft.mass[light] / factor[~hidden], 2))
    _mark(draft, chosen, "mass_value_incoherence", np.array([events.next() for _ in chosen]))


def settle_due_rates(rng: np.random.Generator, world: World, draft: Draft) -> None:
    """Due duty rates of structurally altered frauds, once declared rates are set."""
    for name in ("new_route", "origin_inconsistent"):
        rows = np.flatnonzero(draft.typology == CODE[name])
        draft.true_rate[rows] = np.maximum(
            draft.rate[rows], due_rate(world, draft.commodity[rows], draft.true_origin[rows])
        )
    rows = np.flatnonzero(draft.typology == CODE["chapter_switch"])
    draft.true_rate[rows] = draft.rate[rows] + rng.uniform(4.0, 12.0, len(rows))

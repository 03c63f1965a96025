"""Behaviour memories: novelty surprise, saturating counts, keys, compact pickling."""

from __future__ import annotations

import pickle

from vigie.model.behaviour import (
    FADE,
    Horizons,
    ImporterProfile,
    NoveltySet,
    ProductMemory,
    aspect_keys,
    novelty_surprise,
)


def test_surprise_fades_with_each_sighting_then_vanishes() -> None:
    surprises = [novelty_surprise(count, 2, 100, 10.0) for count in range(12)]
    assert surprises == sorted(surprises, reverse=True)
    assert surprises[1] < surprises[0] and surprises[int(4 * FADE) - 1] > 0.0
    assert surprises[int(4 * FADE) :] == [0.0] * (12 - int(4 * FADE))


def test_counts_saturate_without_changing_any_surprise() -> None:
    m = NoveltySet(cap=4)
    for _ in range(50):
        m.add("CN")
    m.add("VN")
    assert m.seen == {"CN": int(4 * FADE), "VN": 1}
    assert (m.n, m.novel) == (51, 2)
    assert m.surprise("CN", 10.0) == 0.0 < m.surprise("VN", 10.0) < m.surprise("BR", 10.0)


def test_profile_keys_separate_aspects() -> None:
    h = Horizons(cap=2)
    p = ImporterProfile(t=0.0)
    for day in range(20):
        p.learn(aspect_keys("62", "CN>CN@FR1", f"S{day}", "62"), 100.0, float(day), h)
    assert [p.distinct(i) for i in range(4)] == [1, 1, 2, 1]  # sellers capped at 2
    assert p.stats[:4] == [20, 20, 20, 20] and p.stats[4:] == [1, 1, 20, 1]
    chapter, _, _, declarant = p.surprises(aspect_keys("62", None, None, "62"), 20.0, h)
    assert chapter == declarant == 0.0  # the same code as chapter and as declarant


def test_memories_round_trip_through_pickle() -> None:
    h = Horizons()
    p = ImporterProfile(t=0.0)
    product = ProductMemory(cap=8)
    for day in range(30):
        p.learn(aspect_keys("62", "CN>CN@FR1", "S1", "B1"), 100.0 + day, float(day), h)
        product.origins.add("CN")
        product.unit_values.update(1.0 + day % 3)
    p2, product2 = pickle.loads(pickle.dumps((p, product)))
    keys = aspect_keys("85", "CN>AE@FR1", "S2", "B1")
    assert p2.surprises(keys, 31.0, h) == p.surprises(keys, 31.0, h)
    assert p2.burst_nats(31.0, h) == p.burst_nats(31.0, h)
    assert product2.origins.surprise("BR", 50.0) == product.origins.surprise("BR", 50.0)
    assert product2.unit_values.z(4.0) == product.unit_values.z(4.0)

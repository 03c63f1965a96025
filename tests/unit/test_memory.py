"""CaseMemory: the posterior down the chain, empirical-Bayes strengths, knowledge gradient."""

from __future__ import annotations

import random

import pytest

from vigie.model.memory import LEVELS, CaseMemory, chain, compact


def keys(hs6: str = "620342", origin: str = "CN", value: float = 1000.0) -> tuple[str, ...]:
    return chain(compact(hs6, origin, "A", value, 50.0))


def test_the_posterior_is_each_level_smoothed_toward_its_parent() -> None:
    memory = CaseMemory()
    k = keys()
    memory.learn_label(k, True)
    memory.learn_label(k, False)
    m = memory.strengths
    mu = (1.0 + 2 * 0.1) / (2.0 + 2)  # the global rate from its cold-start prior
    assert memory.global_rate == pytest.approx(mu)
    for level in range(len(LEVELS)):
        mu = (1.0 + m[level] * mu) / (2.0 + m[level])
    read = memory.read(k, day=0.0)
    assert read.mu == pytest.approx(mu)
    assert (read.level, read.controls, read.infractions) == (5, 2.0, 1.0)
    other = memory.read(keys(hs6="850440"), day=0.0)  # another chapter: the global rate
    assert other.level == -1 and other.mu == pytest.approx(memory.global_rate)


def test_strengths_follow_where_the_labels_agree() -> None:
    """Consignments that keep their outcome, in chapters drawn at random: one label
    settles a signature (a small strength), a chapter's labels say less (larger)."""
    rng = random.Random(0)
    memory = CaseMemory()
    signatures = [(f"{rng.randrange(10, 99)}0342", rng.random() < 0.3) for _ in range(300)]
    for _ in range(6):
        for i, (hs6, fraud) in enumerate(signatures):
            memory.learn_label(keys(hs6=hs6, value=100.0 + i), fraud)
    m = memory.strengths
    assert m[-1] < 1.0 < m[0]


def test_the_knowledge_gradient_explores_recurring_uncertain_consignments() -> None:
    memory = CaseMemory(exploration=1.0)
    recurring, one_off = keys(value=1000.0), keys(value=2000.0)
    for day in range(30):
        memory.observe(recurring[-1], float(day))
    memory.observe(one_off[-1], 29.0)
    for _ in range(300):  # the marginal inspection is worth 20 %
        memory.follow(0.2)
    r, o = memory.read(recurring, day=30.0), memory.read(one_off, day=30.0)
    assert r.priority > r.mu  # its label would decide many next declarations
    assert o.priority - o.mu < r.priority - r.mu
    greedy = CaseMemory(exploration=0.0)
    assert greedy.read(recurring, day=30.0).priority == greedy.read(recurring, day=30.0).mu


def test_no_exploration_while_a_label_is_in_flight() -> None:
    memory = CaseMemory()
    k = keys()
    for day in range(30):
        memory.observe(k[-1], float(day))
    for _ in range(300):
        memory.follow(0.2)
    assert memory.read(k, day=30.0).priority > memory.read(k, day=30.0).mu
    memory.selected(k[-1], 30.0, threshold=0.5)
    assert memory.read(k, day=31.0).priority == memory.read(k, day=31.0).mu
    memory.learn_label(k, False)  # the label is back: it may explore again if still unsure
    assert k[-1] not in memory._in_flight


def test_every_table_is_bounded() -> None:
    memory = CaseMemory(max_keys=20)
    for i in range(200):
        k = keys(hs6=f"{10 + i % 89:02d}{i:04d}"[:6], value=10.0 + i)
        memory.observe(k[-1], float(i))
        memory.selected(k[-1], float(i), 0.5)
        memory.learn_label(k, i % 3 == 0)
    assert all(len(cells) <= 20 for cells in memory._cells)
    assert len(memory._arrivals) <= 20 and len(memory._in_flight) <= 20

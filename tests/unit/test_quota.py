"""DailyQuota: exactly the budget's share of each event-time day, without knowing its volume."""

from __future__ import annotations

import math
import random

import pytest

from vigie.model.quota import DailyQuota


def run_days(budget: float, volumes: list[int], seed: int = 0) -> list[int]:
    """Selections per day over a synthetic stream of random scores."""
    rng = random.Random(seed)
    quota = DailyQuota(budget=budget)
    per_day = []
    for day, volume in enumerate(volumes):
        chosen = 0
        for _ in range(volume):
            score = rng.betavariate(1, 5)
            selected = score >= quota.threshold(day)
            quota.observe(day, score, selected)
            chosen += selected
        per_day.append(chosen)
    return per_day


@pytest.mark.parametrize("budget", [0.02, 0.05, 0.1])
def test_every_day_holds_its_share_and_the_whole_stream_is_exact(budget: float) -> None:
    rng = random.Random(1)
    volumes = [rng.randrange(50, 900) for _ in range(60)]
    per_day = run_days(budget, volumes)
    exact = [budget * v for v in volumes]
    # a day ends within ``slack`` (2) items of its target, which carries what the day
    # before left (within 2 items too); the stream as a whole within ``slack``
    assert all(abs(c - e) <= 4.0 for c, e in zip(per_day, exact, strict=True))
    assert abs(sum(per_day) - budget * sum(volumes)) <= 2.0


def test_the_threshold_does_not_depend_on_the_score_scale() -> None:
    """A risk that changes scale (here: divided by 100 after day 5) keeps its share."""
    rng = random.Random(2)
    quota = DailyQuota(budget=0.05)
    chosen = 0
    for day in range(10):
        for _ in range(400):
            score = rng.random() / (100.0 if day >= 5 else 1.0)
            selected = score >= quota.threshold(day)
            quota.observe(day, score, selected)
            chosen += selected if day >= 6 else 0
    assert chosen == pytest.approx(0.05 * 400 * 4, abs=3)


def test_the_dynamic_programme_selects_the_highest_scores() -> None:
    """With the same share, the selected scores are far above the average score."""
    rng = random.Random(3)
    quota = DailyQuota(budget=0.05)
    selected_scores = []
    for day in range(20):
        for _ in range(500):
            score = rng.random()
            selected = score >= quota.threshold(day)
            quota.observe(day, score, selected)
            if selected and day > 0:
                selected_scores.append(score)
    assert sum(selected_scores) / len(selected_scores) > 0.9


def test_no_budget_selects_nothing_and_a_full_budget_everything() -> None:
    assert DailyQuota(budget=0.0).threshold(0) == math.inf
    assert DailyQuota(budget=1.0).threshold(0) == -math.inf


def test_a_late_declaration_counts_in_the_current_day() -> None:
    quota = DailyQuota(budget=0.5)
    quota.observe(3, 0.5, True)
    quota.observe(2, 0.5, False)  # dated the day before: no new day
    assert quota.selected_today == 1 and quota._seen == 2


def _reference_thresholds(quota: DailyQuota) -> list[float]:
    """The dynamic programme as written: V[m][q] = E max(X + V[m-1][q-1], V[m-1][q]) over
    the grid, each expectation a mean over the grid's values."""
    scores, g = quota._sorted, quota.grid
    x = [scores[int(min((i + 0.5) / g * len(scores), len(scores) - 1))] for i in range(g)]
    k = math.ceil(quota.budget * quota._horizon + 2 * quota.slack + 2)
    values = [0.0] * (k + 1)
    for _ in range(quota._horizon - 1):
        values = [0.0] + [
            sum(max(xi + values[q - 1], values[q]) for xi in x) / g for q in range(1, k + 1)
        ]
    return [math.inf] + [values[q] - values[q - 1] for q in range(1, k + 1)]


@pytest.mark.parametrize("seed", range(6))
def test_the_thresholds_are_the_dynamic_programmes(seed: int) -> None:
    rng = random.Random(seed)
    quota = DailyQuota(budget=rng.choice([0.01, 0.05, 0.2]), slack=rng.choice([2.0, 5.0]))
    for _ in range(rng.choice([25, 400, 1500])):
        quota.observe(0, rng.random() ** rng.choice([1, 4]), False)
    fast, reference = quota._thresholds(), _reference_thresholds(quota)
    assert len(fast) == len(reference) and fast[0] == math.inf
    assert max(abs(a - b) for a, b in zip(fast[1:], reference[1:], strict=True)) < 1e-9

"""The naive baselines run on the engine's stream, under the engine's label regime.

:func:`run_baselines` replays the same declarations in the same order:

- the hierarchical rates, greedy (``rates``) and with an upper-confidence bonus
  (``rates_ucb``), each select their own budget every day with a :class:`DailyQuota`
  (exactly ``budget`` of the day's imports, decided online) and learn, in closed loop,
  only from their own selections plus the engine's random audits (the same
  declarations), each label coming back after the same delay; with full information they
  learn every control result of the files, like the engine;
- the robust z (``robust_z``: low unit values first; ``robust_abs_z``: both directions)
  and the novelty rule (``novelty``) score every import, then learn it (no labels).

Only imports are scored, as the engine scores only imports. The result holds, for the
measured imports, each baseline's score and (rates) its targeted and audited sets.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import numpy as np

from vigie.evaluation.baselines import HierarchicalRates, NoveltyRule, RobustZ
from vigie.evaluation.examples import Example
from vigie.evaluation.protocol import Window
from vigie.evaluation.quota import DailyQuota

SELECTING: dict[str, dict[str, float]] = {"rates": {"ucb": 0.0}, "rates_ucb": {"ucb": 1.0}}
RANKING: tuple[str, ...] = ("robust_z", "robust_abs_z", "novelty")
SMOOTHING = 2.0
"""Pseudo-controls of the hierarchical rates (the research's best setting)."""


class _Selector:
    """One selecting baseline: its rates, its quota and its pending labels."""

    def __init__(self, budget: float, ucb: float) -> None:
        self.rates = HierarchicalRates(m=SMOOTHING, ucb=ucb)
        self.quota = DailyQuota(budget)
        self.queue: list[tuple[datetime, int, Example]] = []
        self.rate: list[float] = []
        self.targeted: list[bool] = []

    def reveal(self, now: datetime) -> None:
        while self.queue and self.queue[0][0] <= now:
            example = heapq.heappop(self.queue)[2]
            self.rates.learn(example.declaration, bool(example.label))


def run_baselines(
    examples: Sequence[Example],
    audits: Sequence[bool],
    *,
    budget: float,
    label_delay: timedelta,
    window: Window,
    full_information: bool,
) -> dict[str, dict[str, np.ndarray]]:
    """Every baseline's columns over the measured imports (see the module)."""
    selectors = {name: _Selector(budget, **kw) for name, kw in SELECTING.items()}
    robust, novelty = RobustZ(), NoveltyRule()
    volumes = Counter(e.declaration.lodged_at.date() for e in examples if e.is_import)
    ranking: dict[str, list[float]] = {name: [] for name in RANKING}
    audited: list[bool] = []
    day: date | None = None
    for seq, (example, audit) in enumerate(zip(examples, audits, strict=True)):
        decl = example.declaration
        if not example.is_import:
            continue
        if decl.lodged_at.date() != day:
            day = decl.lodged_at.date()
            for selector in selectors.values():
                selector.quota.start_day(volumes[day])
        measured = decl in window
        for selector in selectors.values():
            selector.reveal(decl.lodged_at)
            score, rate = selector.rates.score(decl)
            targeted = selector.quota.decide(score) and not audit
            if example.label is not None and (
                (full_information and example.control is not None)
                or (not full_information and (targeted or audit))
            ):
                heapq.heappush(selector.queue, (decl.lodged_at + label_delay, seq, example))
            if measured:
                selector.rate.append(rate)
                selector.targeted.append(targeted)
        if measured:
            z = robust.z(decl)
            ranking["robust_z"].append(-z)
            ranking["robust_abs_z"].append(abs(z))
            ranking["novelty"].append(novelty.score(decl))
            audited.append(audit)
        robust.learn(decl)
        novelty.learn(decl)
    out: dict[str, dict[str, np.ndarray]] = {
        name: {
            "score": np.array(s.rate, dtype=float),
            "targeted": np.array(s.targeted, dtype=bool),
            "audited": np.array(audited, dtype=bool),
        }
        for name, s in selectors.items()
    }
    for name, scores in ranking.items():
        out[name] = {"score": np.array(scores, dtype=float)}
    return out

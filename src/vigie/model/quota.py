"""The daily quota: each declaration is decided when it is scored, and every event-time
UTC day selects its ``budget`` share of the declarations it saw.

The day's volume is not known in service, so the selections are paced: after ``n``
declarations of the day the target is ``budget * n`` plus what the days before left
(behind or ahead, carried). The threshold is the optimal one for selecting the slots
left over a rolling horizon of declarations, drawn from the recent scores: the dynamic
programme ``V[m][q] = E max(X + V[m-1][q-1], V[m-1][q])``, threshold
``V[m-1][q] - V[m-1][q-1]``, computed each day over a quantile grid of the last
``window`` scores. A declaration is selected anyway ``slack`` items behind and refused
``slack`` items ahead. The score's scale never matters. Why: docs/learning-from-controls.md.

Examples
--------
>>> import random
>>> rng = random.Random(0)
>>> quota = DailyQuota(budget=0.05)
>>> selected = 0
>>> for i in range(20_000):
...     day = i // 1000
...     score = rng.random()
...     chosen = score >= quota.threshold(day)
...     quota.observe(day, score, chosen)
...     selected += chosen
>>> selected
1000
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from typing import Final

from vigie.model.base import Detector

HORIZON_ITEMS: Final = 5.0
"""The horizon holds this many selections at the budget (``HORIZON_ITEMS / budget``)."""
MIN_SCORES: Final = 20
"""Scores seen before the threshold reads the dynamic programme."""
_MAX_HORIZON: Final = 20_000


class DailyQuota(Detector):
    """Select ``budget`` of each event-time day's declarations, paced as they come.

    Parameters
    ----------
    budget
        Share of the declarations selected.
    window
        Recent scores the threshold reads the score distribution from.
    grid
        Points of the quantile grid of the dynamic programme.
    slack
        Items behind (select anyway) or ahead (refuse) the exact share.
    """

    def __init__(
        self, budget: float = 0.05, window: int = 1000, grid: int = 64, slack: float = 2.0
    ) -> None:
        self.budget = budget
        self.window = window
        self.grid = grid
        self.slack = slack
        self._sorted: list[float] = []
        self._fifo: deque[float] = deque()
        self._day = -(2**62)
        self._seen = 0
        self._selected = 0
        self._carry = 0.0
        self._horizon = int(min(round(HORIZON_ITEMS / max(budget, 1e-9)), _MAX_HORIZON))
        self._table: list[float] = []  # thresholds for q = 0 .. at the full horizon
        self._cached: tuple[int, list[float]] = (-1, [])  # the next day's table, by _n
        self._n = 0

    @property
    def version(self) -> str:
        """Changes with every declaration counted."""
        return f"budget-{self._n}"

    @property
    def selected_today(self) -> int:
        """Declarations selected since the day began."""
        return self._selected

    def threshold(self, day: int) -> float:
        """The score a declaration of event-time ``day`` needs to be selected (+-inf:
        refused or selected whatever its score)."""
        if self.budget <= 0.0:
            return math.inf
        if self.budget >= 1.0:
            return -math.inf
        seen, selected, carry = self._seen, self._selected, self._carry
        if day > self._day:  # the first declaration of a new day
            carry = self._next_carry()
            seen = selected = 0
        behind = self.budget * (seen + 1) + carry - selected
        if behind >= self.slack:
            return -math.inf
        if behind <= 1.0 - self.slack:
            return math.inf
        q = self.budget * self._horizon + behind
        table = self._table if day <= self._day else self._day_table()
        if not table:
            scores = self._sorted
            if not scores:
                return -math.inf
            share = min(max(q / self._horizon, 0.0), 1.0)
            return scores[min(len(scores) - 1, int((1.0 - share) * len(scores)))]
        low = min(max(math.floor(q), 1), len(table) - 2)
        frac = q - math.floor(q)
        return (1.0 - frac) * table[low] + frac * table[low + 1]

    def observe(self, day: int, score: float, selected: bool) -> None:
        """Count a decided declaration (a late one counts in the current day)."""
        if day > self._day:
            self._carry = self._next_carry()
            self._day = day
            self._seen = self._selected = 0
            self._table = self._day_table()
        self._n += 1
        self._seen += 1
        self._selected += 1 if selected else 0
        if math.isfinite(score):
            insort(self._sorted, score)
            self._fifo.append(score)
            if len(self._fifo) > self.window:
                old = self._fifo.popleft()
                del self._sorted[bisect_left(self._sorted, old)]

    def _next_carry(self) -> float:
        """Behind (+) or ahead (-) of the exact share at the end of the current day."""
        if self._n == 0:
            return 0.0
        return self.budget * self._seen + self._carry - self._selected

    def _day_table(self) -> list[float]:
        """The table of a new day, from the scores seen so far (cached until one more)."""
        if len(self._sorted) < MIN_SCORES:
            return []
        if self._cached[0] != self._n:
            self._cached = (self._n, self._thresholds())
        return self._cached[1]

    def _thresholds(self) -> list[float]:
        """Thresholds at the full horizon for q = 0 .. q_max selections left.

        ``E max(X + a, b)`` over the grid's ``g`` values ``x`` (sorted) is ``a + (the sum
        of the x above b - a, plus b - a for each of the others) / g``: a binary search
        and a suffix sum instead of a pass over the grid, for each q of each step.
        """
        scores, g = self._sorted, self.grid
        n = len(scores)
        x = [scores[int(min((i + 0.5) / g * n, n - 1))] for i in range(g)]
        above = [0.0] * (g + 1)  # above[i]: the sum of x[i:]
        for i in range(g - 1, -1, -1):
            above[i] = above[i + 1] + x[i]
        k = math.ceil(self.budget * self._horizon + 2 * self.slack + 2)
        values = [0.0] * (k + 1)  # V[q] with m - 1 declarations left
        for _ in range(self._horizon - 1):
            updated = [0.0] * (k + 1)
            for q in range(1, k + 1):
                a = values[q - 1]
                t = values[q] - a
                below = _count_at_most(x, t)
                updated[q] = a + (above[below] + below * t) / g
            values = updated
        table: list[float] = [math.inf]
        table.extend([values[q] - values[q - 1] for q in range(1, k + 1)])
        return table


def _count_at_most(ordered: list[float], t: float) -> int:
    """How many values of ``ordered`` are at most ``t`` (``bisect_right``, compiled
    inline: the dynamic programme asks it a thousand times a day).

    >>> _count_at_most([1.0, 2.0, 2.0, 3.0], 2.0), _count_at_most([1.0], 0.5)
    (3, 0)
    """
    low, high = 0, len(ordered)
    while low < high:
        middle = (low + high) // 2
        if t < ordered[middle]:
            high = middle
        else:
            low = middle + 1
    return low

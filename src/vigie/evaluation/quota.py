"""A daily quota for a baseline: each declaration decided when it is scored, each day ending
with exactly ``budget`` of its declarations selected.

The day's quota is ``budget * volume`` plus the fractional remainder carried from the day
before, rounded down; the day's volume is known (an evaluation reads it from the files).
The threshold is the optimal one for selecting the ``q`` selections left among the ``m``
declarations to come so as to maximise the sum of the selected scores, the scores being
independent draws from the last ``window`` scores:
``V[m][q] = E max(X + V[m-1][q-1], V[m-1][q])``, threshold ``V[m-1][q] - V[m-1][q-1]``;
it waits for the high scores it expects and relaxes as the day runs out. When ``m <= q``
every declaration left is selected.

>>> quota = DailyQuota(budget=0.1)
>>> quota.start_day(50)
>>> picks = [quota.decide(s / 50) for s in range(50)]
>>> sum(picks)
5
"""

from __future__ import annotations

import bisect
import math
from collections import deque

import numpy as np

MAX_TABLE = 5000
"""Days of more declarations decide on the window's quantile ``1 - q / m`` instead."""


class DailyQuota:
    """Exactly ``budget`` of each day's known volume, chosen online."""

    def __init__(self, budget: float, window: int = 1000, grid: int = 64) -> None:
        self.budget = budget
        self.window = window
        self.grid = grid
        self._sorted: list[float] = []
        self._fifo: deque[float] = deque()
        self._carry = 0.0
        self._quota = 0
        self._selected = 0
        self._left = 0
        self._table: np.ndarray | None = None

    def start_day(self, volume: int) -> None:
        """A new day of ``volume`` declarations."""
        exact = self.budget * volume + self._carry
        self._quota = math.floor(exact + 1e-9)
        self._carry = exact - self._quota
        self._selected = 0
        self._left = volume
        ready = self._quota > 0 and volume <= MAX_TABLE and len(self._sorted) >= 20
        self._table = self._thresholds(volume, self._quota) if ready else None

    def decide(self, score: float) -> bool:
        """Whether to select the declaration of ``score``; then count it."""
        chosen = score >= self._threshold()
        self._left -= 1
        self._selected += chosen
        bisect.insort(self._sorted, score)
        self._fifo.append(score)
        if len(self._fifo) > self.window:
            del self._sorted[bisect.bisect_left(self._sorted, self._fifo.popleft())]
        return chosen

    def _threshold(self) -> float:
        q = self._quota - self._selected
        m = self._left
        if q <= 0:
            return math.inf
        if m <= q or not self._sorted:
            return -math.inf
        table = self._table
        if table is not None and m < table.shape[0] and q < table.shape[1]:
            return float(table[m, q])
        values = self._sorted
        return values[min(len(values) - 1, math.floor((1.0 - q / m) * len(values)))]

    def _thresholds(self, n: int, k: int) -> np.ndarray:
        """T[m, q] for m declarations and q selections left."""
        values = np.asarray(self._sorted)
        where = np.minimum((np.arange(self.grid) + 0.5) / self.grid * len(values), len(values) - 1)
        x = values[where.astype(int)]
        value = np.zeros(k + 1)
        table = np.empty((n + 1, k + 1))
        table[:, 0] = math.inf
        for m in range(1, n + 1):
            table[m, 1:] = value[1:] - value[:-1]
            take = x[:, None] + value[None, :-1]
            nxt = np.empty(k + 1)
            nxt[0] = 0.0
            nxt[1:] = np.maximum(take, value[None, 1:]).mean(axis=0)
            value = nxt
        return table

"""The inspection budget: an online threshold that selects the top ``budget`` share.

The threshold is the ``1 - budget`` quantile of the last ``window`` risks; on top of it,
random audits select any other declaration with probability ``audit_share``, the
unbiased sample the supervised model needs. Each decision records the probability with
which the declaration could be selected, for inverse-probability weighting.

Examples
--------
>>> import random
>>> rng = random.Random(0)
>>> budget = InspectionBudget(budget=0.05, audit_share=0.01, seed=0)
>>> chosen = 0
>>> for _ in range(20_000):
...     decision = budget.decide(rng.random())
...     chosen += decision.selected
...     budget.learn_one(decision)
>>> print(f"threshold {budget.threshold:.3f}, selected {chosen / 20_000:.3f}")
threshold 0.953, selected 0.059
"""

from __future__ import annotations

import math
import random
from array import array
from typing import Final, NamedTuple

import numpy as np

from vigie.model.assessment import Selection
from vigie.model.base import Detector

MIN_SELECTION_PROBABILITY: Final = 1e-4
"""Floor of a recorded selection probability (a Score's must be > 0)."""


class Decision(NamedTuple):
    """The budget's decision for one declaration."""

    risk: float
    selected: bool
    selection: Selection | None
    selection_probability: float
    threshold: float


class InspectionBudget(Detector):
    """Select the top ``budget`` share of risks online, plus random audits.

    Parameters
    ----------
    budget
        Share of declarations the threshold selects (0.05: the top 5 %).
    audit_share
        Probability that any declaration not selected by the threshold is audited.
    seed
        Seed of the audit draws.
    window
        Number of recent risks the quantile is computed over.
    refresh
        Declarations between two recomputations of the threshold.
    min_history
        Risks seen before the threshold selects anything (until then, only audits).
    """

    def __init__(
        self,
        budget: float = 0.05,
        audit_share: float = 0.01,
        seed: int = 0,
        window: int = 5_000,
        refresh: int = 100,
        min_history: int = 100,
    ) -> None:
        self.budget = budget
        self.audit_share = audit_share
        self.seed = seed
        self.window = window
        self.refresh = refresh
        self.min_history = min_history
        self._rng = random.Random(seed)
        self._draw = self._rng.random()  # the next audit draw, used by decide, spent by learn
        self._risks = array("d", bytes(8 * window))
        self._n = 0
        self._filled = 0  # risks in the window since the last restart
        self._threshold = 1.0

    @property
    def threshold(self) -> float:
        """The current risk threshold (1.0, nothing selected, until ``min_history``)."""
        return self._threshold

    @property
    def version(self) -> str:
        return f"budget-{self._n // self.refresh}"

    def decide(self, risk: float) -> Decision:
        """Select ``risk`` if it exceeds the threshold, else audit it at random.

        Deciding learns nothing: the same risk gets the same decision until
        :meth:`learn_one` takes it into the window (and spends the audit draw).
        """
        threshold = self._threshold
        if self._n >= self.min_history and risk > threshold and self.budget > 0:
            return Decision(risk, True, "engine", 1.0, threshold)
        probability = max(self.audit_share, MIN_SELECTION_PROBABILITY)
        if self.audit_share > 0 and self._draw < self.audit_share:
            return Decision(risk, True, "random_audit", probability, threshold)
        return Decision(risk, False, None, probability, threshold)

    def restart(self) -> None:
        """Forget the window: the risks change scale (the engine's risk switched from the
        unsupervised to the calibrated one), so the old quantile no longer selects the top
        ``budget``. The threshold is recomputed after ``min_history`` new risks."""
        self._filled = 0

    def learn_one(self, decision: Decision) -> None:
        """Add a decided risk to the window; recompute the threshold every ``refresh``."""
        if decision.selection != "engine" and self.audit_share > 0:
            self._draw = self._rng.random()
        window = self.window
        risk = decision.risk
        self._risks[self._n % window] = risk
        self._n += 1
        self._filled = min(self._filled + 1, window)
        if self._n % self.refresh == 0 or self._filled == self.min_history:
            if self._filled < self.min_history:
                return
            risks = np.frombuffer(self._risks)
            if self._filled < window:
                risks = risks[np.arange(self._n - self._filled, self._n) % window]
            self._threshold = quantile(risks, 1.0 - self.budget)


def quantile(values: np.ndarray, q: float) -> float:
    """``np.quantile(values, q)`` (linear interpolation), from one partial sort (faster).

    >>> values = np.random.default_rng(1).random(5_000)
    >>> all(quantile(values, q) == np.quantile(values, q) for q in (0.0, 0.5, 0.95, 1.0))
    True
    """
    position = (values.shape[0] - 1) * q
    low = math.floor(position)
    high = min(low + 1, values.shape[0] - 1)
    below, above = np.partition(values, (low, high))[[low, high]].tolist()
    t = position - low
    # numpy's lerp, for the same rounding: from the nearer end
    if t >= 0.5:
        return float(above - (above - below) * (1.0 - t))
    return float(below + (above - below) * t)

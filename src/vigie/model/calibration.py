"""The final risk: the supervised probability and the detectors' scores, calibrated on the
control results.

:class:`PlattScaling` recalibrates the supervised probability; :class:`RiskCombiner`
calibrates the valuation and atypicality scores into infraction rates and joins what
each adds over the base rate to the supervised probability in a noisy-or. Why:
docs/learning-from-controls.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vigie.model.base import Detector


class PlattScaling(Detector):
    """Online Platt scaling: ``p' = sigmoid(a * logit(p) + b)``, refitted on binned counts.

    Parameters
    ----------
    bins
        Bins of the logit on [-10, 10] in which the probabilities and their outcomes are
        counted.
    refit
        Results learnt between two refits of ``a`` and ``b`` (Newton steps).
    prior
        Pseudo-controls of the ridge that pulls ``a, b`` toward the identity ``1, 0``.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(0)
    >>> platt = PlattScaling()
    >>> for _ in range(5000):  # the model says 0.99 or 0.01 when the truth is 0.5 or 0.1
    ...     high = rng.random() < 0.5
    ...     platt.learn_one(0.99 if high else 0.01, rng.random() < (0.5 if high else 0.1))
    >>> round(platt.predict_proba_one(0.99), 2), round(platt.predict_proba_one(0.01), 2)
    (0.5, 0.1)
    """

    def __init__(self, bins: int = 80, refit: int = 50, prior: float = 20.0) -> None:
        self.bins = bins
        self.refit = refit
        self.prior = prior
        self._a = 1.0
        self._b = 0.0
        self._n = [0.0] * bins
        self._pos = [0.0] * bins
        self._learnt = 0

    def predict_proba_one(self, p: float) -> float:
        """The recalibrated probability."""
        p = min(max(p, 1e-9), 1.0 - 1e-9)
        t = self._a * math.log(p / (1.0 - p)) + self._b
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, t))))

    def learn_one(self, p: float, fraud: bool, weight: float = 1.0) -> None:
        """Count a probability given out of sample and its outcome."""
        b = self._bin(p)
        self._n[b] += weight
        self._pos[b] += weight if fraud else 0.0
        self._learnt += 1
        if self._learnt % self.refit == 0:
            self._fit()

    def _bin(self, p: float) -> int:
        p = min(max(p, 1e-9), 1.0 - 1e-9)
        logit = math.log(p / (1.0 - p))
        return min(self.bins - 1, max(0, int((logit + 10.0) / 20.0 * self.bins)))

    def _fit(self) -> None:
        n, pos = np.array(self._n), np.array(self._pos)
        x = ((np.arange(self.bins) + 0.5) / self.bins * 20.0 - 10.0)[n > 0]
        n, pos = n[n > 0], pos[n > 0]
        a, b = self._a, self._b
        for _ in range(5):
            q = 1.0 / (1.0 + np.exp(-np.clip(a * x + b, -50.0, 50.0)))
            r, w = n * q - pos, n * q * (1.0 - q)
            ga = self.prior * (a - 1.0) + float(r @ x)
            gb = self.prior * b + float(r.sum())
            haa = self.prior + float(w @ (x * x))
            hab = float(w @ x)
            hbb = self.prior + float(w.sum())
            det = haa * hbb - hab * hab
            if det <= 1e-12:
                break
            a -= (hbb * ga - hab * gb) / det
            b -= (haa * gb - hab * ga) / det
        self._a, self._b = max(0.05, a), b  # a > 0: the supervised ranking is kept


class RiskCombiner(Detector):
    """The final risk: the supervised probability, lifted by what the detectors add.

    ``scores`` are, for one declaration, (supervised probability, valuation depth,
    atypicality score, valuation evidence class), as recorded when it was scored.
    Before ``warm_up`` controls the risk is the unsupervised noisy-or
    ``1 - (1 - valuation)(1 - atypicality)``; then
    ``1 - (1 - platt(supervised)) * (1 - valuation lift) * (1 - atypicality lift)``,
    each lift being how much the calibrated rate of the detector's score exceeds the
    base rate.

    Parameters
    ----------
    bins
        Equal bins on [0, 1] in which the detectors' scores and outcomes are counted.
    prior_strength
        Pseudo-controls smoothing each calibrated rate toward its prior.
    warm_up
        Controls learnt before the calibrated combination replaces the noisy-or.
    valuation_classes
        Number of valuation evidence classes, each calibrated on its own.
    refresh
        Controls between two recomputations of the calibration curves (or 5 % of those
        learnt, when more).
    floors, borrows
        Per class, the lower classes whose rates it keeps at least (``floors``) or is
        smoothed toward (``borrows``); None: none.

    Examples
    --------
    The same valuation depth, in a class where it is telling (1) and one where it is not
    (0), with an uninformative supervised probability and atypicality:

    >>> import random
    >>> rng = random.Random(2)
    >>> combiner = RiskCombiner(warm_up=100, valuation_classes=2)
    >>> for _ in range(6000):
    ...     cls = rng.randrange(2)
    ...     val = rng.random()
    ...     fraud = rng.random() < (0.9 * val if cls else 0.05)
    ...     combiner.learn_one((0.0, val, 0.0, cls), fraud)
    >>> [round(combiner.predict_proba_one((0.0, 0.95, 0.0, c)), 2) for c in (0, 1)]
    [0.08, 0.82]
    """

    def __init__(
        self,
        bins: int = 40,
        prior_strength: float = 5.0,
        warm_up: int = 200,
        valuation_classes: int = 6,
        refresh: int = 25,
        floors: Sequence[Sequence[int]] | None = None,
        borrows: Sequence[Sequence[int]] | None = None,
    ) -> None:
        self.bins = bins
        self.prior_strength = prior_strength
        self.warm_up = warm_up
        self.valuation_classes = valuation_classes
        self.refresh = refresh
        self.floors = floors
        self.borrows = borrows
        none: tuple[tuple[int, ...], ...] = ((),) * valuation_classes
        self._floors = none if floors is None else tuple(tuple(f) for f in floors)
        self._borrows = none if borrows is None else tuple(tuple(b) for b in borrows)
        for c, lower in enumerate(self._floors + self._borrows):
            if any(not 0 <= d < c % valuation_classes for d in lower):
                raise ValueError(
                    f"valuation class {c % valuation_classes}: floors and borrows must name "
                    "lower classes"
                )
        self._platt = PlattScaling()
        self._cache: list[list[float]] | None = None
        self._cached_rate = 0.5  # the base rate the cached curves were computed with
        self._refreshed_at = 0  # controls learnt when the curves were last dropped
        # Rows: valuation (all classes), atypicality, then valuation per class.
        self._n_counts = [[0.0] * bins for _ in range(2 + valuation_classes)]
        self._pos_counts = [[0.0] * bins for _ in range(2 + valuation_classes)]
        self._total = 0.0
        self._positives = 0.0
        self._n = 0

    @property
    def version(self) -> str:
        """Changes with every control learnt."""
        return f"combiner-{self._n}"

    @property
    def is_warm(self) -> bool:
        """Whether the risk is the calibrated combination (else the unsupervised one)."""
        return self._n >= self.warm_up

    @property
    def base_rate(self) -> float:
        """The weighted infraction rate of the controls (Laplace-smoothed)."""
        return (self._positives + 1.0) / (self._total + 2.0)

    def calibrated(self, detector: int, score: float, valuation_class: int = 0) -> float:
        """The calibrated infraction rate of a valuation (``detector`` 0, in its class)
        or atypicality (1) score."""
        row = 2 + self._class(valuation_class) if detector == 0 else 1
        return self._curves()[row][self._bin(score)]

    def predict_proba_one(self, scores: Sequence[float]) -> float:
        """The risk of one declaration from its four ``scores``."""
        supervised, valuation, atypicality, valuation_class = scores
        if not self.is_warm:
            return 1.0 - (1.0 - valuation) * (1.0 - atypicality)
        curves = self._curves()
        by_value = curves[2 + self._class(valuation_class)][self._bin(valuation)]
        by_atypicality = curves[1][self._bin(atypicality)]
        prior = self._cached_rate  # the rate the curves were built with
        value_lift = max(0.0, (by_value - prior) / (1.0 - prior))
        atypicality_lift = max(0.0, (by_atypicality - prior) / (1.0 - prior))
        supervised = self._platt.predict_proba_one(supervised)
        return 1.0 - (1.0 - supervised) * (1.0 - value_lift) * (1.0 - atypicality_lift)

    def learn_one(self, scores: Sequence[float], fraud: bool, weight: float = 1.0) -> None:
        """Learn the four ``scores`` recorded for one controlled declaration."""
        positive = weight if fraud else 0.0
        n, pos = self._n_counts, self._pos_counts
        b = self._bin(scores[1])
        for row in (0, 2 + self._class(scores[3])):
            n[row][b] += weight
            pos[row][b] += positive
        b = self._bin(scores[2])
        n[1][b] += weight
        pos[1][b] += positive
        self._platt.learn_one(scores[0], fraud, weight)
        self._total += weight
        self._positives += positive
        self._n += 1
        if self._n - self._refreshed_at >= max(self.refresh, self._n // 20):
            self._refreshed_at = self._n
            self._cache = None

    def _bin(self, score: float) -> int:
        return min(self.bins - 1, max(0, int(score * self.bins)))

    def _class(self, value: float) -> int:
        return min(self.valuation_classes - 1, max(0, int(value)))

    def _curve(self, n: np.ndarray, pos: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """Smoothed tail rates of rows of counts (the rate of the controls at least as
        deep as each bin, smoothed toward ``prior``), then their running maximum."""
        k = self.prior_strength
        tail_n = np.cumsum(n[:, ::-1], axis=1)[:, ::-1]
        tail_pos = np.cumsum(pos[:, ::-1], axis=1)[:, ::-1]
        tails = (tail_pos + k * prior) / (tail_n + k)
        return np.maximum.accumulate(tails, axis=1)

    def _curves(self) -> list[list[float]]:
        if self._cache is None:
            self._cached_rate = self.base_rate
            n, pos = np.array(self._n_counts), np.array(self._pos_counts)
            both = self._curve(n[:2], pos[:2], np.full(self.bins, self._cached_rate))
            by_class = self._curve(n[2:], pos[2:], both[0])  # toward the pooled valuation
            if any(self._borrows) or any(self._floors):
                by_class = self._ordered(n[2:], pos[2:], both[0], by_class)
            self._cache = both.tolist() + by_class.tolist()
        return self._cache

    def _ordered(
        self, n: np.ndarray, pos: np.ndarray, pooled: np.ndarray, curves: np.ndarray
    ) -> np.ndarray:
        """The class curves again, in class order: each smoothed toward the pooled curve
        raised to the curves it borrows from, then raised to the curves of its floors."""
        for c in range(self.valuation_classes):
            if self._borrows[c]:
                prior = np.max(curves[list(self._borrows[c])], axis=0)
                curves[c] = self._curve(n[c : c + 1], pos[c : c + 1], np.maximum(pooled, prior))
            if self._floors[c]:
                curves[c] = np.maximum(curves[c], np.max(curves[list(self._floors[c])], axis=0))
        return curves

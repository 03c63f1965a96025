"""Learning from controls: an online logistic model fed by late, selection-biased labels.

The model is River's :class:`~river.linear_model.LogisticRegression`. Its inputs come in
two parts: numeric features (smoothed infraction rates as logits, counts, the detectors'
scores, log value and mass), standardised online, and one-hot categorical features
(import type, tax regime, ...) passed through unscaled. River's own scaler learns a
feature's statistics only when the feature is present, so a one-hot indicator (always 1
when present) would be scaled to 0; it also costs a Python loop per feature. The numeric
part is therefore standardised here, with weighted running moments held in numpy arrays
(the numeric features always come with the same names, in the same order).

Labels arrive days late and mostly for declarations the engine chose; each is learnt with
its inverse-probability weight, clipped at ``max_weight``.

Examples
--------
A model that sees the importer's rate matter:

>>> import random
>>> rng = random.Random(1)
>>> model = ControlLearner(warm_up=10)
>>> for _ in range(2000):
...     rate = rng.random()
...     model.learn_one({"te:importer": rate}, {}, rng.random() < rate, weight=1.0)
>>> low = model.predict_proba_one({"te:importer": 0.1}, {})
>>> high = model.predict_proba_one({"te:importer": 0.9}, {})
>>> print(f"{low:.2f} {high:.2f} after {model.n_learnt} controls")
0.14 0.88 after 2000 controls
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from river import linear_model, optim

from vigie.detectors.base import Detector


class ControlLearner(Detector):
    """Online supervised probability of an infraction, learnt from weighted control results.

    Parameters
    ----------
    learning_rate
        SGD step of the logistic regression.
    l2
        L2 penalty of the logistic regression.
    max_weight
        Clip on the inverse-probability weight of one control result.
    warm_up
        Controls learnt before :meth:`is_warm` says the probability can be trusted.
    max_z
        Standardised numeric features are clipped to ``[-max_z, max_z]``: with few
        controls learnt, a feature's variance is underestimated and a rare value would
        otherwise standardise to hundreds and saturate the probability.
    """

    def __init__(
        self,
        learning_rate: float = 0.01,
        l2: float = 0.0,
        max_weight: float = 20.0,
        warm_up: int = 200,
        max_z: float = 5.0,
    ) -> None:
        self.learning_rate = learning_rate
        self.l2 = l2
        self.max_weight = max_weight
        self.warm_up = warm_up
        self.max_z = max_z
        self._model: Any = linear_model.LogisticRegression(
            optimizer=optim.SGD(learning_rate), l2=l2
        )
        self._n = 0
        self._weight = 0.0
        self._names: tuple[str, ...] = ()
        self._mean = np.zeros(0)
        self._m2 = np.zeros(0)
        self._scale = np.ones(0)

    @property
    def version(self) -> str:
        """Changes with every control learnt."""
        return f"supervised-{self._n}"

    @property
    def n_learnt(self) -> int:
        return self._n

    @property
    def is_warm(self) -> bool:
        return self._n >= self.warm_up

    def _vector(self, numeric: dict[str, float]) -> np.ndarray:
        if len(numeric) != len(self._names):
            if self._names:
                raise ValueError(
                    f"supervised features: expected {len(self._names)} numeric features "
                    f"{self._names[:3]}..., got {len(numeric)}"
                )
            self._names = tuple(numeric)
            self._mean = np.zeros(len(numeric))
            self._m2 = np.zeros(len(numeric))
            self._scale = np.ones(len(numeric))
        return np.fromiter(numeric.values(), dtype=np.float64, count=len(numeric))

    def _inputs(self, x: np.ndarray, categorical: dict[str, float]) -> dict[str, float]:
        z = np.clip((x - self._mean) / self._scale, -self.max_z, self.max_z)
        scaled = dict(zip(self._names, z.tolist(), strict=True))
        if categorical:
            scaled.update(categorical)
        return scaled

    def _learn_moments(self, x: np.ndarray, weight: float) -> None:
        """Weighted Welford update of the running mean and variance."""
        self._weight += weight
        delta = x - self._mean
        self._mean += delta * (weight / self._weight)
        self._m2 += weight * delta * (x - self._mean)
        std = np.sqrt(self._m2 / self._weight)
        self._scale = np.where(std > 1e-9, std, 1.0)

    def predict_proba_one(self, numeric: dict[str, float], categorical: dict[str, float]) -> float:
        """Probability of an infraction (the prior 0.5 before any control)."""
        if self._n == 0:
            return 0.5
        x = self._inputs(self._vector(numeric), categorical)
        p: float = self._model.predict_proba_one(x)[True]
        return p if math.isfinite(p) else 0.5

    def learn_one(
        self,
        numeric: dict[str, float],
        categorical: dict[str, float],
        fraud: bool,
        weight: float = 1.0,
    ) -> None:
        """Learn one control result with its inverse-probability weight (clipped).

        The SGD step uses the weight divided by the mean weight learnt so far: the
        weights keep their ratios (the estimate stays unbiased) while a 1 % audit
        weighted 20 no longer takes a step twenty times the learning rate, which made
        the model jump to probabilities of exactly 1 while it had few labels.
        """
        self._learn(self._vector(numeric), categorical, fraud, weight)

    def learn_array(
        self,
        names: tuple[str, ...],
        x: np.ndarray,
        categorical: dict[str, float],
        fraud: bool,
        weight: float = 1.0,
    ) -> None:
        """:meth:`learn_one` for numeric features already in an array, in the order of
        ``names`` (the engine's pending store): no dictionary round trip."""
        if names is not self._names and names != self._names:
            self.learn_one(dict(zip(names, x.tolist(), strict=True)), categorical, fraud, weight)
            if names == self._names:
                self._names = names  # the same object from now on: no comparison
            return
        self._learn(x, categorical, fraud, weight)

    def _learn(
        self, x: np.ndarray, categorical: dict[str, float], fraud: bool, weight: float
    ) -> None:
        w = min(max(weight, 0.0), self.max_weight)
        if w <= 0:
            return
        self._learn_moments(x, w)
        step = w * (self._n + 1) / self._weight
        self._model.learn_one(self._inputs(x, categorical), fraud, w=step)
        self._n += 1


def ipw(selection_probability: float | None, fallback: float, max_weight: float) -> float:
    """Inverse-probability weight of a control result, clipped to ``[1, max_weight]``.

    The probability the result carries wins; else the one recorded at scoring time.

    >>> ipw(None, 0.01, 20.0), ipw(0.5, 0.01, 20.0), ipw(1.0, 0.01, 20.0)
    (20.0, 2.0, 1.0)
    """
    p = selection_probability if selection_probability is not None else fallback
    if p <= 0:
        return max_weight
    return min(max(1.0 / p, 1.0), max_weight)


class PlattScaling:
    """Online Platt scaling: ``p' = sigmoid(a * logit(p) + b)``, refitted on binned counts.

    An SGD logistic model fed by inverse-probability-weighted labels overshoots: in a
    stretch of the generated stream half of the declarations it puts above 0.99 are
    compliant, and they crowd the budget. The probabilities recorded at scoring time (out
    of sample) and their control results are counted in ``bins`` bins of the logit on
    [-10, 10]; every ``refit`` results, ``a`` and ``b`` are refitted by Newton steps on the
    weighted log-loss with a ridge of ``prior`` pseudo-controls toward the identity
    (``a = 1, b = 0``). ``a`` stays positive, so the supervised ranking is kept.

    >>> import random
    >>> rng = random.Random(0)
    >>> platt = PlattScaling()
    >>> for _ in range(5000):  # the model says 0.99 or 0.01 when the truth is 0.5 or 0.1
    ...     high = rng.random() < 0.5
    ...     platt.learn_one(0.99 if high else 0.01, rng.random() < (0.5 if high else 0.1))
    >>> round(platt.predict(0.99), 2), round(platt.predict(0.01), 2)
    (0.5, 0.1)
    """

    def __init__(self, bins: int = 80, refit: int = 50, prior: float = 20.0) -> None:
        self.bins = bins
        self.refit = refit
        self.prior = prior
        self.a = 1.0
        self.b = 0.0
        self._n = [0.0] * bins
        self._pos = [0.0] * bins
        self._learnt = 0

    def _bin(self, p: float) -> int:
        p = min(max(p, 1e-9), 1.0 - 1e-9)
        logit = math.log(p / (1.0 - p))
        return min(self.bins - 1, max(0, int((logit + 10.0) / 20.0 * self.bins)))

    def predict(self, p: float) -> float:
        p = min(max(p, 1e-9), 1.0 - 1e-9)
        t = self.a * math.log(p / (1.0 - p)) + self.b
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, t))))

    def learn_one(self, p: float, fraud: bool, weight: float = 1.0) -> None:
        b = self._bin(p)
        self._n[b] += weight
        self._pos[b] += weight if fraud else 0.0
        self._learnt += 1
        if self._learnt % self.refit == 0:
            self._fit()

    def _fit(self) -> None:
        n, pos = np.array(self._n), np.array(self._pos)
        x = ((np.arange(self.bins) + 0.5) / self.bins * 20.0 - 10.0)[n > 0]
        n, pos = n[n > 0], pos[n > 0]
        a, b = self.a, self.b
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
        self.a, self.b = max(0.05, a), b


class RiskCombiner(Detector):
    """The final risk: the supervised probability, lifted by what the detectors add.

    The valuation and atypicality scores are calibrated into infraction probabilities
    by binning (``bins`` equal bins on [0, 1], weighted counts of the control results):
    the calibrated value of a score is the infraction rate of the controls whose score was
    at least as high (monotone, and the sparse top bins pool), smoothed with
    ``prior_strength`` pseudo-controls. Each detector's lift over the base rate ``g``,
    ``(calibrated - g) / (1 - g)`` when positive, then joins the supervised probability
    in a noisy-or: ``risk = 1 - (1 - supervised) * prod(1 - lift)``, where the supervised
    probability is first recalibrated on the same control results
    (:class:`PlattScaling`; an overconfident model would otherwise fill the budget with
    near-certain risks and shut out the detectors' evidence). A detector that knows
    nothing about a data set calibrates to the base rate and leaves the ranking alone; one
    that catches a typology the supervised model has too few labels to learn lifts its
    declarations whatever the supervised model says. Scores are those recorded when each
    declaration was scored, so the calibration is out of sample. Before ``warm_up``
    controls the risk is the unsupervised noisy-or ``1 - (1 - valuation)(1 - atypicality)``.
    The calibration curves are recomputed every ``refresh`` controls, not at every one:
    they move slowly, and recomputing them was a sixth of the engine's time.

    The valuation evidence is calibrated per *evidence class* (an optional fourth score,
    an integer in ``[0, valuation_classes)``; see
    :func:`vigie.detectors.engine.valuation_class`): the same depth below the reference
    means near-certainty in a dense cell and little in a sparse fallback cell, and a value
    under half of the reference (the EU trigger for a value check) is more telling than
    one merely far out in a narrow cell. Each class's rate is smoothed toward the rate of
    all classes at the same depth (itself smoothed toward ``g``): a class with few
    controls borrows from the others, one with many speaks for itself.

    Examples
    --------
    Valuation is right, atypicality is noise:

    >>> import random
    >>> rng = random.Random(2)
    >>> combiner = RiskCombiner(warm_up=100)
    >>> for _ in range(3000):
    ...     fraud = rng.random() < 0.1
    ...     val = rng.betavariate(5, 2) if fraud else rng.betavariate(2, 5)
    ...     combiner.learn_one((0.1, val, rng.random()), fraud)
    >>> round(combiner.predict_proba_one((0.1, 0.9, 0.1)), 2)
    0.93
    >>> round(combiner.predict_proba_one((0.1, 0.1, 0.9)), 2)
    0.11

    The same depth, in a class where it is telling (1) and one where it is not (0):

    >>> combiner = RiskCombiner(warm_up=100)
    >>> for _ in range(6000):
    ...     cls = rng.randrange(2)
    ...     val = rng.random()
    ...     fraud = rng.random() < (0.9 * val if cls else 0.05)
    ...     combiner.learn_one((0.0, val, 0.0, cls), fraud)
    >>> [round(combiner.predict_proba_one((0.0, 0.95, 0.0, c)), 2) for c in (0, 1)]
    [0.08, 0.85]
    """

    def __init__(
        self,
        bins: int = 40,
        prior_strength: float = 5.0,
        warm_up: int = 200,
        valuation_classes: int = 6,
        refresh: int = 25,
    ) -> None:
        self.bins = bins
        self.prior_strength = prior_strength
        self.warm_up = warm_up
        self.valuation_classes = valuation_classes
        self.refresh = refresh
        self._platt = PlattScaling()
        self._cache: list[list[float]] | None = None
        self._cached_rate = 0.5  # the base rate the cached curves were computed with
        # Rows: valuation (all classes), atypicality, then valuation per class.
        self._n_counts = [[0.0] * bins for _ in range(2 + valuation_classes)]
        self._pos_counts = [[0.0] * bins for _ in range(2 + valuation_classes)]
        self._total = 0.0
        self._positives = 0.0
        self._n = 0

    @property
    def version(self) -> str:
        return f"combiner-{self._n}"

    @property
    def n_learnt(self) -> int:
        return self._n

    @property
    def base_rate(self) -> float:
        """The weighted infraction rate of the controls (Laplace-smoothed)."""
        return (self._positives + 1.0) / (self._total + 2.0)

    def _bin(self, score: float) -> int:
        return min(self.bins - 1, max(0, int(score * self.bins)))

    def _class(self, value: float) -> int:
        return min(self.valuation_classes - 1, max(0, int(value)))

    def _curve(self, row: int, prior: list[float]) -> list[float]:
        """Smoothed tail rates of one row, then their running maximum from shallow to deep.

        The rate of the controls at least as deep as ``b`` is smoothed toward ``prior[b]``.
        The deepest bins hold the fewest controls, and their smoothed tail falls back
        toward the prior; since the infraction probability cannot fall as the evidence
        deepens, a deep bin keeps at least the rate a shallower, better-supported tail shows.
        """
        n, pos = self._n_counts[row], self._pos_counts[row]
        k = self.prior_strength
        tails = [0.0] * self.bins
        tail_n = tail_pos = 0.0
        for b in range(self.bins - 1, -1, -1):
            tail_n += n[b]
            tail_pos += pos[b]
            tails[b] = (tail_pos + k * prior[b]) / (tail_n + k)
        for b in range(1, self.bins):
            tails[b] = max(tails[b], tails[b - 1])
        return tails

    def _curves(self) -> list[list[float]]:
        if self._cache is None:
            self._cached_rate = self.base_rate
            base = [self._cached_rate] * self.bins
            pooled = self._curve(0, base)
            self._cache = [pooled, self._curve(1, base)] + [
                self._curve(2 + c, pooled) for c in range(self.valuation_classes)
            ]
        return self._cache

    def calibrated(self, detector: int, score: float, valuation_class: int | None = None) -> float:
        """Infraction rate of the controls whose score (0: valuation, 1: atypicality) was
        at least as high (see :meth:`_curve`); for the valuation with a class, that of the
        class, smoothed toward all classes."""
        row = detector
        if detector == 0 and valuation_class is not None:
            row = 2 + self._class(valuation_class)
        return self._curves()[row][self._bin(score)]

    def predict_proba_one(self, scores: tuple[float, ...]) -> float:
        """Risk from the (supervised, valuation, atypicality[, valuation class]) scores."""
        supervised, valuation, atypicality = scores[:3]
        if self._n < self.warm_up:
            return 1.0 - (1.0 - valuation) * (1.0 - atypicality)
        cls = int(scores[3]) if len(scores) > 3 else None
        by_value = self.calibrated(0, valuation, cls)
        by_atypicality = self.calibrated(1, atypicality)
        prior = self._cached_rate  # after calibrated(): the rate its curves were built with
        value_lift = max(0.0, (by_value - prior) / (1.0 - prior))
        atypicality_lift = max(0.0, (by_atypicality - prior) / (1.0 - prior))
        supervised = self._platt.predict(supervised)
        return 1.0 - (1.0 - supervised) * (1.0 - value_lift) * (1.0 - atypicality_lift)

    def learn_one(self, scores: tuple[float, ...], fraud: bool, weight: float = 1.0) -> None:
        """Learn the scores recorded for one controlled declaration."""
        positive = weight if fraud else 0.0
        rows = [(0, scores[1]), (1, scores[2])]
        if len(scores) > 3:
            rows.append((2 + self._class(scores[3]), scores[1]))
        for row, score in rows:
            b = self._bin(score)
            self._n_counts[row][b] += weight
            self._pos_counts[row][b] += positive
        self._platt.learn_one(scores[0], fraud, weight)
        self._total += weight
        self._positives += positive
        self._n += 1
        if self._n % self.refresh == 0:
            self._cache = None

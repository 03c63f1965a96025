"""Learning from controls: an online logistic model fed by late, selection-biased labels.

The model is a logistic regression learnt by SGD, with River's
:class:`~river.linear_model.LogisticRegression` semantics (log loss, one SGD step of
``learning_rate`` per control result on the weights, a constant step of ``0.01`` on the
intercept, an optional L2 penalty on every weight) held in numpy arrays. River's model
works on dictionaries: feeding it the engine's ~70 features as a dictionary and reading
them back cost about 55 us per declaration (bench/profile_engine.py, 30,000
declarations, every label revealed), three times the budget of the whole learner.

Its inputs come in two parts: numeric features (smoothed infraction rates as logits,
activity counts, the detectors' scores, log value and mass), standardised online with
weighted running moments and clipped to ``[-max_z, max_z]``, and one-hot categorical indicators
(import type, tax regime, ...) passed through unscaled, given as the names of those that
are on. The numeric features always come with the same names, in the same order.

Labels arrive days late and mostly for declarations the engine chose; each is learnt with
its inverse-probability weight, clipped at ``max_weight``. Results are buffered and
learnt ``batch`` at a time, each with its own SGD step, in order: the probabilities lag
the last ``batch - 1`` results at most (labels are days old anyway), and the moments and
the standardised inputs are computed once per batch instead of once per result.

Examples
--------
A model that sees the importer's rate matter:

>>> import random
>>> rng = random.Random(1)
>>> model = ControlLearner(warm_up=10)
>>> for _ in range(2000):
...     rate = rng.random()
...     model.learn_one({"te:importer": rate}, (), rng.random() < rate, weight=1.0)
>>> low = model.predict_proba_one({"te:importer": 0.1}, ())
>>> high = model.predict_proba_one({"te:importer": 0.9}, ())
>>> print(f"{low:.2f} {high:.2f} after {model.n_learnt} controls")
0.14 0.88 after 2000 controls
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Final

import numpy as np

from vigie.model.base import Detector

INTERCEPT_LR: Final = 0.01
"""Constant SGD step of the intercept (River's ``intercept_lr`` default)."""

Control = tuple[np.ndarray, Collection[str], bool, float]
"""A buffered control result: numeric features, categories on, infraction, weight."""


def _sigmoid(t: float) -> float:
    """River's ``utils.math.sigmoid``: exactly 0 or 1 beyond ``|t| > 30``."""
    if t < -30.0:
        return 0.0
    if t > 30.0:
        return 1.0
    return 1.0 / (1.0 + math.exp(-t))


def _log_loss_gradient(t: float, fraud: bool) -> float:
    """Derivative of the log loss in the logit ``t`` (River's ``optim.losses.Log``)."""
    y = 1.0 if fraud else -1.0
    margin = t * y
    if margin > 18.0:
        return math.exp(-margin) * -y
    if margin < -18.0:
        return -y
    return -y / (math.exp(margin) + 1.0)


class ControlLearner(Detector):
    """Online supervised probability of an infraction, learnt from weighted control results.

    Parameters
    ----------
    learning_rate
        SGD step of the logistic regression's weights.
    l2
        L2 penalty of the logistic regression (on every weight, as River applies it).
    max_weight
        Clip on the inverse-probability weight of one control result.
    warm_up
        Controls learnt before :meth:`is_warm` says the probability can be trusted.
    max_z
        Standardised numeric features are clipped to ``[-max_z, max_z]``: with few
        controls learnt, a feature's variance is underestimated and a rare value would
        otherwise standardise to hundreds and saturate the probability.
    batch
        Control results buffered before they are learnt (see the module docstring).
    """

    def __init__(
        self,
        learning_rate: float = 0.01,
        l2: float = 0.0,
        max_weight: float = 20.0,
        warm_up: int = 200,
        max_z: float = 5.0,
        batch: int = 8,
    ) -> None:
        self.learning_rate = learning_rate
        self.l2 = l2
        self.max_weight = max_weight
        self.warm_up = warm_up
        self.max_z = max_z
        self.batch = batch
        self._n = 0
        self._weight = 0.0
        self._names: tuple[str, ...] = ()
        self._mean = np.zeros(0)
        self._m2 = np.zeros(0)
        self._coef = np.zeros(0)
        self._intercept = 0.0
        self._categories: dict[str, int] = {}
        self._category_coef: list[float] = []
        # The model folded for prediction (see _fold): clip bounds, slopes and offset on
        # the raw features, so that a prediction is one clip and one dot product (a plain
        # loop: compiled by mypyc, a third of the time of the numpy calls it replaced).
        self._low: list[float] = []
        self._high: list[float] = []
        self._slope: list[float] = []
        self._offset = 0.0
        self._buffer: list[Control] = []

    @property
    def version(self) -> str:
        """Changes with every control learnt."""
        return f"supervised-{self._n}"

    @property
    def n_learnt(self) -> int:
        """Controls received (the last ``batch - 1`` may still be buffered)."""
        return self._n

    @property
    def is_warm(self) -> bool:
        return self._n >= self.warm_up

    def _set_names(self, names: tuple[str, ...]) -> None:
        d = len(names)
        self._names = names
        self._mean, self._m2, self._coef = np.zeros(d), np.zeros(d), np.zeros(d)
        self._low, self._high = [-math.inf] * d, [math.inf] * d
        self._slope = [0.0] * d

    def _vector(self, numeric: dict[str, float]) -> list[float]:
        if len(numeric) != len(self._names):
            if self._names:
                raise ValueError(
                    f"supervised features: expected {len(self._names)} numeric features "
                    f"{self._names[:3]}..., got {len(numeric)}"
                )
            self._set_names(tuple(numeric))
        return list(numeric.values())

    def predict_proba_one(self, numeric: dict[str, float], categories: Collection[str]) -> float:
        """Probability of an infraction (the prior 0.5 before any control).

        ``categories`` names the one-hot indicators that are on (a dictionary's keys do).
        """
        if self._n == 0:
            return 0.5
        return self.predict_array(self._vector(numeric), categories)

    def predict_array(self, x: Sequence[float], categories: Collection[str]) -> float:
        """:meth:`predict_proba_one` for numeric features already in a sequence, in the
        order of the names learnt (the engine's layout)."""
        if self._n == 0:
            return 0.5
        low, high, slope = self._low, self._high, self._slope
        if len(x) != len(slope):
            raise ValueError(
                f"supervised features: expected {len(slope)} numeric features, got {len(x)}"
            )
        t = 0.0
        for i in range(len(slope)):
            v = x[i]  # clipped to [low, high]; a NaN stays NaN (the prior 0.5 below)
            if v < low[i]:
                v = low[i]
            elif v > high[i]:
                v = high[i]
            t += v * slope[i]
        t += self._offset
        coef, index = self._category_coef, self._categories
        for name in categories:
            at = index.get(name)
            if at is not None:
                t += coef[at]
        p = _sigmoid(t)
        return p if math.isfinite(p) else 0.5

    def learn_one(
        self,
        numeric: dict[str, float],
        categories: Collection[str],
        fraud: bool,
        weight: float = 1.0,
    ) -> None:
        """Learn one control result with its inverse-probability weight (clipped).

        The SGD step uses the weight divided by the mean weight learnt so far: the
        weights keep their ratios (the estimate stays unbiased) while a 1 % audit
        weighted 20 no longer takes a step twenty times the learning rate, which made
        the model jump to probabilities of exactly 1 while it had few labels.
        """
        self._learn(np.array(self._vector(numeric)), categories, fraud, weight)

    def learn_array(
        self,
        names: tuple[str, ...],
        x: np.ndarray,
        categories: Collection[str],
        fraud: bool,
        weight: float = 1.0,
    ) -> None:
        """:meth:`learn_one` for numeric features already in an array, in the order of
        ``names`` (the engine's pending store): no dictionary round trip."""
        if names is not self._names and names != self._names:
            self.learn_one(dict(zip(names, x.tolist(), strict=True)), categories, fraud, weight)
            if names == self._names:
                self._names = names  # the same object from now on: no comparison
            return
        self._learn(x, categories, fraud, weight)

    def _learn(
        self, x: np.ndarray, categories: Collection[str], fraud: bool, weight: float
    ) -> None:
        w = min(max(weight, 0.0), self.max_weight)
        if w <= 0:
            return
        self._buffer.append((x, categories, fraud, w))
        self._n += 1
        if len(self._buffer) >= self.batch:
            self._learn_buffer()

    def _learn_buffer(self) -> None:
        """Learn the buffered results: moments first, then one SGD step per result."""
        controls, self._buffer = self._buffer, []
        x = np.array([c[0] for c in controls], dtype=np.float64)
        w = np.array([c[3] for c in controls])
        learnt_before = self._weight
        self._learn_moments(x, w)
        std = np.sqrt(self._m2 / self._weight)
        scale = np.where(std > 1e-9, std, 1.0)
        z = np.minimum(np.maximum((x - self._mean) / scale, -self.max_z), self.max_z)
        cumulative = (learnt_before + np.cumsum(w)).tolist()
        n = self._n - len(controls)
        for i, (_, categories, fraud, weight) in enumerate(controls):
            n += 1
            # the weight relative to the mean weight learnt so far (see learn_one)
            self._sgd_step(z[i], categories, fraud, weight * n / cumulative[i])
        self._fold(scale)

    def _learn_moments(self, x: np.ndarray, w: np.ndarray) -> None:
        """Weighted moments of a batch merged into the running ones (Chan et al.): the
        result of a Welford update per row."""
        batch_weight = float(w.sum())
        batch_mean = w @ x / batch_weight
        batch_m2 = w @ np.square(x - batch_mean)
        total = self._weight + batch_weight
        delta = batch_mean - self._mean
        self._mean += delta * (batch_weight / total)
        self._m2 += batch_m2 + np.square(delta) * (self._weight * batch_weight / total)
        self._weight = total

    def _sgd_step(
        self, z: np.ndarray, categories: Collection[str], fraud: bool, step: float
    ) -> None:
        index, coef = self._categories, self._category_coef
        ids = [index.setdefault(name, len(index)) for name in categories]
        coef.extend([0.0] * (len(index) - len(coef)))
        t = float(z.dot(self._coef)) + self._intercept + sum(coef[i] for i in ids)
        g = _log_loss_gradient(t, fraud) * step
        self._intercept -= INTERCEPT_LR * g
        lr = self.learning_rate
        if self.l2:
            decay = 1.0 - lr * self.l2
            self._coef *= decay
            coef[:] = [c * decay for c in coef]
        self._coef -= (lr * g) * z
        for i in ids:
            coef[i] -= lr * g

    def _fold(self, scale: np.ndarray) -> None:
        """Fold the standardisation into the prediction: ``clip((x - m) / s) . c`` is
        ``(clip(x, m - k s, m + k s) - m) . (c / s)``."""
        slope = self._coef / scale
        self._low = (self._mean - self.max_z * scale).tolist()
        self._high = (self._mean + self.max_z * scale).tolist()
        self._slope = slope.tolist()
        self._offset = self._intercept - float(self._mean.dot(slope))


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
    The calibration curves are recomputed every ``refresh`` controls, or every 5 % of the
    controls learnt when that is more, not at every one: they move slowly, the more
    slowly the more controls they hold, and recomputing them was a sixth of the engine's
    time.

    The valuation evidence is calibrated per *evidence class* (an optional fourth score,
    an integer in ``[0, valuation_classes)``; see
    :func:`vigie.model.engine.valuation_class`): the same depth below the reference
    means near-certainty in a dense cell and little in a sparse fallback cell, and a value
    under half of the reference (the EU trigger for a value check) is more telling than
    one merely far out in a narrow cell. Each class's rate is smoothed toward the rate of
    all classes at the same depth (itself smoothed toward ``g``), raised to the curves of
    the classes it ``borrows`` from: a class with few controls borrows from the others,
    one with many speaks for itself. A class then keeps at least the rates of its
    ``floors`` classes (evidence known to be at least as telling; see
    :func:`vigie.model.engine.class_order`). Both name lower classes only.

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
        return f"combiner-{self._n}"

    @property
    def n_learnt(self) -> int:
        return self._n

    @property
    def is_warm(self) -> bool:
        """Whether the risk is the calibrated combination (else the unsupervised one)."""
        return self._n >= self.warm_up

    @property
    def base_rate(self) -> float:
        """The weighted infraction rate of the controls (Laplace-smoothed)."""
        return (self._positives + 1.0) / (self._total + 2.0)

    def _bin(self, score: float) -> int:
        return min(self.bins - 1, max(0, int(score * self.bins)))

    def _class(self, value: float) -> int:
        return min(self.valuation_classes - 1, max(0, int(value)))

    def _curve(self, n: np.ndarray, pos: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """Smoothed tail rates of rows of counts, then their running maximum from shallow
        to deep.

        The rate of the controls at least as deep as ``b`` is smoothed toward ``prior[b]``.
        The deepest bins hold the fewest controls, and their smoothed tail falls back
        toward the prior; since the infraction probability cannot fall as the evidence
        deepens, a deep bin keeps at least the rate a shallower, better-supported tail shows.
        """
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

    def calibrated(self, detector: int, score: float, valuation_class: int | None = None) -> float:
        """Infraction rate of the controls whose score (0: valuation, 1: atypicality) was
        at least as high (see :meth:`_curve`); for the valuation with a class, that of the
        class, smoothed toward all classes."""
        row = detector
        if detector == 0 and valuation_class is not None:
            row = 2 + self._class(valuation_class)
        return self._curves()[row][self._bin(score)]

    def predict_proba_one(self, scores: Sequence[float]) -> float:
        """Risk from the (supervised, valuation, atypicality[, valuation class]) scores."""
        supervised, valuation, atypicality = scores[:3]
        if not self.is_warm:
            return 1.0 - (1.0 - valuation) * (1.0 - atypicality)
        curves = self._curves()
        row = 0 if len(scores) < 4 else 2 + self._class(scores[3])
        by_value = curves[row][self._bin(valuation)]
        by_atypicality = curves[1][self._bin(atypicality)]
        prior = self._cached_rate  # the rate the curves were built with
        value_lift = max(0.0, (by_value - prior) / (1.0 - prior))
        atypicality_lift = max(0.0, (by_atypicality - prior) / (1.0 - prior))
        supervised = self._platt.predict(supervised)
        return 1.0 - (1.0 - supervised) * (1.0 - value_lift) * (1.0 - atypicality_lift)

    def learn_one(self, scores: Sequence[float], fraud: bool, weight: float = 1.0) -> None:
        """Learn the scores recorded for one controlled declaration."""
        positive = weight if fraud else 0.0
        n, pos = self._n_counts, self._pos_counts
        b = self._bin(scores[1])
        n[0][b] += weight
        pos[0][b] += positive
        if len(scores) > 3:
            row = 2 + self._class(scores[3])
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

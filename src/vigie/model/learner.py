"""Learning from controls: an online logistic regression fed by late, weighted labels.

River's :class:`~river.linear_model.LogisticRegression` semantics (log loss, SGD, a
constant step on the intercept) held in numpy arrays, on a fixed layout of numeric
features (standardised online, clipped) plus one-hot categories given by the names of
those that are on. Each label is learnt with its inverse-probability weight (:func:`ipw`).
Why it is built this way: docs/learning-from-controls.md.

Examples
--------
A model that sees the importer's rate matter:

>>> import random
>>> rng = random.Random(1)
>>> model = ControlLearner(warm_up=10)
>>> for _ in range(2000):
...     rate = rng.random()
...     model.learn_one([rate], (), rng.random() < rate, weight=1.0)
>>> low, high = model.predict_proba_one([0.1], ()), model.predict_proba_one([0.9], ())
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


class ControlLearner(Detector):
    """Online probability of an infraction, learnt from weighted control results.

    Parameters
    ----------
    learning_rate
        SGD step of the logistic regression's weights.
    l2
        L2 penalty of the logistic regression (on every weight, as River applies it).
    max_weight
        Clip on the inverse-probability weight of one control result.
    warm_up
        Controls learnt before :attr:`is_warm` says the probability can be trusted.
    max_z
        Standardised numeric features are clipped to ``[-max_z, max_z]``.
    batch
        Control results buffered before they are learnt, each with its own SGD step.
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
        self._mean = np.zeros(0)
        self._m2 = np.zeros(0)
        self._coef = np.zeros(0)
        self._intercept = 0.0
        self._categories: dict[str, int] = {}
        self._category_coef: list[float] = []
        # The model folded for prediction (see _fold): clip bounds, slopes and offset on
        # the raw features, so that a prediction is one clip and one dot product.
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
        """Whether ``warm_up`` controls were learnt."""
        return self._n >= self.warm_up

    def predict_proba_one(self, x: Sequence[float], categories: Collection[str]) -> float:
        """Probability of an infraction (0.5 before any control).

        ``x`` holds the numeric features in the layout of the first control learnt;
        ``categories`` names the one-hot indicators that are on.
        """
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
        self, x: Sequence[float], categories: Collection[str], fraud: bool, weight: float = 1.0
    ) -> None:
        """Learn one control result with its inverse-probability weight (clipped).

        The SGD step uses the weight divided by the mean weight learnt so far: the
        weights keep their ratios (the estimate stays unbiased) while a rare audit weighted
        20 does not take a step twenty times the learning rate.
        """
        if not self._slope:
            self._set_dimension(len(x))
        elif len(x) != len(self._slope):
            raise ValueError(
                f"supervised features: expected {len(self._slope)} numeric features, got {len(x)}"
            )
        w = min(max(weight, 0.0), self.max_weight)
        if w <= 0:
            return
        self._buffer.append((np.asarray(x, dtype=np.float64), categories, fraud, w))
        self._n += 1
        if len(self._buffer) >= self.batch:
            self._learn_buffer()

    def _set_dimension(self, d: int) -> None:
        self._mean, self._m2, self._coef = np.zeros(d), np.zeros(d), np.zeros(d)
        self._low, self._high = [-math.inf] * d, [math.inf] * d
        self._slope = [0.0] * d

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

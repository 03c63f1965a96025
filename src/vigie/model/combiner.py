"""The final risk: the case memory's rate, moved by the detectors' evidence.

``logit(risk) = logit(mu) + b + sum_j w_j x_j``: a logistic regression with the memory's
logit as offset, over one-hot evidence classes (the valuation z bin, each novelty pair's
surprise bin) and continuous evidence (the clipped surprises, ``-z``, the memory's logit),
learnt online (AdaGrad) from inverse-probability-weighted control results. An L2 penalty
pulls the weights toward a weak expert prior (under-valuation and novelty raise the odds),
so strong evidence ranks high before the first labels. Why: docs/learning-from-controls.md.

Examples
--------
>>> combiner = RiskCombiner(n_pairs=1)
>>> quiet, new = [0.0], [3.0]
>>> round(combiner.risk(0.1, None, quiet), 3), round(combiner.risk(0.1, None, new), 3)
(0.1, 0.332)
>>> for _ in range(300):  # novelty turns out to mean fraud
...     combiner.learn(0.1, None, new, True, 1.0)
...     combiner.learn(0.1, None, quiet, False, 1.0)
>>> combiner.risk(0.1, None, new) > 0.9 > 0.1 > combiner.risk(0.1, None, quiet)
True
"""

from __future__ import annotations

import math
from typing import Final

VALUATION_EDGES: Final[tuple[float, ...]] = (-12.0, -8.0, -6.0, -4.0, -3.0, -2.0, -1.0, 1.0)
"""Upper bounds of the valuation z bins (then z > 1, then no reference)."""
SURPRISE_EDGES: Final[tuple[float, ...]] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
"""Upper bounds of the surprise bins (0: familiar), then above 4."""
_EPS: Final = 1e-6
_BOUND: Final = 30.0


def logit(p: float) -> float:
    """The log-odds of ``p``, bounded.

    >>> round(logit(0.5), 3), round(logit(0.0), 1)
    (0.0, -13.8)
    """
    p = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(p / (1.0 - p))


def sigmoid(t: float) -> float:
    """The probability of the log-odds ``t``."""
    t = min(max(t, -_BOUND), _BOUND)
    return 1.0 / (1.0 + math.exp(-t))


def bin_of(x: float, edges: tuple[float, ...]) -> int:
    """The index of the first edge ``x`` is at most (``len(edges)`` above them all).

    >>> bin_of(-5.0, VALUATION_EDGES), bin_of(2.0, VALUATION_EDGES)
    (3, 8)
    """
    for i in range(len(edges)):
        if x <= edges[i]:
            return i
    return len(edges)


class RiskCombiner:
    """Logistic regression on the detectors' evidence, the memory's logit as offset.

    Parameters
    ----------
    n_pairs
        Number of novelty pairs. Every parameter has a default: a snapshot of the compiled
        class (mypyc) is rebuilt by calling ``__init__`` with no argument.
    learning_rate
        AdaGrad step.
    l2
        Pull of every weight toward its prior.
    max_weight
        Clip on a control result's inverse-probability weight.
    prior_valuation, prior_novelty
        Prior weights of the continuous ``-z / 10`` and of each ``surprise / 4``.
    """

    def __init__(
        self,
        n_pairs: int = 0,
        learning_rate: float = 0.1,
        l2: float = 1e-3,
        max_weight: float = 20.0,
        prior_valuation: float = 2.0,
        prior_novelty: float = 2.0,
        n_operators: int = 0,
        prior_operator: float = 1.0,
    ) -> None:
        self.n_pairs = n_pairs
        self.learning_rate = learning_rate
        self.l2 = l2
        self.max_weight = max_weight
        self.prior_valuation = prior_valuation
        self.prior_novelty = prior_novelty
        self.n_operators = n_operators
        # continuous: each surprise, -z, the memory's logit, each operator's log odds ratio
        self._prior = [prior_novelty] * n_pairs + [prior_valuation, 0.0]
        self._prior += [prior_operator] * n_operators
        self._continuous = list(self._prior)
        self._continuous_g2 = [1e-8] * len(self._prior)
        self._offsets = [0, len(VALUATION_EDGES) + 2]
        for _ in range(n_pairs):
            self._offsets.append(self._offsets[-1] + len(SURPRISE_EDGES) + 1)
        self._classes = [0.0] * self._offsets[-1]
        self._classes_g2 = [1e-8] * self._offsets[-1]
        self._bias = 0.0
        self._bias_g2 = 1e-8
        self._learnt = 0

    @property
    def version(self) -> str:
        """Changes with every control result learnt."""
        return f"combiner-{self._learnt}"

    def features(
        self,
        mu: float,
        z: float | None,
        surprises: list[float],
        operators: list[float] | None,
    ) -> tuple[list[int], list[float]]:
        """The one-hot classes that are on, and the continuous evidence."""
        classes = [len(VALUATION_EDGES) + 1 if z is None else bin_of(z, VALUATION_EDGES)]
        continuous: list[float] = []
        for k in range(self.n_pairs):
            s = surprises[k]
            classes.append(self._offsets[k + 1] + (0 if s <= 0.0 else bin_of(s, SURPRISE_EDGES)))
            continuous.append(min(s, 8.0) / 4.0)
        continuous.append(0.0 if z is None else max(-20.0, min(20.0, -z)) / 10.0)
        continuous.append(logit(mu) / 4.0)
        for k in range(self.n_operators):
            continuous.append(0.0 if operators is None else min(max(operators[k], -4.0), 4.0))
        return classes, continuous

    def _logit(self, mu: float, classes: list[int], continuous: list[float]) -> float:
        t = logit(mu) + self._bias
        for i in classes:
            t += self._classes[i]
        weights = self._continuous
        for j in range(len(continuous)):
            t += weights[j] * continuous[j]
        return t

    def risk(
        self,
        mu: float,
        z: float | None,
        surprises: list[float],
        operators: list[float] | None = None,
    ) -> float:
        """The combined probability of an infraction."""
        classes, continuous = self.features(mu, z, surprises, operators)
        return sigmoid(self._logit(mu, classes, continuous))

    def learn(
        self,
        mu: float,
        z: float | None,
        surprises: list[float],
        fraud: bool,
        weight: float,
        operators: list[float] | None = None,
    ) -> None:
        """One AdaGrad step on a control result of inverse-probability weight ``weight``."""
        classes, continuous = self.features(mu, z, surprises, operators)
        w = min(max(weight, 0.0), self.max_weight)
        g = (sigmoid(self._logit(mu, classes, continuous)) - (1.0 if fraud else 0.0)) * w
        lr, l2 = self.learning_rate, self.l2
        weights, g2, prior = self._continuous, self._continuous_g2, self._prior
        for j in range(len(continuous)):
            gj = g * continuous[j] + l2 * (weights[j] - prior[j])
            g2[j] += gj * gj
            weights[j] -= lr * gj / math.sqrt(g2[j])
        self._bias_g2 += g * g
        self._bias -= lr * g / math.sqrt(self._bias_g2)
        for i in classes:
            gi = g + l2 * self._classes[i]
            self._classes_g2[i] += gi * gi
            self._classes[i] -= lr * gi / math.sqrt(self._classes_g2[i])
        self._learnt += 1

"""Robust online statistics with exponential forgetting, in pure Python and bounded memory.

- :class:`ForwardDecay`: exponential forgetting at no cost per observation (forward decay,
  Cormode et al. 2009): an observation made at ``t`` is stored with the weight
  ``2 ** ((t - landmark) / half_life)``, which grows forward in time, so that stored
  weights never need decaying; a total read at ``t`` is divided by the same factor. The
  landmark moves, and every stored weight is divided once, when weights grow too large.
- :class:`SparseHistogram`: fixed-width bins over a real line (log unit values), stored
  sparsely in sorted order; reads interpolated quantiles and the median and median
  absolute deviation, cached until enough new weight has arrived.
- :class:`EWStats`: exponentially weighted mean and variance, winsorised so that one wild
  value cannot ruin them.
- :class:`OnlineQuantile`: one quantile tracked by stochastic approximation, O(1).

Time is event time in days (``datetime.timestamp() / 86400``).

Examples
--------
>>> h = SparseHistogram(width=0.1)
>>> for x in (1.0, 2.0, 3.0, 4.0, 5.0):
...     h.add(x)
>>> [round(q, 2) for q in h.quantiles((0.25, 0.5, 0.75))]
[2.0, 3.0, 4.0]
>>> [round(x, 2) for x in h.median_mad()]
[3.05, 1.0]
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate
from typing import Final

SECONDS_PER_DAY: Final = 86_400.0
_REBASE_EXPONENT: Final = 40.0  # move the landmark beyond weights of 2 ** 40 (floats stay exact)
_MAX_EXPONENT: Final = 1000.0  # 2 ** 1000 is still a finite float


class ForwardDecay:
    """Exponential forgetting by weights that grow forward in time from a landmark.

    Parameters
    ----------
    half_life
        Half-life of an observation's weight, in the unit of ``t``; None for no forgetting.

    Examples
    --------
    With a half-life of 10 days, 40 observations at 1.0 are outweighed by 10 at 5.0 taken
    30 days later (the old ones weigh 1/8 by then):

    >>> decay, h = ForwardDecay(half_life=10.0), SparseHistogram(width=0.1)
    >>> for _ in range(40):
    ...     h.add(1.0, decay.weight(0.0))
    >>> for _ in range(10):
    ...     h.add(5.0, decay.weight(30.0))
    >>> round(h.quantiles((0.5,))[0], 1), round(h.total / decay.weight(30.0), 1)
    (5.0, 15.0)
    """

    __slots__ = ("half_life", "landmark")

    def __init__(self, half_life: float | None = None) -> None:
        self.half_life = half_life
        self.landmark: float | None = None

    def __getstate__(self) -> tuple[float | None, float | None]:
        return (self.half_life, self.landmark)

    def __setstate__(self, state: tuple[float | None, float | None]) -> None:
        self.half_life, self.landmark = state

    def weight(self, t: float) -> float:
        """The stored weight of an observation made at ``t`` (and the divisor of totals
        read at ``t``); the first call sets the landmark."""
        if self.half_life is None:
            return 1.0
        if self.landmark is None:
            self.landmark = t
        exponent = (t - self.landmark) / self.half_life
        return math.exp2(min(max(exponent, -_MAX_EXPONENT), _MAX_EXPONENT))

    def rebase(self, t: float) -> float:
        """Move the landmark to ``t`` when weights there exceed ``2 ** 40``: the factor by
        which every stored weight must then be divided (1.0 when the landmark stays).

        >>> decay = ForwardDecay(half_life=1.0)
        >>> decay.weight(0.0), decay.rebase(10.0), decay.rebase(50.0), decay.weight(50.0)
        (1.0, 1.0, 1125899906842624.0, 1.0)
        """
        if self.half_life is None or self.landmark is None:
            return 1.0
        exponent = (t - self.landmark) / self.half_life
        if exponent <= _REBASE_EXPONENT:
            return 1.0
        self.landmark = t
        return math.exp2(min(exponent, _MAX_EXPONENT))


class SparseHistogram:
    """A sparse histogram of weighted observations over fixed-width bins.

    The occupied bins are kept sorted (a new bin is rare once a cell is warm), so reading
    quantiles needs no sort. The median and MAD are cached: :meth:`median_mad` recomputes
    them only once the weight added since the last computation exceeds ``staleness``
    times the total.

    Parameters
    ----------
    width
        Bin width (0.1 on a natural-log scale is a 10 % step).

    Examples
    --------
    >>> h = SparseHistogram(width=0.1)
    >>> for x in (2.0, 2.05, 2.3, 9.0):
    ...     h.add(x, weight=2.0)
    >>> len(h), h.total, [round(v, 3) for v in h.median_mad()]
    (3, 8.0, [2.1, 0.05])
    """

    __slots__ = ("_fresh_until", "_keys", "_median_mad", "_weights", "total", "width")

    def __init__(self, width: float = 0.1) -> None:
        self.width = width
        self.total = 0.0
        # compact arrays: fewer objects than a dict or lists of floats
        self._keys = array("i")
        self._weights = array("d")
        self._median_mad = (math.nan, math.nan)
        self._fresh_until = 0.0  # the cached median and MAD hold while total <= this

    def __getstate__(self) -> tuple[object, ...]:
        return (self.width, self.total, self._keys, self._weights)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        (self.width, self.total, self._keys, self._weights) = state  # type: ignore[assignment]
        self._median_mad = (math.nan, math.nan)
        self._fresh_until = 0.0

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, x: float, weight: float = 1.0) -> None:
        """Count ``x`` with the given weight."""
        self.add_to_bin(self.bin_of(x), weight)

    def bin_of(self, x: float) -> int:
        """The bin of ``x`` (histograms of the same width share it: compute it once)."""
        return math.floor(x / self.width)

    def add_to_bin(self, key: int, weight: float) -> None:
        """Count an observation of bin ``key`` (see :meth:`bin_of`)."""
        keys = self._keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            self._weights[i] += weight
        else:
            keys.insert(i, key)
            self._weights.insert(i, weight)
        self.total += weight

    def rescale(self, factor: float) -> None:
        """Divide every weight by ``factor`` (see :meth:`ForwardDecay.rebase`)."""
        self._weights = array("d", [w / factor for w in self._weights])
        self.total /= factor
        self._fresh_until /= factor

    def quantiles(self, ps: Sequence[float]) -> list[float]:
        """Interpolated quantiles for increasing probabilities ``ps`` (NaN when empty)."""
        if self.total <= 0:
            return [math.nan for _ in ps]
        keys, weights, width = self._keys, self._weights, self.width
        out: list[float] = []
        targets = iter(p * self.total for p in ps)
        target = next(targets)
        cumulative = 0.0
        for key, w in zip(keys, weights, strict=True):
            while cumulative + w >= target:
                fraction = (target - cumulative) / w if w > 0 else 0.5
                out.append((key + fraction) * width)
                nxt = next(targets, None)
                if nxt is None:
                    return out
                target = nxt
            cumulative += w
        last = (keys[-1] + 1) * width
        out.extend(last for _ in range(len(ps) - len(out)))
        return out

    def median_mad(self, staleness: float = 0.0) -> tuple[float, float]:
        """The median and the median absolute deviation (NaN, NaN when empty).

        The MAD walks outwards from the median bin, nearest bin first, each bin's weight
        at its centre, and interpolates where half the weight is reached. The pair is
        recomputed only when the total grew by more than ``staleness`` times itself since
        it was last computed (0: whenever anything was added).
        """
        if self.total > self._fresh_until or self.total <= 0:
            self._median_mad = self._compute_median_mad()
            self._fresh_until = self.total * (1.0 + staleness)
        return self._median_mad

    def _compute_median_mad(self) -> tuple[float, float]:
        if self.total <= 0:
            return (math.nan, math.nan)
        keys, weights, half = self._keys, self._weights, self.total / 2.0
        # bin units from here on; the first bin whose cumulative weight reaches half
        cumulative = list(accumulate(weights))
        right = min(bisect_left(cumulative, half), len(keys) - 1)
        below = cumulative[right - 1] if right else 0.0
        centre = keys[right] + (half - below) / weights[right] - 0.5  # median - half a bin
        left = right - 1
        reached, previous = 0.0, 0.0
        while True:
            d_left = centre - keys[left] if left >= 0 else math.inf
            d_right = abs(keys[right] - centre) if right < len(keys) else math.inf
            if d_left <= d_right:
                distance, weight = d_left, weights[left]
                left -= 1
            else:
                distance, weight = d_right, weights[right]
                right += 1
            if reached + weight >= half:
                mad = previous + (distance - previous) * (half - reached) / weight
                return ((centre + 0.5) * self.width, mad * self.width)
            reached += weight
            previous = distance


class EWStats:
    """Exponentially weighted mean and variance, winsorised at ``clip`` deviations.

    The first ``1 / alpha`` observations are averaged equally, later ones with weight
    ``alpha``; once warm, an observation further than ``clip`` standard deviations is
    clipped before it is learnt.

    Examples
    --------
    >>> s = EWStats(alpha=0.01)
    >>> for x in [1.0, 2.0, 3.0] * 100:
    ...     s.update(x)
    >>> s.update(1000.0)
    >>> round(s.mean, 2), round(s.std, 2), round(s.z(3.0), 2)
    (2.05, 0.87, 1.1)
    """

    __slots__ = ("alpha", "clip", "mean", "n", "var")

    def __init__(self, alpha: float = 0.01, clip: float = 4.0) -> None:
        self.alpha = alpha
        self.clip = clip
        self.n = 0
        self.mean = 0.0
        self.var = 0.0

    def __getstate__(self) -> tuple[float | int, ...]:
        return (self.alpha, self.clip, self.n, self.mean, self.var)

    def __setstate__(self, state: tuple[float, float, int, float, float]) -> None:
        self.alpha, self.clip, self.n, self.mean, self.var = state

    @property
    def std(self) -> float:
        return math.sqrt(self.var)

    def z(self, x: float, floor: float = 1e-3) -> float:
        """Standardised deviation of ``x``; 0 before two observations."""
        if self.n < 2:
            return 0.0
        return (x - self.mean) / max(self.std, floor)

    def update(self, x: float) -> None:
        """Learn one value."""
        self.n += 1
        if self.n >= 10:
            bound = self.clip * math.sqrt(self.var)
            x = min(max(x, self.mean - bound), self.mean + bound)
        a = max(1.0 / self.n, self.alpha)
        delta = x - self.mean
        self.mean += a * delta
        self.var = (1.0 - a) * (self.var + a * delta * delta)


class OnlineQuantile:
    """The ``p``-quantile of a stream by stochastic approximation, in O(1) per value.

    Each value moves the estimate up by ``step * p`` or down by ``step * (1 - p)``; at
    equilibrium a share ``p`` of the values lies below it.

    Examples
    --------
    >>> q = OnlineQuantile(p=0.9, step=0.01)
    >>> for i in range(20_000):
    ...     q.update((i * 7919 % 1000) / 1000)
    >>> round(q.value, 2)
    0.9
    """

    __slots__ = ("n", "p", "step", "value")

    def __init__(self, p: float = 0.5, step: float = 0.01) -> None:
        self.p = p
        self.step = step
        self.value = 0.0
        self.n = 0

    def __getstate__(self) -> tuple[float | int, ...]:
        return (self.p, self.step, self.value, self.n)

    def __setstate__(self, state: tuple[float, float, float, int]) -> None:
        self.p, self.step, self.value, self.n = state

    def update(self, x: float) -> None:
        """Learn one value."""
        if self.n == 0:
            self.value = x
        elif x > self.value:
            self.value += self.step * self.p
        else:
            self.value -= self.step * (1.0 - self.p)
        self.n += 1

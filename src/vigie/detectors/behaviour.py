"""Behaviour memories: what is new for an operator or a product, and bursts of activity.

Novelty is read as surprise, not as a flag. A novelty memory counts how often something
new appeared (``novel``) out of ``n`` observations; the surprise of one more novelty is
``maturity * (1 - (novel + 1) / (n + 2))``, where ``maturity = 1 - exp(-n / tau)``. So an
importer's first declaration is not surprising (it has no history), nor is the 40th new
seller of an importer that changes seller every time, while the first new product
chapter after 200 declarations in the same two chapters is.

A burst is a count in the last day or so far above the importer's own long-run rate: the
short count ``k`` (half-life ``short_days``) is compared with the count ``mu`` expected
from the long-run rate (half-life ``long_days``, corrected for the importer's age), by
the Poisson (Chernoff) tail ``k ln(k / mu) - k + mu`` in nats.

Examples
--------
>>> m = NoveltySet(cap=8)
>>> for chapter in ["62"] * 50 + ["61"] * 50:
...     m.add(chapter)
>>> round(m.surprise("85", tau=10.0), 2), m.surprise("62", tau=10.0)
(0.97, 0.0)
"""

from __future__ import annotations

import math

from vigie.detectors.quantiles import DecayedCounter


class NoveltySet:
    """A small set of seen values (at most ``cap``) and how often a new one appeared."""

    __slots__ = ("cap", "n", "novel", "seen")

    def __init__(self, cap: int = 32) -> None:
        self.cap = cap
        self.n = 0
        self.novel = 0
        self.seen: set[object] = set()

    def __getstate__(self) -> tuple[object, ...]:
        return (self.cap, self.n, self.novel, self.seen)

    def __setstate__(self, state: tuple[int, int, int, set[object]]) -> None:
        self.cap, self.n, self.novel, self.seen = state

    def surprise(self, value: object, tau: float) -> float:
        """How surprising it is to see ``value`` now, in [0, 1) (0 when already seen).

        Once the set is full, an unseen value is treated as new; its surprise is already
        low, since ``novel`` is at least ``cap``.
        """
        if value in self.seen or self.n == 0:
            return 0.0
        maturity = 1.0 - math.exp(-self.n / tau)
        return maturity * (1.0 - (self.novel + 1) / (self.n + 2))

    def add(self, value: object) -> None:
        """Learn one observation."""
        self.n += 1
        if value not in self.seen:
            self.novel += 1
            if len(self.seen) < self.cap:
                self.seen.add(value)


class ImporterProfile:
    """What an importer has done: chapters, routes, sellers, and its activity rates."""

    __slots__ = ("chapters", "first_seen", "long", "long_value", "routes", "sellers", "short")

    def __init__(self, cap: int, short_days: float, long_days: float, t: float) -> None:
        self.chapters = NoveltySet(cap)
        self.routes = NoveltySet(cap)
        self.sellers = NoveltySet(cap)
        self.short = DecayedCounter(short_days)
        self.long = DecayedCounter(long_days)
        self.long_value = DecayedCounter(long_days)
        self.first_seen = t

    def __getstate__(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        for name, value in zip(self.__slots__, state, strict=True):
            setattr(self, name, value)

    @property
    def n(self) -> int:
        """Declarations learnt."""
        return self.chapters.n

    def burst_nats(self, t: float) -> float:
        """Poisson surprise (nats) of the recent count, this declaration included."""
        if self.n < 2:
            return 0.0
        k = self.short.value(t) + 1.0
        age = max(t - self.first_seen, self.short.half_life)
        long_days = self.long.half_life
        coverage = 1.0 - math.exp2(-age / long_days)
        rate = self.long.value(t) * math.log(2.0) / (long_days * coverage)
        mu = max(rate * self.short.half_life / math.log(2.0), 1e-3)
        return poisson_surprise(k, mu)

    def value_ratio(self, value: float, t: float) -> float:
        """This declaration's value over the importer's mean declared value (0 if unknown)."""
        count = self.long.value(t)
        if self.n < 2 or count <= 0:
            return 0.0
        mean = self.long_value.value(t) / count
        return value / mean if mean > 0 else 0.0

    def learn(self, chapter: str, route: object, seller: object, value: float, t: float) -> None:
        """Learn one declaration."""
        self.chapters.add(chapter)
        self.routes.add(route)
        if seller is not None:
            self.sellers.add(seller)
        self.short.add(1.0, t)
        self.long.add(1.0, t)
        self.long_value.add(value, t)


def poisson_surprise(k: float, mu: float) -> float:
    """Chernoff bound on ``-ln P(X >= k)`` for X ~ Poisson(mu); 0 when ``k <= mu``.

    >>> round(poisson_surprise(1.0, 0.05), 2), round(poisson_surprise(10.0, 0.5), 1)
    (2.05, 20.5)
    """
    if k <= mu:
        return 0.0
    return k * math.log(k / mu) - k + mu


def squash(x: float, start: float, scale: float) -> float:
    """Map ``x`` to [0, 1): 0 up to ``start``, then ``1 - exp(-(x - start) / scale)``.

    >>> squash(1.0, 2.0, 5.0), round(squash(12.0, 2.0, 5.0), 3)
    (0.0, 0.865)
    """
    if x <= start:
        return 0.0
    return 1.0 - math.exp(-(x - start) / scale)

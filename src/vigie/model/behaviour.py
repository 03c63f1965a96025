"""Behaviour memories: what is new for an operator or a product, and bursts of activity.

Novelty is read as surprise given the history, not as a flag: something new is
surprising only for an operator or product that rarely shows anything new. A burst is a
recent count far above the importer's own long-run rate (a Poisson tail, in nats). The
formulas and why: docs/detectors.md.

Examples
--------
>>> m = NoveltySet(cap=8)
>>> for chapter in ["62"] * 50 + ["61"] * 50:
...     m.add(chapter)
>>> round(m.surprise("85", tau=10.0), 2), m.surprise("62", tau=10.0)
(0.97, 0.0)
>>> h = Horizons()
>>> p = ImporterProfile(t=0.0)
>>> for day in range(60):
...     p.learn(aspect_keys("62", "CN>CN@FR1", "S1", "B1"), 1000.0, float(day), h)
>>> [round(s, 2) for s in p.surprises(aspect_keys("85", "CN>CN@FR1", "S2", "B9"), 60.0, h)]
[0.97, 0.0, 0.97, 0.97]
>>> before = p.burst_nats(60.0, h)
>>> for minute in range(10):
...     p.learn(aspect_keys("85", "CN>CN@FR1", "S1", "B1"), 100.0, 60.0 + minute / 1440, h)
>>> round(before, 1), round(p.burst_nats(60.01, h), 1)
(0.5, 24.4)

Ten declarations of the new chapter later, it is still surprising (it faded with time,
not with repetition):

>>> round(p.surprises(aspect_keys("85", None, None, None), 61.0, h)[0], 2)
0.88
"""

from __future__ import annotations

import math
import sys
from typing import Final, NamedTuple

from vigie.model.quantiles import EWStats

FADE: Final = 2.0
"""Each earlier sighting divides the surprise by e ** (1 / FADE): a value seen once or
twice is still somewhat new (the follow-ups of an abrupt switch), one seen 8 times is not."""

_FORGOTTEN: Final = int(4 * FADE)
"""A value seen this many times is no longer new at all."""
_FADED: Final = tuple(math.exp(-count / FADE) for count in range(_FORGOTTEN))
"""``exp(-count / FADE)`` by count, read instead of computed on every novelty."""

Keys = tuple[str | None, ...]
"""One key per aspect of ``ASPECTS`` (None for a missing value), from :func:`aspect_keys`."""


def novelty_surprise(count: int, novel: int, n: int, tau: float) -> float:
    """Surprise of a value seen ``count`` times before, in a history of ``n`` with ``novel``
    new values.

    >>> round(novelty_surprise(0, 2, 100, 10.0), 3), round(novelty_surprise(1, 3, 101, 10.0), 3)
    (0.971, 0.583)
    >>> novelty_surprise(0, 0, 0, 10.0), novelty_surprise(50, 2, 100, 10.0)
    (0.0, 0.0)
    """
    if n == 0 or count >= _FORGOTTEN:
        return 0.0
    return (1.0 - math.exp(-n / tau)) * (1.0 - (novel + 1) / (n + 2)) * _FADED[count]


class NoveltySet:
    """Counts of the values seen (at most ``cap`` distinct, each count saturating at 8, when
    the value stops being new) and how often a new one appeared.

    Once full, an unseen value is treated as new; its surprise is already low, since
    ``novel`` is at least ``cap``.
    """

    __slots__ = ("cap", "n", "novel", "seen")

    def __init__(self, cap: int = 32) -> None:
        self.cap = cap
        self.n = 0
        self.novel = 0
        self.seen: dict[str, int] = {}

    def __getstate__(self) -> tuple[object, ...]:
        return (self.cap, self.n, self.novel, self.seen)

    def __setstate__(self, state: tuple[int, int, int, dict[str, int]]) -> None:
        self.cap, self.n, self.novel, self.seen = state

    def surprise(self, value: str, tau: float) -> float:
        """How surprising it is to see ``value`` now, in [0, 1)."""
        count = self.seen.get(value, 0)
        if count >= _FORGOTTEN:  # the usual case, without a call
            return 0.0
        return novelty_surprise(count, self.novel, self.n, tau)

    def add(self, value: str) -> None:
        """Learn one observation."""
        self.n += 1
        seen = self.seen
        count = seen.get(value)
        if count is not None:
            if count < _FORGOTTEN:  # counts saturate: beyond, a value is simply known
                seen[value] = count + 1
            return
        self.novel += 1
        if len(seen) < self.cap:
            seen[sys.intern(value)] = 1  # one copy of each code, shared by every product


class ProductMemory:
    """What is known of one product (HS6): the origins seen, the log unit values (EUR/kg)."""

    __slots__ = ("origins", "unit_values")

    def __init__(self, cap: int = 32) -> None:
        self.origins = NoveltySet(cap)
        self.unit_values = EWStats()

    def __getstate__(self) -> tuple[object, ...]:
        return (self.origins, self.unit_values)

    def __setstate__(self, state: tuple[NoveltySet, EWStats]) -> None:
        self.origins, self.unit_values = state


class Horizons(NamedTuple):
    """The time and history scales of an importer profile."""

    cap: int = 32
    """At most this many distinct values remembered per aspect."""
    short_days: float = 0.25
    """Half-life of the recent activity counter."""
    long_days: float = 60.0
    """Half-life of the long-run activity counters."""
    tau: float = 3.0
    """History length over which novelty surprise matures."""
    fresh_days: float = 7.0
    """Half-life of the surprise of the latest new value, while it repeats."""


ASPECTS: Final = ("chapter", "route", "seller", "declarant")
"""What an importer profile remembers, in this order."""


def aspect_keys(
    chapter: str | None, route: str | None, seller: str | None, declarant: str | None
) -> Keys:
    """The profile keys of one declaration: each value prefixed by its aspect's index.

    >>> aspect_keys("62", "CN>CN@FR1", None, "B1")
    ('062', '1CN>CN@FR1', None, '3B1')
    """
    return (
        None if chapter is None else "0" + chapter,
        None if route is None else "1" + route,
        None if seller is None else "2" + seller,
        None if declarant is None else "3" + declarant,
    )


# Named once for __slots__ and the pickled state (a tuple, in this order): mypyc-compiled
# classes have no ``__slots__`` attribute to read back.
_PROFILE_FIELDS: Final = (
    "count",
    "first_seen",
    "fresh",
    "fresh_keys",
    "recent",
    "seen",
    "stats",
    "t",
    "value",
)


class ImporterProfile:
    """What an importer has done (one value per aspect of ``ASPECTS``) and its activity.

    Compact, one per importer: ``seen`` counts the values of every aspect (the keys of
    :func:`aspect_keys`, interned, at most ``cap`` per aspect, counts saturating);
    ``stats`` holds per aspect the observations then the new values; ``fresh_keys`` and
    ``fresh`` the latest new value per aspect, when it appeared and how surprising it was;
    ``recent``, ``count`` and ``value`` are decayed sums as of ``t``.
    """

    __slots__ = _PROFILE_FIELDS

    def __init__(self, t: float = 0.0) -> None:  # 0: unpickled, its state follows
        self.seen: dict[str, int] = {}
        self.stats = [0] * (2 * len(ASPECTS))
        self.fresh_keys: list[str | None] = [None] * len(ASPECTS)
        self.fresh = [0.0] * (2 * len(ASPECTS))
        self.first_seen = t
        self.t = t
        self.recent = 0.0
        self.count = 0.0
        self.value = 0.0

    def __getstate__(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in _PROFILE_FIELDS)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        for name, value in zip(_PROFILE_FIELDS, state, strict=True):
            setattr(self, name, value)

    @property
    def n(self) -> int:
        """Declarations learnt."""
        return self.stats[0]

    def distinct(self, aspect: int) -> int:
        """Distinct values remembered for one aspect (index in ``ASPECTS``)."""
        prefix = str(aspect)
        return sum(1 for key in self.seen if key.startswith(prefix))

    def surprises(self, keys: Keys, t: float, h: Horizons) -> list[float]:
        """Novelty surprise of each aspect's key (0 for a missing value)."""
        # Indexed loop into a preallocated list, novelty_surprise inlined: on the hot path.
        out = [0.0] * len(ASPECTS)
        seen, stats, fresh, fresh_keys = self.seen, self.stats, self.fresh, self.fresh_keys
        for i in range(len(ASPECTS)):
            key = keys[i]
            if key is None:
                continue
            count = seen.get(key, 0)
            n = stats[i]
            if count < _FORGOTTEN and n:
                novel = stats[len(ASPECTS) + i]
                out[i] = (
                    (1.0 - math.exp(-n / h.tau)) * (1.0 - (novel + 1) / (n + 2)) * _FADED[count]
                )
            stored = fresh[2 * i + 1]
            if fresh_keys[i] == key and stored > out[i]:  # it only fades from ``stored``
                age = t - fresh[2 * i]
                if age > 0.0:
                    stored *= math.exp2(-age / h.fresh_days)
                if stored > out[i]:
                    out[i] = stored
        return out

    def burst_nats(self, t: float, h: Horizons) -> float:
        """Poisson surprise (nats) of the recent count, this declaration included."""
        if self.stats[0] < 2:
            return 0.0
        short, long = h.short_days, h.long_days
        recent, count, since = self.recent, self.count, self.t
        if t > since:  # _decayed, inlined
            recent *= math.exp2((since - t) / short)
            count *= math.exp2((since - t) / long)
        k = recent + 1.0
        age = t - self.first_seen
        coverage = 1.0 - math.exp2(-(age if age > short else short) / long)
        mu = count / (long * coverage) * short
        if mu < 1e-3:
            mu = 1e-3
        return poisson_surprise(k, mu)

    def value_ratio(self, value: float) -> float:
        """This value over the importer's (decayed) mean declared value; 0 if unknown."""
        mean = self.value / self.count if self.count > 0 else 0.0
        if self.stats[0] < 2 or mean <= 0:
            return 0.0
        return value / mean

    def learn(self, keys: Keys, value: float, t: float, h: Horizons) -> None:
        """Learn one declaration."""
        seen, stats, fresh = self.seen, self.stats, self.fresh
        for i in range(len(ASPECTS)):
            key = keys[i]
            if key is None:
                continue
            count = seen.get(key)
            if count is not None:
                if count < _FORGOTTEN:  # counts saturate: beyond, a value is simply known
                    seen[key] = count + 1
            else:
                novel = stats[len(ASPECTS) + i]
                key = sys.intern(key)  # one copy of each key, shared by every profile
                self.fresh_keys[i] = key
                fresh[2 * i] = t
                fresh[2 * i + 1] = novelty_surprise(0, novel, stats[i], h.tau)
                stats[len(ASPECTS) + i] = novel + 1
                if novel < h.cap:
                    seen[key] = 1
            stats[i] += 1
        if t > self.t:
            self.recent *= math.exp2((self.t - t) / h.short_days)
            long_decay = math.exp2((self.t - t) / h.long_days)
            self.count *= long_decay
            self.value *= long_decay
            self.t = t
        self.recent += 1.0
        self.count += 1.0
        self.value += value


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

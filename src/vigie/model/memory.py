"""The case memory: infraction rates learnt from control results, down a chain of keys.

A declaration is read down the chain HS2 > HS4 > HS6 > HS6 x origin > HS6 x origin x tax
type > consignment signature (the same, plus declared value and net mass to 1 %). Each
cell counts its control results and infractions; each level's rate is smoothed toward its
parent's with a prior strength estimated from the labels themselves (empirical Bayes). The
memory also says how much inspecting a declaration would teach (the knowledge gradient
of its signature). Why: docs/learning-from-controls.md.

Every entry of the memory's tables is a pair of numbers, held as one ``complex``: a cell's
controls and infractions, a signature's decayed count and day. One immutable object of 32
bytes where a list of two floats takes 144: the arrival counts of a million signatures
took 144 MiB, now 60.

Examples
--------
>>> memory = CaseMemory()
>>> keys = chain(("620342", "CN", "A00", 120, 340))
>>> keys[3], keys[5]
('620342|CN', '620342|CN|A00|120|340')
>>> for _ in range(3):
...     memory.learn_label(keys, True)
>>> read = memory.read(keys, day=10.0)
>>> round(read.mu, 3), read.controls, read.infractions
(0.999, 3.0, 3.0)
"""

from __future__ import annotations

import math
from typing import Final

from vigie.model.tables import ChangeSet, Tracked, evict_oldest, refreshed

LEVELS: Final[tuple[str, ...]] = (
    "hs2",
    "hs4",
    "hs6",
    "hs6+origin",
    "hs6+origin+tax",
    "consignment",
)
"""The levels of the chain, coarsest first."""
SIGNATURE_WIDTH: Final = 0.01
"""Width, on the log scale, of the value and mass bins of a consignment signature (1 %)."""
_PAIRS_PER_UPDATE: Final = 32
_ICC_PRIOR_WEIGHT: Final = 1.25
_ICC_PRIOR_TOP: Final = 1.0 / 3.0
_M_MIN: Final = 0.05
_M_MAX: Final = 50.0
_TAU_RATE: Final = 0.02

Compact = tuple[str, str, str, int, int]
"""What a chain is built from: HS6, origin, tax type, value bin and mass bin."""


def compact(hs6: str, origin: str, tax_type: str, value: float, mass: float) -> Compact:
    """The fields of a declaration's chain (value and mass to :data:`SIGNATURE_WIDTH`).

    >>> compact("620342", "CN", "A", 1000.0, 50.0)
    ('620342', 'CN', 'A', 691, 393)
    """
    v = round(math.log1p(max(value, 0.0)) / SIGNATURE_WIDTH)
    m = round(math.log1p(max(mass, 0.0)) / SIGNATURE_WIDTH)
    return (hs6, origin, tax_type, v, m)


def chain(fields: Compact) -> tuple[str, ...]:
    """The keys of the chain, coarsest first (see :data:`LEVELS`)."""
    hs6, origin, tax_type, v, m = fields
    ho = hs6 + "|" + origin
    hot = ho + "|" + tax_type
    return (hs6[:2], hs6[:4], hs6, ho, hot, f"{hot}|{v}|{m}")


class Read:
    """What the memory says of one declaration (a plain class: compiled, it is built
    without a call into Python, where a NamedTuple's constructor is a Python function)."""

    def __init__(
        self, mu: float, priority: float, level: int, controls: float, infractions: float
    ) -> None:
        self.mu = mu
        """Posterior infraction probability (the finest level's smoothed rate)."""
        self.priority = priority
        """``mu`` plus the exploration value of inspecting it (knowledge gradient)."""
        self.level = level
        """The finest level with control results (-1: none)."""
        self.controls = controls
        """Control results of that level's cell."""
        self.infractions = infractions
        """Infractions among them."""


class CaseMemory:
    """Smoothed infraction rates down the chain, and the value of inspecting.

    Parameters
    ----------
    exploration
        Weight ``c`` of the knowledge gradient in the exploration index (0: greedy).
    half_life_days
        Half-life of a signature's declaration count (its arrival rate), in days.
    label_delay_days
        Expected days before a control result comes back.
    prior_rate, prior_controls
        The global rate starts from ``prior_controls`` pseudo-controls at ``prior_rate``.
    max_keys
        At most this many cells per level, signatures counted and labels in flight
        (the oldest forgotten first).
    """

    def __init__(
        self,
        exploration: float = 1.0,
        half_life_days: float = 90.0,
        label_delay_days: float = 7.0,
        prior_rate: float = 0.1,
        prior_controls: float = 2.0,
        max_keys: int = 1_000_000,
    ) -> None:
        self.exploration = exploration
        self.half_life_days = half_life_days
        self.label_delay_days = label_delay_days
        self.prior_rate = prior_rate
        self.prior_controls = prior_controls
        self.max_keys = max_keys
        n = len(LEVELS)
        self._cells: list[dict[str, complex]] = [{} for _ in range(n)]  # controls + infractions j
        self._controls = 0.0
        self._infractions = 0.0
        self._cov = [0.0] * n
        self._var = [0.0] * n
        self._strength = [1.0 / _ICC_PRIOR_TOP - 1.0] * n
        self._pairs = 0
        self._arrivals: dict[str, complex] = {}  # signature -> decayed count + day j
        self._in_flight: dict[str, complex] = {}  # signature -> labels awaited + day j
        self._cells_changed: list[ChangeSet] = [{} for _ in range(n)]
        self._arrivals_changed: ChangeSet = {}
        self._in_flight_changed: ChangeSet = {}
        self._tau = 0.5
        self._labels = 0

    @property
    def version(self) -> str:
        """Changes with every control result learnt."""
        return f"memory-{self._labels}"

    def tables(self) -> list[Tracked]:
        """The large tables and their change sets (:mod:`vigie.model.tables`)."""
        cells = list(zip(self._cells, self._cells_changed, strict=True))
        return [*cells, (self._arrivals, self._arrivals_changed),
                (self._in_flight, self._in_flight_changed)]  # fmt: skip

    @property
    def global_rate(self) -> float:
        """The infraction rate of every control result, from the cold-start prior."""
        return (self._infractions + self.prior_controls * self.prior_rate) / (
            self._controls + self.prior_controls
        )

    @property
    def strengths(self) -> list[float]:
        """The prior strength of each level (pseudo-controls at the parent's rate)."""
        return list(self._strength)

    def read(self, keys: tuple[str, ...], day: float, flight_days: float = 60.0) -> Read:
        """The posterior rate and exploration index of a declaration's chain."""
        mu = self.global_rate
        parent = mu
        n = s = 0.0
        m = 1.0
        level = -1
        found_n = found_s = 0.0
        for lvl in range(len(keys)):
            m = self._strength[lvl]
            cell = self._cells[lvl].get(keys[lvl])
            parent = mu
            if cell is None:
                n = s = 0.0
            else:
                n, s = cell.real, cell.imag
                level, found_n, found_s = lvl, n, s
            mu = (s + m * mu) / (n + m)
        index = mu
        if self.exploration > 0:
            gain = self._gain(keys[-1], day, flight_days, mu, parent, n, s, m)
            index = mu + self.exploration * gain
        return Read(mu, index, level, found_n, found_s)

    def _gain(
        self,
        signature: str,
        day: float,
        flight_days: float,
        mu: float,
        parent: float,
        n: float,
        s: float,
        m: float,
    ) -> float:
        """Expected discounted future catches gained by one more label of the signature."""
        arrivals = self._arrivals.get(signature)
        if arrivals is None:
            return 0.0
        flight = self._in_flight.get(signature)
        if flight is not None and day - flight.imag <= flight_days:
            return 0.0  # a label of it is coming: inspecting again teaches nothing new
        h = self.half_life_days
        count = arrivals.real * 0.5 ** (max(day - arrivals.imag, 0.0) / h)
        future = count * 0.5 ** (self.label_delay_days / h)
        a = s + m * parent
        b = (n - s) + m * (1.0 - parent)
        tau = self._tau
        up = (a + 1.0) / (a + b + 1.0)
        down = a / (a + b + 1.0)
        gain = mu * max(up - tau, 0.0) + (1.0 - mu) * max(down - tau, 0.0) - max(mu - tau, 0.0)
        return future * gain if gain > 0.0 else 0.0

    def observe(self, signature: str, day: float) -> None:
        """Count a declaration of ``signature`` (its arrival rate; no label needed)."""
        table = self._arrivals
        entry = refreshed(table, self._arrivals_changed, signature, self.max_keys)
        if entry is None:
            entry = complex(1.0, day)
        else:
            count, since = entry.real, entry.imag
            decay = 0.5 ** (max(day - since, 0.0) / self.half_life_days)
            entry = complex(count * decay + 1.0, max(since, day))
        table[signature] = entry

    def selected(self, signature: str, day: float, threshold: float) -> None:
        """A declaration of ``signature`` was selected: its label is in flight."""
        self._in_flight_changed[signature] = None
        flight = self._in_flight.get(signature)
        if flight is None and len(self._in_flight) >= self.max_keys:
            evict_oldest(self._in_flight, self._in_flight_changed)
        awaited = 1.0 if flight is None else flight.real + 1.0
        self._in_flight[signature] = complex(awaited, day)
        self.follow(threshold)

    def follow(self, threshold: float) -> None:
        """Track the quota's threshold: the value of the marginal inspection (``tau``)."""
        if math.isfinite(threshold):
            self._tau += _TAU_RATE * (min(max(threshold, 0.0), 1.0) - self._tau)

    def learn_label(self, keys: tuple[str, ...], fraud: bool) -> None:
        """Count one control result (unweighted) down the chain."""
        flight = self._in_flight.get(keys[-1])
        if flight is not None:
            self._in_flight_changed[keys[-1]] = None
            if flight.real <= 1.0:
                del self._in_flight[keys[-1]]
            else:
                self._in_flight[keys[-1]] = complex(flight.real - 1.0, flight.imag)
        y = 1.0 if fraud else 0.0
        root = self.global_rate
        for lvl in range(len(keys)):
            cells, changed = self._cells[lvl], self._cells_changed[lvl]
            changed[keys[lvl]] = None
            cell = cells.get(keys[lvl])
            if cell is None:
                if len(cells) >= self.max_keys:
                    evict_oldest(cells, changed)
                n = s = 0.0
            else:
                n, s = cell.real, cell.imag
                # the covariance of the new label with the cell's earlier ones (about the
                # global rate): the intra-class correlation of the level
                self._cov[lvl] += (y - root) * (s - n * root)
                self._var[lvl] += n * root * (1.0 - root)
                self._pairs += 1
            cells[keys[lvl]] = complex(n + 1.0, s + y)
        self._controls += 1.0
        self._infractions += y
        self._labels += 1
        if self._pairs >= _PAIRS_PER_UPDATE:
            self._pairs = 0
            self._update_strengths()

    def _update_strengths(self) -> None:
        """``m_l + 1 = (1 - ICC_{l-1}) / (ICC_l - ICC_{l-1})``, the ICC made non-decreasing."""
        previous = 0.0
        levels = len(LEVELS)
        for lvl in range(levels):
            prior = _ICC_PRIOR_TOP * (lvl + 1) / levels
            icc = (self._cov[lvl] + _ICC_PRIOR_WEIGHT * prior) / (
                self._var[lvl] + _ICC_PRIOR_WEIGHT
            )
            icc = max(min(max(icc, 0.0), 0.999), previous)
            added = icc - previous
            m = (1.0 - previous) / added - 1.0 if added > 1e-6 else _M_MAX
            self._strength[lvl] = min(max(m, _M_MIN), _M_MAX)
            previous = icc

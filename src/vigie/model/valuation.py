"""Value under-declaration (minoration de valeur): the declared unit value against the
values of identical goods in substantially the same quantity.

The log value per kg is compared with the last values of comparable declarations, finest
reference first: HS6 x origin x net-mass band (+-10 %), HS6 x origin, HS6, HS4. The first
with enough values gives a robust z-score: its median, and its MAD shrunk toward the
level's pooled dispersion. No decay, no blending of levels, every value learnt; a value
found in infraction by a control is taken out again (:meth:`ValuationDetector.forget_value`).
Why: docs/detectors.md.

Examples
--------
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
>>> det = ValuationDetector()
>>> for i in range(20):
...     det.learn_one(Declaration.model_validate(dict(EXAMPLE_DECLARATION,
...         declaration_id=f"D{i}", customs_value_eur=24_000.0 + 100.0 * i)))
>>> low = Declaration.model_validate(dict(EXAMPLE_DECLARATION, customs_value_eur=8_000.0))
>>> ev = det.score_one(low)
>>> ev.support_level, ev.support_count, round(ev.ratio, 2), round(ev.robust_z, 1)
('hs6+origin+quantity', 20, 0.32, -7.7)
>>> ev.below_lowest_acceptable, round(ev.score, 3), round(ev.duty_at_risk_eur)
(True, 0.976, 2034)
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, insort
from typing import Final, TypeAlias

from vigie.contracts.schemas import Declaration
from vigie.model.assessment import MAX_EUR, ValuationFinding
from vigie.model.base import Declared, Detector, declared
from vigie.model.tables import ChangeSet, Tracked, refreshed

LEVELS: Final[tuple[str, ...]] = ("hs6+origin+quantity", "hs6+origin", "hs6", "hs4")
"""The references, finest first."""
MIN_SUPPORT: Final[tuple[int, ...]] = (1, 5, 2, 5)
"""Values a reference needs, per level."""
_POOLED_START: Final[tuple[float, ...]] = (0.5, 0.7, 0.9, 1.1)
_MAD_TO_SIGMA: Final = 1.4826
_Z_BOUND: Final = 50.0
_LOG_UNIT_VALUE_LOW: Final = math.log(1e-6)
_LOG_UNIT_VALUE_HIGH: Final = math.log(1e12)
_NEUTRAL: Final = ValuationFinding(score=0.0)

Cell: TypeAlias = "array[float]"
"""A reference's last ``n`` values: in arrival order, then the same sorted (``2 n`` numbers).
One array of 8-byte numbers, where a pair of lists of float objects took 40 bytes a value
and 176 more (at a million declarations, the two finest levels took 245 MiB, now 113)."""


def reference_keys(decl: Declared, quantity_band: float) -> tuple[str, str, str, str]:
    """The keys of a declaration's references, finest first (:data:`LEVELS`).

    >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
    >>> reference_keys(declared(Declaration.model_validate(EXAMPLE_DECLARATION)), 0.2)
    ('620342|CN|38', '620342|CN', '620342', '6203')
    """
    return keys_of(decl.commodity_code[:6], decl.origin, mass_band(decl.net_mass_kg, quantity_band))


def mass_band(net_mass_kg: float, quantity_band: float) -> int:
    """The net-mass band: ``log(mass) / quantity_band``, rounded (0: no mass)."""
    return round(math.log(net_mass_kg) / quantity_band) if net_mass_kg > 0 else 0


def keys_of(hs6: str, origin: str, band: int) -> tuple[str, str, str, str]:
    """The reference keys, finest first, of a product, an origin and a net-mass band.

    >>> keys_of("620342", "CN", 38)
    ('620342|CN|38', '620342|CN', '620342', '6203')
    """
    ho = hs6 + "|" + origin
    return (f"{ho}|{band}", ho, hs6, hs6[:4])


def log_unit_value(customs_value_eur: float, net_mass_kg: float) -> float | None:
    """log(value / mass) bounded to 1e-6 .. 1e12 EUR/kg; None without a value or a mass
    (no evidence then).

    >>> round(log_unit_value(1000.0, 10.0), 3), log_unit_value(1000.0, 0.0)
    (4.605, None)
    """
    if customs_value_eur <= 0 or net_mass_kg <= 0:
        return None
    x = math.log(customs_value_eur) - math.log(net_mass_kg)
    return min(max(x, _LOG_UNIT_VALUE_LOW), _LOG_UNIT_VALUE_HIGH)


def median(values: list[float]) -> float:
    """The median of sorted ``values``.

    >>> median([1.0, 2.0, 4.0, 9.0])
    3.0
    """
    k = len(values)
    return 0.5 * (values[(k - 1) // 2] + values[k // 2])


def cell_median(cell: Cell) -> float:
    """The median of a reference's values (its sorted half).

    >>> cell_median(array("d", [9.0, 1.0, 4.0, 2.0, 1.0, 2.0, 4.0, 9.0]))
    3.0
    """
    n = len(cell) // 2
    return 0.5 * (cell[n + (n - 1) // 2] + cell[n + n // 2])


def cell_mad(cell: Cell, center: float) -> float:
    """The median absolute deviation of a reference's values around ``center``."""
    n = len(cell) // 2
    return median(sorted([abs(cell[i] - center) for i in range(n, 2 * n)]))


def add_value(cell: Cell, x: float, window: int) -> None:
    """Add ``x`` to a reference, forgetting its oldest value beyond ``window`` values.

    >>> cell = array("d")
    >>> for x in (3.0, 1.0, 2.0):
    ...     add_value(cell, x, window=2)
    >>> cell.tolist()  # 1.0 then 2.0 arrived last; sorted: 1.0, 2.0
    [1.0, 2.0, 1.0, 2.0]
    """
    n = len(cell) // 2
    cell.insert(n, x)  # the end of the arrivals; the sorted half now starts at n + 1
    insort(cell, x, n + 1, 2 * n + 1)
    if n + 1 > window:
        oldest = cell.pop(0)  # the sorted half now starts at n, n + 1 values long
        del cell[bisect_left(cell, oldest, n, 2 * n + 1)]


def remove_value(cell: Cell, x: float) -> bool:
    """Take the latest arrival equal to ``x`` out of a reference; False if none is held
    (it left the window, or was never there).

    >>> cell = array("d")
    >>> for x in (3.0, 1.0, 2.0):
    ...     add_value(cell, x, window=3)
    >>> remove_value(cell, 1.0), cell.tolist(), remove_value(cell, 1.0)
    (True, [3.0, 2.0, 2.0, 3.0], False)
    """
    n = len(cell) // 2
    i = n - 1
    while i >= 0 and cell[i] != x:
        i -= 1
    if i < 0:
        return False
    del cell[i]  # the sorted half now starts at n - 1
    del cell[bisect_left(cell, x, n - 1, 2 * n - 1)]
    return True


class ValuationDetector(Detector):
    """Robust z of the log unit value against identical goods, then coarser references.

    Parameters
    ----------
    window
        Last values kept per reference.
    quantity_band
        Width of a net-mass band on the log scale (0.2: +-10 %).
    shrink
        Pseudo-values of the level's pooled dispersion in a reference's scale.
    floor
        Lowest scale, on the log scale (0.05: the honest spread of identical goods).
    pooled_rate
        Step of the pooled dispersion's median tracker.
    max_cells
        At most this many references per level (least recently used forgotten).
    lowest_acceptable
        Ratio to the reference below which a value is below the lowest acceptable.
    score_midpoint, score_slope
        The score is ``sigmoid(slope * (-z - midpoint))``.
    """

    def __init__(
        self,
        window: int = 32,
        quantity_band: float = 0.2,
        shrink: float = 5.0,
        floor: float = 0.05,
        pooled_rate: float = 0.05,
        max_cells: int = 1_000_000,
        lowest_acceptable: float = 0.5,
        score_midpoint: float = 4.0,
        score_slope: float = 1.0,
    ) -> None:
        self.window = window
        self.quantity_band = quantity_band
        self.shrink = shrink
        self.floor = floor
        self.pooled_rate = pooled_rate
        self.max_cells = max_cells
        self.lowest_acceptable = lowest_acceptable
        self.score_midpoint = score_midpoint
        self.score_slope = score_slope
        self._cells: list[dict[str, Cell]] = [{} for _ in LEVELS]
        self._cells_changed: list[ChangeSet] = [{} for _ in LEVELS]
        self._pooled = list(_POOLED_START)
        self._updates = 0

    @property
    def version(self) -> str:
        """Changes whenever a reference learns."""
        return f"valuation-{self._updates}"

    def tables(self) -> list[Tracked]:
        """The cells of each level and their change sets (:mod:`vigie.model.tables`)."""
        return list(zip(self._cells, self._cells_changed, strict=True))

    @property
    def n_cells(self) -> int:
        """References held, every level."""
        return sum(len(cells) for cells in self._cells)

    def score_one(self, decl: Declaration) -> ValuationFinding:
        """The finding of under-declaration; neutral without a reference."""
        return self.score_declared(declared(decl))

    def score_declared(self, decl: Declared) -> ValuationFinding:
        """:meth:`score_one` of the fields the engine read once (:func:`declared`)."""
        x = log_unit_value(decl.customs_value_eur, decl.net_mass_kg)
        if x is None:
            return _NEUTRAL
        keys = reference_keys(decl, self.quantity_band)
        for lvl in range(len(LEVELS)):
            cell = self._cells[lvl].get(keys[lvl])
            if cell is None or len(cell) < 2 * MIN_SUPPORT[lvl]:
                continue
            n = len(cell) // 2
            center = cell_median(cell)
            spread = _MAD_TO_SIGMA * cell_mad(cell, center) if n >= 3 else 0.0
            pooled = self._pooled[lvl]
            k = self.shrink
            scale = math.sqrt((n * spread * spread + k * pooled * pooled) / (n + k))
            z = (x - center) / max(scale, self.floor)
            return self._finding(decl, x, center, min(max(z, -_Z_BOUND), _Z_BOUND), lvl, n)
        return _NEUTRAL

    def learn_one(self, decl: Declaration) -> None:
        """Add the declared unit value to every reference of the declaration."""
        self.learn_declared(declared(decl))

    def learn_declared(self, decl: Declared) -> None:
        """:meth:`learn_one` of the fields the engine read once (:func:`declared`)."""
        self._updates += 1
        x = log_unit_value(decl.customs_value_eur, decl.net_mass_kg)
        if x is None:
            return
        keys = reference_keys(decl, self.quantity_band)
        for lvl in range(len(LEVELS)):
            cells = self._cells[lvl]
            cell = refreshed(cells, self._cells_changed[lvl], keys[lvl], self.max_cells)
            if cell is None:
                cell = array("d")
            elif len(cell) >= 6:
                self._learn_dispersion(lvl, x, cell)
            cells[keys[lvl]] = cell
            add_value(cell, x, self.window)

    def forget_value(
        self, hs6: str, origin: str, customs_value_eur: float, net_mass_kg: float
    ) -> None:
        """Take the unit value of a declaration found in infraction out of the references
        that still hold it: it says nothing of the normal price of its goods.

        A reference left empty is dropped. The pooled dispersions keep what they learnt.

        >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
        >>> det = ValuationDetector()
        >>> det.learn_one(Declaration.model_validate(EXAMPLE_DECLARATION))
        >>> det.n_cells
        4
        >>> det.forget_value("620342", "CN", 25_000.0, 2_000.0)
        >>> det.n_cells
        0
        """
        x = log_unit_value(customs_value_eur, net_mass_kg)
        if x is None:
            return
        keys = keys_of(hs6, origin, mass_band(net_mass_kg, self.quantity_band))
        for lvl in range(len(LEVELS)):
            cells, key = self._cells[lvl], keys[lvl]
            cell = cells.get(key)
            if cell is None or not remove_value(cell, x):
                continue
            self._cells_changed[lvl][key] = None
            if not cell:
                del cells[key]
        self._updates += 1

    def _learn_dispersion(self, lvl: int, x: float, cell: Cell) -> None:
        """The level's pooled robust dispersion: a median tracker of ``1.4826 |x - med|``."""
        deviation = _MAD_TO_SIGMA * abs(x - cell_median(cell))
        p = self._pooled[lvl]
        step = self.pooled_rate * 0.5 * max(p, self.floor)
        p = p + step if deviation > p else p - step
        self._pooled[lvl] = max(p, self.floor)

    def _finding(
        self, decl: Declared, x: float, center: float, z: float, lvl: int, n: int
    ) -> ValuationFinding:
        reference = math.exp(center)
        ratio = math.exp(x - center)
        gap_eur = min(max(0.0, reference * decl.net_mass_kg - decl.customs_value_eur), MAX_EUR)
        t = self.score_slope * (-z - self.score_midpoint)
        return ValuationFinding(
            score=1.0 / (1.0 + math.exp(-t)),
            reference_unit_value=min(reference, MAX_EUR),
            unit="kg",
            support_level=LEVELS[lvl],
            support_count=n,
            ratio=min(ratio, MAX_EUR),
            robust_z=z,
            below_lowest_acceptable=ratio < self.lowest_acceptable,
            duty_at_risk_eur=gap_eur * decl.duty_rate_pct / 100.0,
        )

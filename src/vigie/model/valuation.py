"""Value under-declaration (minoration de valeur): a live fair price and the distance to it.

Per (commodity code, origin) cell, and per coarser cell (the code, HS6, HS4, HS2), a
decayed histogram of the log unit value (EUR per kg, EUR per supplementary unit). A
declaration is scored against the finest cell with enough support, blended with a finer,
younger one: reference (median), robust z-score (MAD), the EU 50 %-of-reference rule,
duty at risk. Values it flags are learnt at a small weight, so the reference is
protected from the fraud it measures. Why and how: docs/detectors.md.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from functools import lru_cache
from typing import Final, Literal

from vigie.contracts.codes import hs_prefixes
from vigie.contracts.schemas import Declaration
from vigie.model.assessment import MAX_EUR, ValuationFinding
from vigie.model.base import Detector
from vigie.model.quantiles import SECONDS_PER_DAY, ForwardDecay, SparseHistogram

Unit = Literal["kg", "unit"]
CellKey = tuple[Unit, str, str]
PlanItem = tuple[Unit, float, float, tuple[CellKey, ...]]
_Reference = tuple[int, float, CellKey, float, float, float, float]
_Scored = tuple[str, int, ValuationFinding, float, float, list[PlanItem], list[int]]
# id, item, finding, time, forward-decay growth, plan, rank of each unit's anchor cell
# (level rank, -scale, cell, median, support, quantity, log declared unit value)

_LEVEL_NAMES: Final = {10: "taric10", 8: "cn8", 6: "hs6", 4: "hs4", 2: "hs2"}
# zero value, zero-ish quantity (typed: compiled, a Final tuple[float, float] stays unset)
_LOG_UNIT_VALUE_BOUNDS: Final[tuple[float, ...]] = (math.log(1e-6), math.log(1e12))
_Z_BOUND: Final = 50.0
_MAX_SUPPORT: Final = 1e9
"""Bound on a cell's support (effective declarations), reached only when a cell is read
far before the time its weights are relative to."""
_NEUTRAL: Final = ValuationFinding(score=0.0)


@lru_cache(maxsize=65_536)
def cell_keys(unit: Unit, code: str, origin: str) -> tuple[CellKey, ...]:
    """The cells of a commodity code from an origin, finest first (built once, cached).

    >>> [level_name(code, bool(origin)) for _, code, origin in cell_keys("kg", "62034231", "CN")]
    ['cn8+origin', 'cn8', 'hs6', 'hs4', 'hs2']
    """
    prefixes = hs_prefixes(code)
    return ((unit, prefixes[0], origin), *((unit, p, "") for p in prefixes))


@lru_cache(maxsize=4_096)
def level_name(prefix: str, with_origin: bool) -> str:
    """The name of a support level: ``cn8+origin``, ``hs6``, ``hs4`` ...

    >>> level_name("62034231", True), level_name("6203", False)
    ('cn8+origin', 'hs4')
    """
    name = _LEVEL_NAMES.get(len(prefix), f"code{len(prefix)}")
    return f"{name}+origin" if with_origin else name


def log_unit_value(value: float, quantity: float) -> float:
    """The log unit value, bounded to 1e-6 .. 1e12 EUR so that odd inputs stay finite.

    >>> round(log_unit_value(0.0, 10.0), 1), round(log_unit_value(34.0, 1e-307), 1)
    (-13.8, 27.6)
    """
    low, high = _LOG_UNIT_VALUE_BOUNDS
    if value <= 0:
        return low
    return min(max(math.log(value) - math.log(quantity), low), high)


class ValuationDetector(Detector):
    """Scores the declared customs value against a live, robust fair price.

    Parameters
    ----------
    half_life_days
        Half-life of an observation in the reference, in event-time days (None: no
        forgetting).
    min_support
        Effective observations a cell needs to anchor the reference on its own.
    prior_strength
        Pseudo-observations of the anchoring cell when a finer, sparser cell is blended
        in (credibility weighting).
    bin_width
        Width of the histogram bins on the natural-log scale of the unit value.
    max_cells
        At most this many cells are kept (least recently used evicted).
    lowest_acceptable
        Ratio below which a value is below the lowest acceptable (EU: 50 %).
    flag_z
        Robust z-score below ``-flag_z`` marks a value as under-declared for learning.
    flagged_weight
        Weight with which a flagged declaration is learnt (0 to ignore it).
    min_log_scale
        Floor on the robust scale of a cell, on the log scale (0.1 = 10 %).
    score_midpoint
        The ``-z`` at which the score is 0.5.
    score_slope
        Steepness of the logistic score.
    max_importers
        At most this many importers' flag counts are kept (least recently used evicted).
    importer_prior
        Pseudo-declarations at the overall flagged share in an importer's flagged share.
    staleness
        A cell's median and MAD are recomputed once its weight grew by this share since
        they were last read (0: after every observation).
    own_window
        Last log unit values kept per (importer, unit, code, origin): the importer's own
        usual price of the same goods (:meth:`ValuationDetector.own_ratio`).
    max_own
        At most this many (importer, unit, code, origin) histories are kept (LRU).

    Examples
    --------
    Two hundred shirts at 12 to 13 EUR/kg, then one at 4 EUR/kg (the reference reads
    12.7: the median interpolated within 10 % bins):

    >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
    >>> det = ValuationDetector(min_support=20)
    >>> for i in range(200):
    ...     d = dict(EXAMPLE_DECLARATION, declaration_id=f"D{i}",
    ...              customs_value_eur=2000.0 * (12.0 + i % 11 * 0.1))
    ...     det.learn_one(Declaration.model_validate(d))
    >>> low = dict(EXAMPLE_DECLARATION, declaration_id="LOW", customs_value_eur=8000.0)
    >>> ev = det.score_one(Declaration.model_validate(low))
    >>> ev.support_level, round(ev.reference_unit_value, 1), round(ev.ratio, 2)
    ('cn8+origin', 12.7, 0.32)
    >>> ev.below_lowest_acceptable, round(ev.score, 2), round(ev.duty_at_risk_eur)
    (True, 1.0, 2078)
    """

    def __init__(
        self,
        half_life_days: float | None = 180.0,
        min_support: int = 20,
        prior_strength: float = 10.0,
        bin_width: float = 0.1,
        max_cells: int = 200_000,
        lowest_acceptable: float = 0.5,
        flag_z: float = 2.5,
        flagged_weight: float = 0.05,
        min_log_scale: float = 0.1,
        score_midpoint: float = 2.5,
        score_slope: float = 1.5,
        max_importers: int = 200_000,
        importer_prior: float = 3.0,
        staleness: float = 0.0,
        own_window: int = 8,
        max_own: int = 400_000,
    ) -> None:
        self.half_life_days = half_life_days
        self.min_support = min_support
        self.prior_strength = prior_strength
        self.bin_width = bin_width
        self.max_cells = max_cells
        self.lowest_acceptable = lowest_acceptable
        self.flag_z = flag_z
        self.flagged_weight = flagged_weight
        self.min_log_scale = min_log_scale
        self.score_midpoint = score_midpoint
        self.score_slope = score_slope
        self.max_importers = max_importers
        self.importer_prior = importer_prior
        self.staleness = staleness
        self.own_window = own_window
        self.max_own = max_own
        self._own: OrderedDict[tuple[str, Unit, str, str], list[float]] = OrderedDict()
        self._decay = ForwardDecay(half_life_days)
        self._importers: OrderedDict[str, list[float]] = OrderedDict()
        self._referenced = 0
        self._referenced_flagged = 0
        self._cells: OrderedDict[CellKey, SparseHistogram] = OrderedDict()
        self._updates = 0
        self._flagged = 0
        self._last: _Scored | None = None

    @property
    def version(self) -> str:
        """Changes whenever the reference learns."""
        return f"valuation-{self._updates}"

    @property
    def n_cells(self) -> int:
        """Cells held (at most ``max_cells``)."""
        return len(self._cells)

    @property
    def n_flagged(self) -> int:
        """Declarations learnt with the reduced weight because they were flagged."""
        return self._flagged

    def score_one(self, decl: Declaration) -> ValuationFinding:
        """The finding of under-declaration; neutral when there is no reference yet.

        With both a mass and supplementary units, the finer cell wins, then the sharper.
        """
        t, plan = _plan(decl)
        best: _Reference | None = None
        growth = self._decay.weight(t) if plan else 1.0
        anchors: list[int] = []
        for _, quantity, x, keys in plan:
            found = self._reference(quantity, x, keys, growth, anchors)
            if found is not None and (best is None or found[:2] > best[:2]):
                best = found
        result = _NEUTRAL if best is None else self._finding(decl, best)
        self._last = (decl.declaration_id, decl.item_number, result, t, growth, plan, anchors)
        return result

    def learn_one(self, decl: Declaration) -> None:
        """Update the reference with ``decl`` (down-weighted when it is flagged)."""
        last = self._last
        if last is None or last[0] != decl.declaration_id or last[1] != decl.item_number:
            self.score_one(decl)
            last = self._last
            assert last is not None
        self._last = None
        _, _, finding, t, growth, plan, anchors = last
        if not plan:
            return
        flagged = finding.robust_z is not None and finding.robust_z < -self.flag_z
        weight = self.flagged_weight if flagged else 1.0
        self._flagged += flagged
        if finding.robust_z is not None:
            self._learn_importer(decl.importer, flagged)
        self._learn_own(decl, plan)
        cells = self._cells
        shift = self._decay.rebase(t)
        if shift != 1.0:
            for stored in cells.values():
                stored.rescale(shift)
        growth /= shift  # the forward-decay weight at t, read when scoring
        weight *= growth
        width = self.bin_width
        for (_, _, x, keys), anchor in zip(plan, anchors, strict=True):
            bin_ = math.floor(x / width)  # the same bin in every cell (one width)
            for rank, key in enumerate(keys):
                # cells finer than the anchor are still learning their own market
                learnt = growth if rank < anchor else weight
                if learnt <= 0:
                    continue
                cell = cells.get(key)
                if cell is None:
                    cell = cells[key] = SparseHistogram(width)
                    if len(cells) > self.max_cells:
                        cells.popitem(last=False)
                else:
                    cells.move_to_end(key)
                cell.add_to_bin(bin_, learnt)
        self._updates += 1

    def importer_flagged_share(self, importer: str) -> float:
        """Share of the importer's past declarations (with a reference) that were flagged,
        smoothed toward the overall share with ``importer_prior`` pseudo-declarations.

        >>> det = ValuationDetector()
        >>> det._learn_importer("A", True); det._learn_importer("B", False)
        >>> round(det.importer_flagged_share("A"), 3), round(det.importer_flagged_share("Z"), 3)
        (0.625, 0.5)
        """
        overall = (self._referenced_flagged + 1.0) / (self._referenced + 2.0)
        entry = self._importers.get(importer)
        n, flagged = (0.0, 0.0) if entry is None else entry
        return (flagged + self.importer_prior * overall) / (n + self.importer_prior)

    def own_ratio(self, decl: Declaration, unit: Unit | None) -> float | None:
        """The declared unit value over the median of the importer's last ``own_window``
        declarations of the same code and origin (in ``unit``); None without any.

        >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
        >>> det = ValuationDetector()
        >>> for v in (2000.0, 2100.0, 1900.0):
        ...     det.learn_one(Declaration.model_validate(dict(EXAMPLE_DECLARATION,
        ...                                                   customs_value_eur=v)))
        >>> low = Declaration.model_validate(dict(EXAMPLE_DECLARATION, customs_value_eur=500.0))
        >>> round(det.own_ratio(low, "kg"), 2), det.own_ratio(low, None)
        (0.25, None)
        """
        if unit is None:
            return None
        history = self._own.get((decl.importer, unit, decl.commodity_code, decl.origin))
        if not history:
            return None
        quantity = decl.net_mass_kg if unit == "kg" else decl.supplementary_units
        if not quantity or quantity <= 0:
            return None
        ordered = sorted(history)
        k = len(ordered)
        median = 0.5 * (ordered[(k - 1) // 2] + ordered[k // 2])
        return math.exp(log_unit_value(decl.customs_value_eur, quantity) - median)

    def _learn_own(self, decl: Declaration, plan: list[PlanItem]) -> None:
        own = self._own
        for unit, _, x, _ in plan:
            key = (decl.importer, unit, decl.commodity_code, decl.origin)
            history = own.get(key)
            if history is None:
                history = own[key] = []
                if len(own) > self.max_own:
                    own.popitem(last=False)
            else:
                own.move_to_end(key)
            history.append(x)
            if len(history) > self.own_window:
                del history[0]

    def _learn_importer(self, importer: str, flagged: bool) -> None:
        self._referenced += 1
        self._referenced_flagged += flagged
        entry = self._importers.get(importer)
        if entry is None:
            entry = self._importers[importer] = [0.0, 0.0]
            if len(self._importers) > self.max_importers:
                self._importers.popitem(last=False)
        else:
            self._importers.move_to_end(importer)
        entry[0] += 1.0
        entry[1] += flagged

    def _reference(
        self,
        quantity: float,
        x: float,
        keys: tuple[CellKey, ...],
        growth: float,
        anchors: list[int],
    ) -> _Reference | None:
        """The reference read from the cells, finest first: (rank, -scale, ...).

        The first cell with ``min_support`` anchors the reference; a finer cell with less
        support is blended in with the credibility weight ``n / (n + prior_strength)``,
        and names the level (its support is the one reported). ``growth`` is the forward
        decay weight at the declaration's time: a cell's support is its total over it.
        """
        cells = self._cells
        fine: tuple[int, CellKey, SparseHistogram, float] | None = None
        for rank, key in enumerate(keys):
            cell = cells.get(key)
            if cell is None:
                continue
            support = cell.total / growth
            if support > _MAX_SUPPORT:
                support = _MAX_SUPPORT
            if support >= self.min_support:
                median, scale = self._location_scale(cell)
                young = rank  # cells finer than the anchor learn even a flagged value...
                if fine is not None:
                    rank, key, cell, support = fine
                    fine_median, fine_scale = self._location_scale(cell)
                    if x - fine_median < -self.flag_z * scale:  # ...unless low for them too
                        young = 0
                    w = support / (support + self.prior_strength)
                    median = w * fine_median + (1.0 - w) * median
                    scale = w * fine_scale + (1.0 - w) * scale
                anchors.append(young)
                return (len(keys) - rank, -scale, key, median, support, quantity, x)
            if fine is None and support >= 1.0:
                fine = (rank, key, cell, support)
        anchors.append(len(keys))
        return None

    def _location_scale(self, cell: SparseHistogram) -> tuple[float, float]:
        median, mad = cell.median_mad(self.staleness)
        return median, max(1.4826 * mad, self.min_log_scale)

    def _finding(self, decl: Declaration, found: _Reference) -> ValuationFinding:
        _, minus_scale, key, median, support, quantity, log_declared = found
        z = min(max((log_declared - median) / -minus_scale, -_Z_BOUND), _Z_BOUND)
        reference = math.exp(median)
        ratio = math.exp(log_declared - median) if decl.customs_value_eur > 0 else 0.0
        gap_eur = min(max(0.0, reference * quantity - decl.customs_value_eur), MAX_EUR)
        score = 1.0 / (1.0 + math.exp(-self.score_slope * (-z - self.score_midpoint)))
        return ValuationFinding(
            score=score,
            reference_unit_value=reference,
            unit=key[0],
            support_level=level_name(key[1], bool(key[2])),
            support_count=round(support),
            ratio=ratio,
            robust_z=z,
            below_lowest_acceptable=ratio < self.lowest_acceptable,
            duty_at_risk_eur=gap_eur * decl.duty_rate_pct / 100.0,
        )


def _plan(decl: Declaration) -> tuple[float, list[PlanItem]]:
    """Event time in days and, per unit declared, (unit, quantity, log value, cells)."""
    plan: list[PlanItem] = []
    value = decl.customs_value_eur
    code, origin = decl.commodity_code, decl.origin
    if decl.net_mass_kg > 0:
        quantity = decl.net_mass_kg
        keys = cell_keys("kg", code, origin)
        plan.append(("kg", quantity, log_unit_value(value, quantity), keys))
    if decl.supplementary_units:
        quantity = decl.supplementary_units
        keys = cell_keys("unit", code, origin)
        plan.append(("unit", quantity, log_unit_value(value, quantity), keys))
    return decl.lodged_at.timestamp() / SECONDS_PER_DAY, plan

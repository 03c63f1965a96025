"""Value under-declaration (minoration de valeur): a live fair price and the distance to it.

For every (commodity code, origin) cell, and for the coarser cells above it (the code
alone, then HS6, HS4 and HS2), the detector keeps a decayed histogram of the log unit
value (EUR per kg and, where supplementary units are declared, EUR per unit). A
declaration is scored against the finest cell with at least ``min_support`` effective
observations: the reference unit value is the cell's median, the robust z-score uses the
interquartile range (``IQR / 1.349``, floored at ``min_log_scale``), and the EU rule of
thumb flags a value below half of the reference. The score is a logistic of ``-z``.

The reference protects itself from the fraud it measures: a declaration the detector
flags (ratio below ``lowest_acceptable`` or ``z < -flag_z``) is learnt with the small
weight ``flagged_weight`` only, so that a genuine, lasting price fall still wins after a
few half-lives while 30 % of frauds at a fifth of the price barely move the median.

Memory is bounded: at most ``max_cells`` cells, the least recently used evicted first.
A cell holds about 25 occupied bins (about 1.5 KiB; see bench/bench_detectors.py).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Literal

from vigie.detectors.base import Detector
from vigie.detectors.quantiles import SECONDS_PER_DAY, DecayedHistogram
from vigie.topics.codes import hs_prefixes
from vigie.topics.schemas import Declaration, ValuationEvidence

Unit = Literal["kg", "unit"]
CellKey = tuple[Unit, str, str]

_LEVEL_NAMES = {10: "taric10", 8: "cn8", 6: "hs6", 4: "hs4", 2: "hs2"}
_MIN_UNIT_VALUE = 1e-6  # EUR: a declared value of zero is read as this, to keep logs finite
_Z_BOUND = 50.0
_NEUTRAL = ValuationEvidence(score=0.0)


def level_name(prefix: str, with_origin: bool) -> str:
    """The name of a support level: ``cn8+origin``, ``hs6``, ``hs4`` ...

    >>> level_name("62034231", True), level_name("6203", False)
    ('cn8+origin', 'hs4')
    """
    name = _LEVEL_NAMES.get(len(prefix), f"code{len(prefix)}")
    return f"{name}+origin" if with_origin else name


def cell_keys(decl: Declaration, unit: Unit) -> list[CellKey]:
    """The cells a declaration belongs to, finest first.

    >>> from vigie.topics.schemas import EXAMPLE_DECLARATION
    >>> keys = cell_keys(Declaration.model_validate(EXAMPLE_DECLARATION), "kg")
    >>> [level_name(code, bool(origin)) for _, code, origin in keys]
    ['cn8+origin', 'cn8', 'hs6', 'hs4', 'hs2']
    """
    prefixes = hs_prefixes(decl.commodity_code)
    return [(unit, prefixes[0], decl.origin)] + [(unit, p, "") for p in prefixes]


class ValuationDetector(Detector):
    """Scores the declared customs value against a live, robust fair price.

    Parameters
    ----------
    half_life_days
        Half-life of an observation in the reference, in event-time days (None: no
        forgetting).
    min_support
        Effective observations a cell needs before it is used as the reference.
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

    Examples
    --------
    Two hundred shirts at 12 to 13 EUR/kg, then one at 4 EUR/kg (the reference reads
    12.7: the median interpolated within 10 % bins):

    >>> from vigie.topics.schemas import EXAMPLE_DECLARATION
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
        min_support: int = 30,
        bin_width: float = 0.1,
        max_cells: int = 200_000,
        lowest_acceptable: float = 0.5,
        flag_z: float = 3.0,
        flagged_weight: float = 0.05,
        min_log_scale: float = 0.1,
        score_midpoint: float = 2.5,
        score_slope: float = 1.5,
    ) -> None:
        self.half_life_days = half_life_days
        self.min_support = min_support
        self.bin_width = bin_width
        self.max_cells = max_cells
        self.lowest_acceptable = lowest_acceptable
        self.flag_z = flag_z
        self.flagged_weight = flagged_weight
        self.min_log_scale = min_log_scale
        self.score_midpoint = score_midpoint
        self.score_slope = score_slope
        self._cells: OrderedDict[CellKey, DecayedHistogram] = OrderedDict()
        self._updates = 0
        self._flagged = 0
        self._last: tuple[str, int, ValuationEvidence] | None = None

    @property
    def version(self) -> str:
        """Changes whenever the reference learns."""
        return f"valuation-{self._updates}"

    @property
    def n_cells(self) -> int:
        return len(self._cells)

    @property
    def n_flagged(self) -> int:
        """Declarations learnt with the reduced weight because they were flagged."""
        return self._flagged

    def score_one(self, decl: Declaration) -> ValuationEvidence:
        """The evidence of under-declaration; neutral when there is no reference yet.

        With both a mass and supplementary units, the finer cell wins, then the sharper.
        """
        t = decl.lodged_at.timestamp() / SECONDS_PER_DAY
        best: tuple[int, float, ValuationEvidence] | None = None
        for unit, quantity in self._quantities(decl):
            found = self._score_unit(decl, unit, quantity, t)
            if found is not None and (best is None or found[:2] > best[:2]):
                best = found
        result = best[2] if best is not None else _NEUTRAL
        self._last = (decl.declaration_id, decl.item_number, result)
        return result

    def learn_one(self, decl: Declaration) -> None:
        """Update the reference with ``decl`` (down-weighted when it is flagged)."""
        quantities = self._quantities(decl)
        if not quantities:
            return
        last = self._last
        if last is not None and last[0] == decl.declaration_id and last[1] == decl.item_number:
            evidence = last[2]
        else:
            evidence = self.score_one(decl)
        self._last = None
        flagged = evidence.reference_unit_value is not None and (
            evidence.below_lowest_acceptable
            or (evidence.robust_z is not None and evidence.robust_z < -self.flag_z)
        )
        weight = self.flagged_weight if flagged else 1.0
        self._flagged += flagged
        if weight <= 0:
            return
        t = decl.lodged_at.timestamp() / SECONDS_PER_DAY
        for unit, quantity in quantities:
            x = math.log(max(decl.customs_value_eur / quantity, _MIN_UNIT_VALUE))
            for key in cell_keys(decl, unit):
                self._cell(key).add(x, t, weight)
        self._updates += 1

    def _quantities(self, decl: Declaration) -> list[tuple[Unit, float]]:
        out: list[tuple[Unit, float]] = []
        if decl.net_mass_kg > 0:
            out.append(("kg", decl.net_mass_kg))
        if decl.supplementary_units:
            out.append(("unit", decl.supplementary_units))
        return out

    def _cell(self, key: CellKey) -> DecayedHistogram:
        cells = self._cells
        cell = cells.get(key)
        if cell is None:
            cell = DecayedHistogram(self.bin_width, self.half_life_days)
            cells[key] = cell
            if len(cells) > self.max_cells:
                cells.popitem(last=False)
        else:
            cells.move_to_end(key)
        return cell

    def _score_unit(
        self, decl: Declaration, unit: Unit, quantity: float, t: float
    ) -> tuple[int, float, ValuationEvidence] | None:
        """(level rank, -scale, evidence) from the finest cell with enough support."""
        keys = cell_keys(decl, unit)
        for rank, key in enumerate(keys):
            cell = self._cells.get(key)
            if cell is None:
                continue
            support = cell.effective_count(t)
            if support >= self.min_support:
                scale, evidence = self._evidence(decl, key, cell, quantity, support)
                return (len(keys) - rank, -scale, evidence)
        return None

    def _evidence(
        self,
        decl: Declaration,
        key: CellKey,
        cell: DecayedHistogram,
        quantity: float,
        support: float,
    ) -> tuple[float, ValuationEvidence]:
        q1, median, q3 = cell.quantiles((0.25, 0.5, 0.75))
        scale = max((q3 - q1) / 1.349, self.min_log_scale)
        declared = decl.customs_value_eur / quantity
        z = (math.log(max(declared, _MIN_UNIT_VALUE)) - median) / scale
        z = min(max(z, -_Z_BOUND), _Z_BOUND)
        reference = math.exp(median)
        ratio = declared / reference
        gap_eur = max(0.0, reference * quantity - decl.customs_value_eur)
        score = 1.0 / (1.0 + math.exp(-self.score_slope * (-z - self.score_midpoint)))
        return scale, ValuationEvidence(
            score=score,
            reference_unit_value=reference,
            unit=key[0],
            support_level=level_name(key[1], bool(key[2])),
            support_count=int(support),
            ratio=ratio,
            robust_z=z,
            below_lowest_acceptable=ratio < self.lowest_acceptable,
            duty_at_risk_eur=gap_eur * decl.duty_rate_pct / 100.0,
        )

"""The naive baselines an engine must beat: pure models, no I/O.

- :class:`HierarchicalRates`: the infraction rate of the declaration's product and
  origin, learnt from control results only: HS2 > HS4 > HS6 > HS6 x origin > HS6 x origin
  x tax type, each level's rate smoothed toward its parent's with ``m`` pseudo-controls,
  ``rate = (frauds + m * parent) / (controls + m)``, the root being ``(frauds + 1) /
  (controls + 2)``; labels counted unweighted. With ``ucb > 0`` the selection score adds
  an upper-confidence bonus ``ucb * sqrt(rate (1 - rate) / (controls_finest + m))``.
- :class:`RobustZ`: the robust z of log(value / mass) against the last 200 earlier
  declarations of the same HS6 x origin (the HS6 when fewer than 5), MAD scaled (1.4826).
- :class:`NoveltyRule`: 1 for an origin never seen for the HS6, plus 1 for a chapter never
  declared by an importer already seen (0, 1 or 2).

>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
>>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> rates = HierarchicalRates()
>>> rates.score(decl)
(0.5, 0.5)
>>> rates.learn(decl, True); rates.score(decl)[1] > 0.5
True
>>> novelty = NoveltyRule(); novelty.learn(decl)
>>> novelty.score(decl.model_copy(update={"origin": "VN"}))
1.0
"""

from __future__ import annotations

import math
from collections import deque

from vigie.contracts.schemas import Declaration

LEVELS = 5


def rate_keys(decl: Declaration) -> tuple[str, ...]:
    """The keys of the hierarchy, coarsest first: HS2, HS4, HS6, HS6 x origin, and
    HS6 x origin x tax type (the preference code)."""
    hs6 = decl.commodity_code[:6]
    flow = f"{hs6}|{decl.origin}"
    return (hs6[:2], hs6[:4], hs6, flow, f"{flow}|{decl.preference or '-'}")


class HierarchicalRates:
    """Smoothed hierarchical infraction rates learnt from control results."""

    def __init__(self, m: float = 2.0, ucb: float = 0.0) -> None:
        self.m = m
        self.ucb = ucb
        self._controls: list[dict[str, float]] = [{} for _ in range(LEVELS)]
        self._frauds: list[dict[str, float]] = [{} for _ in range(LEVELS)]
        self._total = 0.0
        self._total_frauds = 0.0

    def score(self, decl: Declaration) -> tuple[float, float]:
        """(selection score, infraction rate) of a declaration."""
        rate = (self._total_frauds + 1.0) / (self._total + 2.0)
        controls = 0.0
        for level, key in enumerate(rate_keys(decl)):
            controls = self._controls[level].get(key, 0.0)
            rate = (self._frauds[level].get(key, 0.0) + self.m * rate) / (controls + self.m)
        bonus = self.ucb * math.sqrt(rate * (1.0 - rate) / (controls + self.m))
        return rate + bonus, rate

    def learn(self, decl: Declaration, fraud: bool) -> None:
        """Learn one control result of ``decl``."""
        for level, key in enumerate(rate_keys(decl)):
            self._controls[level][key] = self._controls[level].get(key, 0.0) + 1.0
            self._frauds[level][key] = self._frauds[level].get(key, 0.0) + fraud
        self._total += 1.0
        self._total_frauds += fraud


def log_unit_value(decl: Declaration) -> float | None:
    """log(customs value / net mass), None without both."""
    if decl.customs_value_eur <= 0 or decl.net_mass_kg <= 0:
        return None
    return math.log(decl.customs_value_eur / decl.net_mass_kg)


def _median(values: list[float]) -> float:
    k = len(values)
    return 0.5 * (values[(k - 1) // 2] + values[k // 2])


class RobustZ:
    """Robust z of the log unit value against the recent declarations of its cell.

    >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
    >>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
    >>> z = RobustZ()
    >>> for factor in (0.9, 1.0, 1.1, 1.05, 0.95, 1.0):
    ...     z.learn(decl.model_copy(update={"customs_value_eur": 1000 * factor}))
    >>> z.z(decl.model_copy(update={"customs_value_eur": 300.0})) < -5
    True
    """

    def __init__(self, window: int = 200, min_rows: int = 5) -> None:
        self.window = window
        self.min_rows = min_rows
        self._cells: dict[str, deque[float]] = {}

    def z(self, decl: Declaration) -> float:
        """The robust z (0 without a unit value or a reference); low values are negative."""
        x = log_unit_value(decl)
        if x is None:
            return 0.0
        hs6 = decl.commodity_code[:6]
        ref = self._cells.get(f"{hs6}|{decl.origin}")
        if ref is None or len(ref) < self.min_rows:
            ref = self._cells.get(hs6)
        if ref is None or len(ref) < 2:
            return 0.0
        values = sorted(ref)
        median = _median(values)
        mad = _median(sorted(abs(v - median) for v in values))
        scale = max(1.4826 * mad, 1e-3)
        return (x - median) / scale

    def learn(self, decl: Declaration) -> None:
        x = log_unit_value(decl)
        if x is None:
            return
        hs6 = decl.commodity_code[:6]
        for key in (f"{hs6}|{decl.origin}", hs6):
            cell = self._cells.get(key)
            if cell is None:
                cell = self._cells[key] = deque(maxlen=self.window)
            cell.append(x)


class NoveltyRule:
    """Origins seen per HS6 and chapters declared per importer."""

    def __init__(self) -> None:
        self._origins: dict[str, set[str]] = {}
        self._chapters: dict[str, set[str]] = {}

    def score(self, decl: Declaration) -> float:
        origins = self._origins.get(decl.commodity_code[:6])
        chapters = self._chapters.get(decl.importer)
        new_origin = origins is not None and decl.origin not in origins
        new_chapter = chapters is not None and decl.chapter not in chapters
        return float(new_origin) + float(new_chapter)

    def learn(self, decl: Declaration) -> None:
        self._origins.setdefault(decl.commodity_code[:6], set()).add(decl.origin)
        self._chapters.setdefault(decl.importer, set()).add(decl.chapter)

"""How active each importer is: declarations lodged, since when, chapters and products.

Learnt from every declaration (no label needed), read as supervised features.

Examples
--------
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
>>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> act = ActivityHistory()
>>> dict(zip(ACTIVITY_FEATURES, act.features(decl)))["act:new_chapter"]
1.0
>>> act.learn_one(decl)
>>> dict(zip(ACTIVITY_FEATURES, act.features(decl)))["act:new_chapter"]
0.0
"""

from __future__ import annotations

import math
from typing import Final

from vigie.contracts.schemas import Declaration
from vigie.model.base import Detector

ACTIVITY_FEATURES: Final[tuple[str, ...]] = (
    "act:declarations",
    "act:days",
    "act:new_importer",
    "act:new_chapter",
    "act:importer_hs6",
)
"""The names of :meth:`ActivityHistory.features`, in order."""


class ActivityHistory(Detector):
    """Per importer: declarations lodged and first lodging time; per importer and chapter
    or HS6: declarations lodged.

    Parameters
    ----------
    max_keys
        At most this many importers, and this many (importer, code) pairs, are kept
        (the least recently seen forgotten first).
    """

    def __init__(self, max_keys: int = 1_000_000) -> None:
        self.max_keys = max_keys
        self._importers: dict[str, list[float]] = {}
        self._pairs: dict[str, int] = {}

    def features(self, decl: Declaration) -> list[float]:
        """log(1 + declarations), log(1 + days since first seen), new importer, new
        chapter, log(1 + declarations of this HS6): :data:`ACTIVITY_FEATURES`."""
        importer = decl.importer
        entry = self._importers.get(importer)
        if entry is None:
            return [0.0, 0.0, 1.0, 1.0, 0.0]
        code = decl.commodity_code
        days = max(0.0, decl.lodged_at.timestamp() - entry[1]) / 86400.0
        return [
            math.log1p(entry[0]),
            math.log1p(days),
            0.0,
            0.0 if f"{importer}|{code[:2]}" in self._pairs else 1.0,
            math.log1p(self._pairs.get(f"{importer}|{code[:6]}", 0)),
        ]

    def learn_one(self, decl: Declaration) -> None:
        """Count one declaration."""
        entry = self._importers.pop(decl.importer, None)
        if entry is None:
            entry = [0.0, decl.lodged_at.timestamp()]
        entry[0] += 1.0
        self._importers[decl.importer] = entry
        for pair in (
            f"{decl.importer}|{decl.commodity_code[:2]}",
            f"{decl.importer}|{decl.commodity_code[:6]}",
        ):
            self._pairs[pair] = self._pairs.pop(pair, 0) + 1
        while len(self._importers) > self.max_keys:
            del self._importers[next(iter(self._importers))]
        while len(self._pairs) > self.max_keys:
            del self._pairs[next(iter(self._pairs))]

"""The indicators' SQL, written once: Grafana's dashboards and the web app both read it.

- :mod:`vigie.indicators.sql`: :class:`Indicator` (one query with markers for the period,
  the operators in scope and the budget) and :class:`Board` (a dashboard, a page);
- :mod:`vigie.indicators.pilote`: Pilote performance, the management indicators;
- :mod:`vigie.indicators.vision360`: Vision 360, one operator's flows and risks, and the
  operator search;
- :mod:`vigie.indicators.analysis`: the detectors' boards (Minoration, Atypie);
- :mod:`vigie.indicators.operations`: the workers' Prometheus metrics;
- :mod:`vigie.indicators.grafana`: the dashboards' JSON, built from the above.
"""

from __future__ import annotations

from vigie.indicators.analysis import ATYPIE, MINORATION
from vigie.indicators.pilote import PILOTE
from vigie.indicators.sql import Board, Indicator
from vigie.indicators.vision360 import DECLARATIONS, OPERATORS, VISION360

BOARDS: dict[str, Board] = {b.uid: b for b in (PILOTE, VISION360, MINORATION, ATYPIE)}

__all__ = [
    "ATYPIE",
    "BOARDS",
    "DECLARATIONS",
    "MINORATION",
    "OPERATORS",
    "PILOTE",
    "VISION360",
    "Board",
    "Indicator",
]

"""Grafana dashboards built from the indicators: the JSON files of ``docker/grafana/dashboards``.

The SQL of every ClickHouse panel is an indicator's :meth:`~Indicator.grafana_sql`, so a
panel and the web page that shows the same figure run the same query. The files are
committed (Grafana provisions them from disk); ``tests/integration/test_dashboards.py``
checks that they equal what this module builds. After changing an indicator, write them
again (from the repository's root)::

    python -m vigie.indicators.grafana

Dashboards open on the last six months (``now-6M``); the demo dates its traffic to end
two weeks before the day it runs, so every panel has data on opening. The operations
dashboard reads the workers' Prometheus metrics (consumer lag, throughput, latency): it
lives in ``docker/grafana/operations/``, apart from the ClickHouse dashboards, since it
needs a Prometheus datasource.

>>> board = dashboard(VISION360)
>>> board["time"], [v["name"] for v in board["templating"]["list"]]
({'from': 'now-6M', 'to': 'now'}, ['importer'])
>>> [v["name"] for v in dashboard(PILOTE)["templating"]["list"]]
['budget']
>>> sorted(d["uid"] for d in dashboards())
['vigie-atypie', 'vigie-management', 'vigie-minoration', 'vigie-vision360']
>>> operations_dashboard()["panels"][0]["datasource"]["uid"]
'vigie-prometheus'
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from vigie.indicators.analysis import ATYPIE, MINORATION
from vigie.indicators.operations import OPERATIONS, PrometheusPanel
from vigie.indicators.pilote import PILOTE
from vigie.indicators.sql import Board, Indicator
from vigie.indicators.vision360 import VISION360
from vigie.settings import EngineSettings

CLICKHOUSE = {"type": "grafana-clickhouse-datasource", "uid": "vigie-clickhouse"}
PROMETHEUS = {"type": "prometheus", "uid": "vigie-prometheus"}
DEFAULT_RANGE = {"from": "now-6M", "to": "now"}
FILE_NAMES = {
    "vigie-management": "management.json",
    "vigie-vision360": "vision360.json",
    "vigie-minoration": "minoration.json",
    "vigie-atypie": "atypie.json",
}
DASHBOARDS_DIR = Path("docker") / "grafana" / "dashboards"
OPERATIONS_FILE = Path("docker") / "grafana" / "operations" / "operations.json"
_OPTIONS: dict[str, dict[str, Any]] = {
    "stat": {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "value",
        "graphMode": "none",
        "textMode": "auto",
    },
    "barchart": {"orientation": "horizontal"},
    "table": {"showHeader": True},
    "timeseries": {},
}


def dashboards() -> list[dict[str, Any]]:
    """Every dashboard of ClickHouse indicators."""
    return [dashboard(b) for b in (PILOTE, VISION360, MINORATION, ATYPIE)]


def dashboard(board: Board) -> dict[str, Any]:
    """The Grafana JSON of a board of ClickHouse indicators."""
    panels = [
        _panel(i + 1, indicator, grid)
        for i, (indicator, grid) in enumerate(
            zip(board.indicators, _layout(board.indicators), strict=True)
        )
    ]
    return _frame(board.uid, board.title, board.description, panels, _variables(board))


def operations_dashboard() -> dict[str, Any]:
    """Consumer lag, throughput and latency of the workers, from Prometheus."""
    grids = _layout(OPERATIONS)
    panels = [
        _prometheus_panel(i + 1, p, g)
        for i, (p, g) in enumerate(zip(OPERATIONS, grids, strict=True))
    ]
    description = "The workers' Prometheus metrics: consumer lag, throughput, latency."
    return _frame("vigie-operations", "Vigie — Opérations", description, panels, [])


def _frame(
    uid: str, title: str, description: str, panels: list[dict[str, Any]], variables: list[Any]
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["vigie", "customs"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": dict(DEFAULT_RANGE),
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["vigie"], "asDropdown": True, "title": "Vigie"}],
        "panels": panels,
    }


def _variables(board: Board) -> list[dict[str, Any]]:
    variables: list[dict[str, Any]] = []
    if board.scoped:
        query = (
            "SELECT importer FROM declarations GROUP BY importer "
            "ORDER BY count() DESC, importer LIMIT 1000"
        )
        variables.append(
            {"name": "importer", "label": "Operator (EORI)", "type": "query",
             "datasource": CLICKHOUSE, "query": query, "definition": query, "refresh": 2,
             "sort": 0, "includeAll": False, "multi": False, "current": {}, "hide": 0}
        )  # fmt: skip
    if any("$BUDGET" in i.sql for i in board.indicators):
        budget = str(EngineSettings().budget)
        variables.append(
            {"name": "budget", "label": "Inspection budget (share)", "type": "textbox",
             "query": budget, "current": {"text": budget, "value": budget}, "hide": 0}
        )  # fmt: skip
    return variables


def _layout(items: Any) -> list[dict[str, int]]:
    """Panels left to right, a new row when the next one does not fit."""
    grids: list[dict[str, int]] = []
    x = y = row_height = 0
    for item in items:
        w, h = item.panel_width, item.panel_height
        if x + w > 24:
            x, y, row_height = 0, y + row_height, 0
        grids.append({"h": h, "w": w, "x": x, "y": y})
        x, row_height = x + w, max(row_height, h)
    return grids


def _panel(panel_id: int, indicator: Indicator, grid: dict[str, int]) -> dict[str, Any]:
    series = indicator.kind == "timeseries"
    defaults: dict[str, Any] = {"unit": indicator.unit} if indicator.unit else {}
    options = dict(_OPTIONS[indicator.kind])
    if indicator.kind == "barchart":
        options["xField"] = _first_column(indicator)
    return {
        "id": panel_id,
        "type": indicator.kind,
        "title": indicator.title,
        "description": indicator.description,
        "datasource": CLICKHOUSE,
        "gridPos": grid,
        "targets": [
            {
                "refId": "A",
                "datasource": CLICKHOUSE,
                "editorType": "sql",
                "format": 0 if series else 1,
                "queryType": "timeseries" if series else "table",
                "rawSql": indicator.grafana_sql(),
            }
        ],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }


def _first_column(indicator: Indicator) -> str:
    """The alias of the first selected expression (commas inside brackets skipped)."""
    depth, select = 0, indicator.sql.removeprefix("SELECT ")
    for position, char in enumerate(select):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            select = select[:position]
            break
    return select.rsplit(" AS ", 1)[-1].strip()


def _prometheus_panel(
    panel_id: int, panel: PrometheusPanel, grid: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": PROMETHEUS,
        "gridPos": grid,
        "targets": [
            {"refId": chr(65 + i), "datasource": PROMETHEUS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(panel.queries)
        ],
        "fieldConfig": {"defaults": {"unit": panel.unit} if panel.unit else {}, "overrides": []},
        "options": {},
    }


def encode(board: dict[str, Any]) -> bytes:
    """A dashboard as committed: indented JSON with a final newline."""
    return orjson.dumps(board, option=orjson.OPT_INDENT_2) + b"\n"


def write(root: Path) -> list[Path]:
    """Write every dashboard's JSON file under the repository ``root``."""
    files = [(root / DASHBOARDS_DIR / FILE_NAMES[b["uid"]], b) for b in dashboards()]
    files.append((root / OPERATIONS_FILE, operations_dashboard()))
    for path, board in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(board))
    return [path for path, _ in files]


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    for written in write(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        print(written)

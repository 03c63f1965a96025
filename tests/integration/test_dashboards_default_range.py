"""Every dashboard panel shows data at its default time range, on a generated stream.

The demo dates its traffic to end two weeks before the day it runs; here a generated
stream (imports and exports, scored by the real detectors, the generator's controls)
dated the same way fills a chDB warehouse, and each panel's SQL, with the dashboard's
default range (``now-6M`` to ``now``) expanded as Grafana expands it, must return rows.
The engine's hit rate shows next to the random audits' although the generator names its
controls ``other``: a control of a declaration the engine alerted on counts for it.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vigie.settings import Settings
from vigie.sinks.clickhouse_client import connect
from vigie.sinks.warehouse import migrate
from vigie_dev.testing.warehouse import fill, scored_traffic

pytestmark = pytest.mark.integration

_spec = importlib.util.spec_from_file_location(
    "dashboards_support", Path(__file__).with_name("test_dashboards.py")
)
assert _spec is not None and _spec.loader is not None
support = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(support)

NOW = datetime.now(UTC)


def default_range(dashboard: dict[str, Any]) -> tuple[datetime, datetime]:
    """The dashboard's default ``time`` (``now-<n><unit>`` to ``now``) as Grafana reads it."""
    units = {"d": timedelta(days=1), "h": timedelta(hours=1), "M": timedelta(days=31)}
    match = re.fullmatch(r"now-(\d+)([dhM])", dashboard["time"]["from"])
    assert match and dashboard["time"]["to"] == "now", dashboard["time"]
    return NOW - int(match[1]) * units[match[2]], NOW


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    settings = Settings(clickhouse_url=f"chdb://{tmp_path_factory.mktemp('default-range')}")
    start = (NOW - timedelta(days=105)).replace(hour=0, minute=0, second=0, microsecond=0)
    with closing(connect(settings)) as client:
        migrate(client)
        fill(client, scored_traffic(6000, seed=11, start=start))
        yield client


PANELS = [
    pytest.param(board, title, sql, id=f"{board['uid']}:{title}")
    for board in support.DASHBOARDS
    for title, sql, _ in support.queries(board)
]


@pytest.mark.parametrize(("board", "title", "sql"), PANELS)
def test_panel_has_rows_at_the_default_range(
    warehouse: Any, board: dict[str, Any], title: str, sql: str
) -> None:
    start, end = default_range(board)
    variables = support.variable_values(warehouse)
    result = warehouse.query(support.render(sql, variables, start, end))
    assert result.result_rows, f"{board['uid']} / {title}: no rows at {board['time']}"


def test_engine_hit_rate_shows_beside_random_audits(warehouse: Any) -> None:
    board = next(b for b in support.DASHBOARDS if b["uid"] == "vigie-management")
    sql = next(s for t, s, _ in support.queries(board) if t == "Hit rate by selection source")
    start, end = default_range(board)
    rows = warehouse.query(support.render(sql, {}, start, end)).result_rows
    sources = {row[0]: row[1] for row in rows}
    assert {"engine", "random_audit", "other"} <= set(sources)
    engine_controls = warehouse.command(
        "SELECT count() FROM control_results FINAL WHERE selection != 'random_audit' "
        "AND declaration_id IN (SELECT declaration_id FROM alerts WHERE selection = 'engine')"
    )
    assert sources["engine"] == engine_controls > 0


def test_typologies_found_by_controls_are_shown(warehouse: Any) -> None:
    board = next(b for b in support.DASHBOARDS if b["uid"] == "vigie-management")
    sql = next(s for t, s, _ in support.queries(board) if t.startswith("Infractions found"))
    start, end = default_range(board)
    typologies = {
        row[0] for row in warehouse.query(support.render(sql, {}, start, end)).result_rows
    }
    assert "under_valuation" in typologies and "(not stated)" not in typologies

"""Every SQL query of every Grafana dashboard, run against chDB holding real data.

customs-kr declarations are scored by the real valuation and atypicality detectors, the
top risks selected (plus a random audit), and everything is written through the
warehouse's table writers. Each panel's ``rawSql`` (and each variable's query) then has
its Grafana macros replaced the way the ClickHouse plugin expands them, and must run
without error and return rows. The dashboards' files must be those that
:mod:`vigie.indicators.grafana` builds from the indicators (one place for each query);
the Prometheus panels of the operations dashboard must read metrics the worker exports.
``test_dashboards_default_range.py`` runs the same panels at their default time range.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from contextlib import closing
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pytest

from vigie.contracts import (
    Alert,
    AtypicalityEvidence,
    ControlResult,
    Declaration,
    Reason,
    Score,
    ValuationEvidence,
    dead_letter,
)
from vigie.contracts.codec import decode_object
from vigie.errors import DecodeError
from vigie.indicators import grafana as grafana_boards
from vigie.ingest.mappings import load_mapping
from vigie.model.atypicality import AtypicalityDetector
from vigie.model.valuation import ValuationDetector
from vigie.settings import Settings
from vigie.sinks.clickhouse_client import connect
from vigie.sinks.grafana import dashboards_dir, load_dashboards
from vigie.sinks.warehouse import TABLES, TableWriter, migrate

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CUSTOMS_KR = REPO.parent / "shared" / "data" / "customs-kr" / "train.csv"
ROWS = 3000
START, END = datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 2, 1, tzinfo=UTC)
INTERVAL_S = 3600


def render(
    sql: str, variables: dict[str, str], start: datetime = START, end: datetime = END
) -> str:
    """``sql`` with Grafana's and the ClickHouse plugin's macros expanded, as the plugin does.

    ``${name:sqlstring}`` is the variable's value quoted as an SQL string literal.
    """
    start_s, end_s = int(start.timestamp()), int(end.timestamp())
    start_ms, end_ms = start_s * 1000, end_s * 1000
    macros: list[tuple[str, Any]] = [
        (
            r"\$__timeFilter_ms\(([^)]+)\)",
            lambda m: (
                f"{m[1]} >= fromUnixTimestamp64Milli({start_ms})"
                f" AND {m[1]} <= fromUnixTimestamp64Milli({end_ms})"
            ),
        ),
        (
            r"\$__timeFilter\(([^)]+)\)",
            lambda m: f"{m[1]} >= toDateTime({start_s}) AND {m[1]} <= toDateTime({end_s})",
        ),
        (
            r"\$__dateFilter\(([^)]+)\)",
            lambda m: (
                f"{m[1]} >= toDate('{start:%Y-%m-%d}') AND {m[1]} <= toDate('{end:%Y-%m-%d}')"
            ),
        ),
        (
            r"\$__timeInterval_ms\(([^)]+)\)",
            lambda m: (
                f"toStartOfInterval(toDateTime64({m[1]}, 3),"
                f" INTERVAL {INTERVAL_S * 1000} millisecond)"
            ),
        ),
        (
            r"\$__timeInterval\(([^)]+)\)",
            lambda m: f"toStartOfInterval(toDateTime({m[1]}), INTERVAL {INTERVAL_S} second)",
        ),
        (r"\$__fromTime_ms", f"fromUnixTimestamp64Milli({start_ms})"),
        (r"\$__toTime_ms", f"fromUnixTimestamp64Milli({end_ms})"),
        (r"\$__fromTime", f"toDateTime({start_s})"),
        (r"\$__toTime", f"toDateTime({end_s})"),
        (r"\$__interval_s", str(INTERVAL_S)),
    ]
    for pattern, replacement in macros:
        sql = re.sub(pattern, replacement, sql)
    for name, value in variables.items():
        quoted = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        sql = sql.replace(f"${{{name}:sqlstring}}", quoted)
        sql = sql.replace(f"${{{name}}}", value).replace(f"${name}", value)
    assert "$" not in sql, f"unexpanded macro or variable in: {sql}"
    return sql


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    """(panel title, rawSql, format) of every panel target."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["rawSql"], target["format"]


def scored_traffic() -> dict[str, list[Any]]:
    """customs-kr rows scored by the real detectors, with alerts, controls and dead letters."""
    assert CUSTOMS_KR.exists(), f"customs-kr data missing: expected {CUSTOMS_KR}"
    mapping = load_mapping("customs-kr")
    with CUSTOMS_KR.open(newline="", encoding="utf-8") as handle:
        converted = [mapping.convert(row) for row in islice(csv.DictReader(handle), ROWS)]
    declarations = [decode_object(Declaration, d) for d, _ in converted]
    labels = {c["declaration_id"]: decode_object(ControlResult, c) for _, c in converted if c}
    valuation, atypicality = ValuationDetector(), AtypicalityDetector()
    evidence = []
    for d in declarations:
        evidence.append((valuation.score_one(d), atypicality.score_one(d)))
        valuation.learn_one(d)
        atypicality.learn_one(d)
    risks = sorted(max(v.score, a.score) for v, a in evidence)
    threshold = risks[int(0.95 * len(risks))]
    out: dict[str, list[Any]] = {name: [] for name in TABLES}
    for i, (d, (v, a)) in enumerate(zip(declarations, evidence, strict=True)):
        risk = max(v.score, a.score)
        audit = i % 97 == 0
        selected = risk >= threshold or audit
        reasons = [Reason(code="VAL_BELOW_50PCT", text="value under half the reference")] * (
            v.below_lowest_acceptable
        ) + [Reason(code=f"ATY_{c.name.upper()}", text=c.name) for c in a.contributions]
        score = Score(
            declaration_id=d.declaration_id,
            importer=d.importer,
            office=d.office,
            commodity_code=d.commodity_code,
            lodged_at=d.lodged_at,
            scored_at=d.lodged_at + timedelta(seconds=1),
            valuation=ValuationEvidence.model_validate(asdict(v)),
            atypicality=AtypicalityEvidence.model_validate(asdict(a)),
            supervised_probability=0.1,
            risk=risk,
            expected_recoverable_eur=v.duty_at_risk_eur * risk,
            selected=selected,
            selection=("random_audit" if audit else "engine") if selected else None,
            selection_probability=0.01 if audit else 1.0,
            threshold=threshold,
            reasons=tuple(reasons),
            model_versions={"valuation": "kr-test", "atypicality": "kr-test"},
            latency_ms=float(1 + i % 40),
        )
        out["declarations"].append(d)
        out["scores"].append(score)
        if selected:
            out["alerts"].append(
                Alert(
                    alert_id=Alert.id_for(d.declaration_id), raised_at=score.scored_at, score=score
                )
            )
            label = labels[d.declaration_id]
            out["control_results"].append(label.model_copy(update={"selection": score.selection}))
    for n, raw in enumerate((b"{broken", b"[1, 2]", b'{"declaration_id": "x"}')):
        letter = dead_letter(
            "declarations", None, raw, _reason(raw), received_at=START + timedelta(days=n)
        )
        out["dead_letters"].append(letter)
    return out


def _reason(raw: bytes) -> DecodeError:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return DecodeError("invalid_json", [{"loc": [], "msg": "not JSON", "type": "json"}])
    return DecodeError("schema", [{"loc": ["office"], "msg": "Field required", "type": "missing"}])


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A chDB warehouse of its own, filled through the table writers."""
    settings = Settings(clickhouse_url=f"chdb://{tmp_path_factory.mktemp('dashboards')}")
    traffic = scored_traffic()
    with closing(connect(settings)) as client:
        migrate(client)
        for name, records in traffic.items():
            writer = TableWriter(client, TABLES[name], max_records=1000)
            for record in records:
                writer.add(record)
                if writer.due():
                    writer.flush()
            writer.flush()
        yield client


def variable_values(warehouse: Any) -> dict[str, str]:
    """The first value each dashboard variable offers (as Grafana would pick): a query
    variable's first row, a text box's default."""
    values = {}
    for dashboard in DASHBOARDS:
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "textbox":
                values[variable["name"]] = variable["query"]
                continue
            rows = warehouse.query(render(variable["query"], {})).result_rows
            assert rows, f"variable {variable['name']} offers no value"
            values[variable["name"]] = str(rows[0][0])
    return values


@pytest.fixture(scope="module")
def variables(warehouse: Any) -> dict[str, str]:
    return variable_values(warehouse)


DASHBOARDS = load_dashboards(dashboards_dir(REPO))
OPERATIONS = orjson.loads((REPO / grafana_boards.OPERATIONS_FILE).read_bytes())
PANELS = [
    pytest.param(board["uid"], title, sql, fmt, id=f"{board['uid']}:{title}")
    for board in DASHBOARDS
    for title, sql, fmt in queries(board)
]


def test_committed_dashboards_are_built_from_the_indicators() -> None:
    built = {board["uid"]: board for board in grafana_boards.dashboards()}
    assert set(built) == {board["uid"] for board in DASHBOARDS}
    expected = {
        dashboards_dir(REPO) / grafana_boards.FILE_NAMES[uid]: board for uid, board in built.items()
    }
    expected[REPO / grafana_boards.OPERATIONS_FILE] = grafana_boards.operations_dashboard()
    for path, board in expected.items():
        assert path.read_bytes() == grafana_boards.encode(board), (
            f"{path.name} differs from vigie.indicators: run python -m vigie.indicators.grafana"
        )


def test_operations_panels_read_metrics_the_worker_exports() -> None:
    from vigie.worker.metrics import WorkerMetrics

    exported = {
        metric.name + ("_total" if metric.type == "counter" else "")
        for metric in WorkerMetrics().registry.collect()
    }
    for panel in OPERATIONS["panels"]:
        assert panel["datasource"]["uid"] == "vigie-prometheus", panel["title"]
        for target in panel["targets"]:
            names = set(re.findall(r"\b(vigie_[a-z_]+?)(?:_bucket)?\b", target["expr"]))
            assert names and names <= exported, (panel["title"], names - exported)


def test_dashboards_are_those_promised() -> None:
    titles = sorted(board["title"] for board in DASHBOARDS)
    assert titles == [
        "Vigie — Atypie",
        "Vigie — Minoration de valeur",
        "Vigie — Pilote Performance",
        "Vigie — Vision 360",
    ]
    uids = [p.values[0] for p in PANELS]
    assert len(uids) >= 30
    for board in DASHBOARDS:
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), board["uid"]
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "vigie-clickhouse", panel["title"]
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
            for target in panel["targets"]:
                assert target["editorType"] == "sql" and target["format"] in (0, 1)


@pytest.mark.parametrize(("uid", "title", "sql", "fmt"), PANELS)
def test_panel_query_runs_on_real_data(
    warehouse: Any, variables: dict[str, str], uid: str, title: str, sql: str, fmt: int
) -> None:
    result = warehouse.query(render(sql, variables))
    assert result.result_rows, f"{uid} / {title}: no rows"
    if fmt == 0:  # time series: a time column first, then numbers
        assert result.column_names[0] == "time"
        assert isinstance(result.result_rows[0][0], datetime)
    for row in result.result_rows:
        for value in row:
            if isinstance(value, float):
                assert value == value, f"{uid} / {title}: NaN in {row}"


def test_management_figures_are_consistent(warehouse: Any, variables: dict[str, str]) -> None:
    board = next(b for b in DASHBOARDS if b["uid"] == "vigie-management")
    by_title = {title: sql for title, sql, _ in queries(board)}
    hits = warehouse.query(render(by_title["Hit rate by selection source"], variables))
    table = {row[0]: dict(zip(hits.column_names, row, strict=True)) for row in hits.result_rows}
    assert set(table) == {"engine", "random_audit"}
    assert all(0 <= r["hit_rate"] <= 1 for r in table.values())
    alerts = warehouse.command(render(by_title["Alerts"], variables))
    rate = warehouse.command(render(by_title["Alert rate"], variables))
    assert alerts == sum(r["controls"] for r in table.values())
    assert float(rate) == pytest.approx(alerts / ROWS)

"""How ``vigie evaluate`` shows its report to people: aligned tables on stdout.

First the label regime, then the selection's figures (the engine and each selecting
baseline, with the ratio engine / baseline), the ranking's figures of every score, the
recall per injected kind, the figures per ISO week, and the run's details last.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from vigie.cli import output
from vigie.evaluation.metrics import SPREAD_FIGURES

SELECTION_ROWS = (
    "precision",
    "precision_targeted",
    "precision_audits",
    "hit_ratio",
    "recall",
    "duty_recovered",
    "share",
    "share_targeted",
    "week_min_precision",
    "full_week_min_precision",
    "week_share_min",
    "week_share_max",
)
WEEK_COLUMNS = ("n", "frauds", "share", "precision", "precision_targeted", "recall")


def show(report: dict[str, Any]) -> None:
    """Print the report's tables, then its remaining scalars as grouped rows."""
    console = output.make_console()
    report = dict(report)
    budget = report["budget"]
    console.print(f"[bold]label regime:[/bold] {report.pop('label_regime')}")
    console.print(
        f"measured {report['n']:,} declarations, {report['labelled']:,} with a label, "
        f"base rate {_cell(report['base_rate'])}; budget {budget:g}, "
        f"random audits {report['engine']['audit_share']:g}, labels "
        f"{report['label_delay_days']:g} days late"
    )
    baselines = report.pop("baselines", {})
    console.print(_selection(report.pop("selection"), baselines))
    spread = report.pop("seeds", None)
    if spread is not None:
        console.print(_spread(spread))
    console.print(_ranking(report.pop("detectors"), baselines, budget))
    typologies = report.pop("typologies", {})
    if typologies:
        console.print(_kinds(typologies, baselines))
    console.print(_weeks(report.pop("weeks"), budget))
    output.emit(report, as_json=False, title="run")


def _table(title: str, first: str) -> Table:
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    table.add_column(first, style="bold")
    return table


def _selection(engine: dict[str, Any], baselines: dict[str, Any]) -> Table:
    table = _table("selection online (targeted controls + random audits)", "figure")
    table.add_column("engine", justify="right")
    selecting = {k: v for k, v in baselines.items() if "selection" in v}
    for name in selecting:
        table.add_column(name, justify="right")
        table.add_column("engine/" + name, justify="right")
    for row in SELECTION_ROWS:
        cells = [_cell(engine.get(row))]
        for entry in selecting.values():
            cells += [_cell(entry["selection"].get(row)), _cell(entry["ratio"].get(row))]
        table.add_row(row, *cells)
    return table


def _spread(spread: dict[str, Any]) -> Table:
    seeds = spread["seeds"]
    table = _table(f"selection over the engine's seeds {seeds[0]}-{seeds[-1]}", "figure")
    for name in ("min", "median", "max", *(f"seed {s}" for s in seeds)):
        table.add_column(name, justify="right")
    for figure in SPREAD_FIGURES:
        row = spread[figure]
        values = [_cell(row[k]) for k in ("min", "median", "max")]
        table.add_row(figure, *values, *(_cell(v) for v in row["values"]))
    return table


def _ranking(detectors: dict[str, Any], baselines: dict[str, Any], budget: float) -> Table:
    table = _table("ranking (every measured declaration ordered by each score)", "figure")
    scores = {name: row for name, row in detectors.items()}
    scores |= {name: entry["ranking"] for name, entry in baselines.items()}
    for name in scores:
        table.add_column(name, justify="right")
    names = list(next(iter(scores.values()), {}))
    for name in names:
        table.add_row(name, *(_cell(row.get(name)) for row in scores.values()))
    at = f"precision@{budget * 100:g}%"
    for key, label in (("rank_" + at, at), ("rank_auc", "auc")):
        cells = [
            _cell(baselines[name]["ratio"].get(key)) if name in baselines else "" for name in scores
        ]
        table.add_row(f"engine/baseline {label}", *cells)
    return table


def _kinds(typologies: dict[str, Any], baselines: dict[str, Any]) -> Table:
    table = _table(
        "recall per kind: selected online, and in the top --budget by each score", "kind"
    )
    table.add_column("n", justify="right")
    table.add_column("selected", justify="right")
    columns = {name: rows for name, rows in typologies.items()}
    columns |= {name: entry["kinds"] for name, entry in baselines.items() if "kinds" in entry}
    for name in columns:
        table.add_column(name, justify="right")
    table.add_column("auc risk", justify="right")
    risk = typologies.get("risk", {})
    for kind, row in risk.items():
        cells = [_cell(rows.get(kind, {}).get("recall_top")) for rows in columns.values()]
        table.add_row(
            kind, f"{row['n']:,}", _cell(row.get("recall_selected")), *cells, _cell(row.get("auc"))
        )
    return table


def _weeks(weeks: dict[str, Any], budget: float) -> Table:
    table = _table("per ISO week (engine)", "week")
    at = f"rank_precision@{budget * 100:g}%"
    for name in (*WEEK_COLUMNS, at, "rank_auc"):
        table.add_column(name, justify="right")
    for week, row in weeks.items():
        cells = [_cell(row.get(name)) for name in (*WEEK_COLUMNS, at, "rank_auc")]
        table.add_row(f"{week} (partial)" if row.get("partial") else week, *cells)
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:.3f}"

"""Management figures from the warehouse, exact under replays (every query reads FINAL).

``summary(client)`` returns the counts of declarations, scores and alerts, the alert
rate, the hit rate of controls by selection source, duties recovered and at risk, the
scoring latency percentiles and the dead letters by reason.

Examples
--------
>>> import tempfile
>>> from contextlib import closing
>>> from datetime import timedelta
>>> import clickhouse_connect
>>> from vigie.sinks.warehouse import TABLES, TableWriter, migrate
>>> from vigie.contracts.schemas import ControlResult, Declaration, EXAMPLE_DECLARATION
>>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> checks = [
...     ControlResult(declaration_id=decl.declaration_id, controlled_at=decl.lodged_at,
...                   outcome="infraction", recovered_eur=900.0, selection="engine"),
...     ControlResult(declaration_id="D-2", controlled_at=decl.lodged_at,
...                   outcome="compliant", selection="random_audit"),
... ]
>>> with closing(clickhouse_connect.get_client(dsn=f"chdb://{tempfile.mkdtemp()}")) as ch:
...     _ = migrate(ch)
...     writer = TableWriter(ch, TABLES["control_results"])
...     for check in checks + checks:  # a replay changes nothing
...         writer.add(check)
...     _ = writer.flush()
...     figures = summary(ch)
>>> figures["controls"], figures["hit_rate"], figures["recovered_eur"]
(2, 0.5, 900.0)
>>> figures["hit_rate_by_selection"]["engine"]["hit_rate"], figures["latency_ms"]["p50"]
(1.0, None)
"""

from __future__ import annotations

import math
from typing import Any

from vigie.indicators.pilote import CONTROLS_BY_SOURCE
from vigie.indicators.sql import whole_history

_COUNTS = """
SELECT
    (SELECT count() FROM declarations FINAL) AS declarations,
    (SELECT count() FROM scores FINAL) AS scores,
    (SELECT count() FROM alerts FINAL) AS alerts,
    (SELECT count() FROM control_results FINAL) AS controls,
    (SELECT count() FROM dead_letters FINAL) AS dead_letters
"""

_SCORES = """
SELECT
    countIf(selected) AS n_selected,
    sum(duty_at_risk_eur) AS duty_at_risk_eur,
    sumIf(expected_recoverable_eur, selected) AS expected_recoverable_selected_eur,
    quantilesExact(0.5, 0.95, 0.99)(latency_ms) AS latency
FROM scores FINAL
"""

_CONTROLS = f"""
SELECT source, count() AS n, countIf(is_fraud) AS hits, sum(recovered_eur) AS recovered
FROM {whole_history(CONTROLS_BY_SOURCE)}
GROUP BY source
ORDER BY source
"""
"""Controls by the source they count for (the dashboards' attribution): a control of a
declaration the engine alerted on counts for the engine, whatever the control says."""

_LETTERS = "SELECT reason, count() FROM dead_letters FINAL GROUP BY reason ORDER BY reason"


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole else None


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 3)


def summary(client: Any) -> dict[str, Any]:
    """The warehouse's management figures, as one JSON-able dict."""
    counts = client.query(_COUNTS).first_item
    selected, at_risk, expected, latency = client.query(_SCORES).first_row
    by_selection: dict[str, dict[str, Any]] = {}
    controls = hits = 0
    recovered = 0.0
    for selection, n, n_hits, n_recovered in client.query(_CONTROLS).result_rows:
        by_selection[str(selection)] = {
            "controls": int(n),
            "hits": int(n_hits),
            "hit_rate": _ratio(n_hits, n),
            "recovered_eur": round(float(n_recovered), 2),
        }
        controls, hits, recovered = controls + n, hits + n_hits, recovered + n_recovered
    letters = {str(reason): int(n) for reason, n in client.query(_LETTERS).result_rows}
    scores = int(counts["scores"])
    return {
        "declarations": int(counts["declarations"]),
        "scores": scores,
        "alerts": int(counts["alerts"]),
        "selected": int(selected),
        "alert_rate": _ratio(int(counts["alerts"]), scores),
        "controls": int(controls),
        "hit_rate": _ratio(hits, controls),
        "hit_rate_by_selection": by_selection,
        "recovered_eur": round(float(recovered), 2),
        "duty_at_risk_eur": round(float(at_risk), 2),
        "expected_recoverable_selected_eur": round(float(expected), 2),
        "latency_ms": dict(
            zip(
                ("p50", "p95", "p99"),
                (_finite(v) if scores else None for v in latency),
                strict=True,
            )
        ),
        "dead_letters": {"total": int(counts["dead_letters"]), "by_reason": letters},
    }

"""Pilote performance: the management indicators, for customs staff only.

Declarations, alert and inspection rates, the hit rate of the engine's selections against
random audits, duties recovered and at risk, use of the inspection budget, time from
lodging to alert and to control, dead letters, drift of the price references, by period,
office, region (interregional directorate), chapter, detector and typology.

A control counts for the engine when the engine alerted on its declaration, whatever
source the control result names (in the demo the generator's own targeting decides the
controls before the engine runs, and names them ``other``); random audits stay random
audits, the unbiased baseline.

>>> [i.key for i in PILOTE.indicators if i.kind == "stat"][:4]
['declarations', 'alerts', 'alert_rate', 'inspection_rate']
>>> PILOTE.scoped
False
"""

from __future__ import annotations

from vigie.indicators.sql import Board, Indicator

CONTROLS_BY_SOURCE = (
    "(SELECT c.declaration_id AS declaration_id, c.controlled_at AS controlled_at, "
    "c.is_fraud AS is_fraud, c.recovered_eur AS recovered_eur, c.typology AS typology, "
    "multiIf(c.selection = 'random_audit', 'random_audit', a.engine = 1, 'engine', "
    "c.selection) AS source "
    "FROM (SELECT declaration_id, controlled_at, is_fraud, recovered_eur, typology, selection "
    "FROM control_results FINAL WHERE $PERIOD(controlled_at)) AS c "
    "LEFT JOIN (SELECT DISTINCT declaration_id, 1 AS engine FROM alerts FINAL "
    "WHERE selection = 'engine') AS a ON c.declaration_id = a.declaration_id)"
)
"""Control results of the period with the source they count for: engine, random_audit, other."""

DETECTOR = (
    "multiIf(empty(reason_codes), 'none (random audit)', "
    "reason_codes[1] = 'VALUE_BELOW_REFERENCE', 'valuation', "
    "startsWith(reason_codes[1], 'ATYPICAL_') OR startsWith(reason_codes[1], 'NEW_'), "
    "'atypicality', reason_codes[1] = 'CONTROL_HISTORY_MODEL', 'learnt from controls', "
    "'history of controls')"
)
"""The detector behind an alert: the family of its strongest reason."""

REGION = "if(r.region = '', concat('(', s.office, ')'), r.region)"
REGIONS = "(SELECT office, region, region_name FROM office_regions FINAL)"


def _stat(key: str, title: str, sql: str, unit: str | None = None) -> Indicator:
    return Indicator(key, title, "stat", sql, unit=unit)


STATS = (
    _stat("declarations", "Declarations",
          "SELECT count() AS declarations, countIf(direction = 'export') AS exports "
          "FROM declarations FINAL WHERE $PERIOD(lodged_at)"),
    _stat("alerts", "Alerts",
          "SELECT count() AS alerts FROM alerts FINAL WHERE $PERIOD(lodged_at)"),
    _stat("alert_rate", "Alert rate",
          "SELECT countIf(selected) / greatest(count(), 1) AS alert_rate "
          "FROM scores FINAL WHERE $PERIOD(lodged_at)", "percentunit"),
    _stat("inspection_rate", "Inspection rate",
          "SELECT (SELECT count() FROM control_results FINAL WHERE declaration_id IN "
          "(SELECT declaration_id FROM declarations WHERE $PERIOD(lodged_at))) "
          "/ greatest((SELECT count() FROM declarations FINAL WHERE $PERIOD(lodged_at)), 1) "
          "AS inspection_rate", "percentunit"),
    _stat("engine_hit_rate", "Hit rate: engine / random audit",
          "SELECT countIf(is_fraud AND source = 'engine') / greatest(countIf(source = 'engine'), "
          "1) "
          "AS engine, countIf(is_fraud AND source = 'random_audit') "
          "/ greatest(countIf(source = 'random_audit'), 1) AS random_audit "
          f"FROM {CONTROLS_BY_SOURCE}", "percentunit"),
    _stat("recovered", "Recovered duties",
          "SELECT sum(recovered_eur) AS recovered_eur FROM control_results FINAL "
          "WHERE $PERIOD(controlled_at)", "currencyEUR"),
    _stat("duty_at_risk", "Duty at risk",
          "SELECT sum(duty_at_risk_eur) AS duty_at_risk_eur, "
          "sumIf(expected_recoverable_eur, selected) AS expected_recoverable_selected_eur "
          "FROM scores FINAL WHERE $PERIOD(lodged_at)", "currencyEUR"),
    _stat("budget_use", "Inspection budget used",
          "SELECT countIf(selected AND selection = 'engine') / greatest($BUDGET * count(), 1) "
          "AS budget_use FROM scores FINAL WHERE $PERIOD(lodged_at)", "percentunit"),
    _stat("backlog", "Backlog",
          "SELECT (SELECT count() FROM declarations FINAL WHERE $PERIOD(lodged_at) AND "
          "declaration_id NOT IN (SELECT declaration_id FROM scores)) AS unscored, "
          "(SELECT count() FROM alerts FINAL WHERE $PERIOD(lodged_at) AND declaration_id "
          "NOT IN (SELECT declaration_id FROM control_results)) AS alerts_awaiting_control"),
    _stat("dead_letters", "Dead letters",
          "SELECT count() AS dead_letters FROM dead_letters FINAL WHERE $PERIOD(received_at)"),
)  # fmt: skip

SERIES = (
    Indicator("declarations_per_day", "Declarations and alerts per day", "timeseries",
              "SELECT toStartOfDay(d.lodged_at) AS time, countIf(d.direction = 'import') AS "
              "imports, "
              "countIf(d.direction = 'export') AS exports, countIf(s.selected) AS alerts "
              "FROM (SELECT declaration_id, lodged_at, direction FROM declarations FINAL "
              "WHERE $PERIOD(lodged_at)) AS d LEFT JOIN (SELECT declaration_id, selected "
              "FROM scores FINAL WHERE $PERIOD(lodged_at)) AS s "
              "ON d.declaration_id = s.declaration_id GROUP BY time ORDER BY time"),
    Indicator("alert_rate_per_day", "Alert rate per day", "timeseries",
              "SELECT toStartOfDay(lodged_at) AS time, countIf(selected) / count() AS alert_rate, "
              "countIf(selected AND selection = 'engine') / greatest($BUDGET * count(), 1) "
              "AS budget_use FROM scores FINAL WHERE $PERIOD(lodged_at) "
              "GROUP BY time ORDER BY time", unit="percentunit"),
    Indicator("hit_rate_by_selection", "Hit rate by selection source", "table",
              "SELECT source AS selection, count() AS controls, countIf(is_fraud) AS hits, "
              "round(hits / controls, 4) AS hit_rate, round(sum(recovered_eur), 2) AS "
              "recovered_eur, "
              "round(recovered_eur / controls, 2) AS recovered_per_control_eur "
              f"FROM {CONTROLS_BY_SOURCE} GROUP BY selection ORDER BY selection"),
    Indicator("hit_rate_per_week", "Hit rate per week by selection source", "timeseries",
              "SELECT toDateTime(toStartOfWeek(controlled_at)) AS time, source, "
              f"countIf(is_fraud) / count() AS hit_rate FROM {CONTROLS_BY_SOURCE} "
              "GROUP BY time, source ORDER BY time", unit="percentunit"),
    Indicator("recovered_per_day", "Recovered duties per day", "timeseries",
              "SELECT toStartOfDay(controlled_at) AS time, sum(recovered_eur) AS recovered_eur "
              "FROM control_results FINAL WHERE $PERIOD(controlled_at) GROUP BY time ORDER BY time",
              unit="currencyEUR"),
    Indicator("duty_at_risk_per_day", "Duty at risk per day", "timeseries",
              "SELECT toStartOfDay(lodged_at) AS time, sum(duty_at_risk_eur) AS duty_at_risk_eur, "
              "sumIf(expected_recoverable_eur, selected) AS expected_recoverable_selected_eur "
              "FROM scores FINAL WHERE $PERIOD(lodged_at) GROUP BY time ORDER BY time",
              unit="currencyEUR"),
    Indicator("time_to_alert", "Time from lodging to alert (hours)", "timeseries",
              "SELECT toStartOfDay(lodged_at) AS time, "
              "quantile(0.5)(dateDiff('second', lodged_at, raised_at)) / 3600 AS p50_hours, "
              "quantile(0.9)(dateDiff('second', lodged_at, raised_at)) / 3600 AS p90_hours "
              "FROM alerts FINAL WHERE $PERIOD(lodged_at) GROUP BY time ORDER BY time"),
    Indicator("time_to_control", "Time from lodging to control (days)", "timeseries",
              "SELECT toDateTime(toStartOfWeek(c.controlled_at)) AS time, "
              "quantile(0.5)(dateDiff('second', d.lodged_at, c.controlled_at)) / 86400 AS "
              "p50_days, "
              "quantile(0.9)(dateDiff('second', d.lodged_at, c.controlled_at)) / 86400 AS p90_days "
              "FROM (SELECT declaration_id, controlled_at FROM control_results FINAL "
              "WHERE $PERIOD(controlled_at)) AS c INNER JOIN (SELECT declaration_id, lodged_at "
              "FROM declarations FINAL) AS d ON c.declaration_id = d.declaration_id "
              "GROUP BY time ORDER BY time"),
    Indicator("scoring_latency", "Scoring latency p50 / p99 (ms)", "timeseries",
              "SELECT toStartOfDay(lodged_at) AS time, quantile(0.5)(latency_ms) AS p50_ms, "
              "quantile(0.99)(latency_ms) AS p99_ms FROM scores FINAL WHERE $PERIOD(lodged_at) "
              "GROUP BY time ORDER BY time"),
    Indicator("reference_drift", "Drift of the price references", "timeseries",
              "SELECT w.time AS time, median(abs(log(w.ref / o.ref))) AS median_abs_log_drift, "
              "quantile(0.9)(abs(log(w.ref / o.ref))) AS p90_abs_log_drift "
              "FROM (SELECT toDateTime(toStartOfWeek(lodged_at)) AS time, commodity_code, "
              "assumeNotNull(valuation_unit) AS unit, median(reference_unit_value) AS ref "
              "FROM scores FINAL WHERE $PERIOD(lodged_at) AND reference_unit_value > 0 "
              "AND valuation_unit IS NOT NULL GROUP BY time, commodity_code, unit) AS w "
              "INNER JOIN (SELECT commodity_code, assumeNotNull(valuation_unit) AS unit, "
              "median(reference_unit_value) AS ref FROM scores FINAL WHERE $PERIOD(lodged_at) "
              "AND reference_unit_value > 0 AND valuation_unit IS NOT NULL "
              "GROUP BY commodity_code, unit) AS o "
              "ON w.commodity_code = o.commodity_code AND w.unit = o.unit "
              "GROUP BY time ORDER BY time",
              description="Weekly median reference unit value of each commodity against its "
              "median over the period: |log ratio|, median and 90th percentile over commodities."),
)  # fmt: skip

BREAKDOWNS = (
    Indicator("by_region", "By region (interregional directorate)", "barchart",
              f"SELECT {REGION} AS region, count() AS declarations, countIf(s.selected) AS alerts, "
              "round(sum(s.duty_at_risk_eur), 2) AS duty_at_risk_eur "
              "FROM (SELECT office, selected, duty_at_risk_eur FROM scores FINAL "
              f"WHERE $PERIOD(lodged_at)) AS s LEFT JOIN {REGIONS} AS r ON s.office = r.office "
              "GROUP BY region ORDER BY declarations DESC", columns=("alerts",)),
    Indicator("by_office", "By office", "table",
              f"SELECT s.office AS office, {REGION} AS region, count() AS declarations, "
              "countIf(s.selected) AS alerts, round(alerts / declarations, 4) AS alert_rate, "
              "round(sum(s.duty_at_risk_eur), 2) AS duty_at_risk_eur "
              "FROM (SELECT office, selected, duty_at_risk_eur FROM scores FINAL "
              f"WHERE $PERIOD(lodged_at)) AS s LEFT JOIN {REGIONS} AS r ON s.office = r.office "
              "GROUP BY office, region ORDER BY declarations DESC", limit=100),
    Indicator("by_chapter", "By HS chapter", "table",
              "SELECT chapter, count() AS declarations, countIf(selected) AS alerts, "
              "round(alerts / declarations, 4) AS alert_rate, "
              "round(sum(duty_at_risk_eur), 2) AS duty_at_risk_eur, "
              "round(sumIf(expected_recoverable_eur, selected), 2) AS expected_recoverable_eur "
              "FROM scores FINAL WHERE $PERIOD(lodged_at) GROUP BY chapter "
              "ORDER BY duty_at_risk_eur DESC", limit=100),
    Indicator("by_detector", "Alerts by detector", "barchart",
              f"SELECT {DETECTOR} AS detector, count() AS alerts, "
              "round(sum(expected_recoverable_eur), 2) AS expected_recoverable_eur "
              "FROM alerts FINAL WHERE $PERIOD(lodged_at) GROUP BY detector ORDER BY alerts DESC",
              columns=("alerts",)),
    Indicator("by_typology", "Infractions found, by typology", "table",
              "SELECT ifNull(typology, '(not stated)') AS typology, count() AS infractions, "
              "countIf(source = 'engine') AS found_by_engine, "
              "round(sum(recovered_eur), 2) AS recovered_eur "
              f"FROM {CONTROLS_BY_SOURCE} WHERE is_fraud GROUP BY typology "
              "ORDER BY infractions DESC", limit=50),
    Indicator("dead_letters_by_reason", "Dead letters by reason", "barchart",
              "SELECT reason, count() AS letters FROM dead_letters FINAL "
              "WHERE $PERIOD(received_at) GROUP BY reason ORDER BY letters DESC"),
)  # fmt: skip

PILOTE = Board(
    "vigie-management",
    "Vigie — Pilote Performance",
    STATS + SERIES + BREAKDOWNS,
    description="Management indicators of the risk engine and of the controls.",
)

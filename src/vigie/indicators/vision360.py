"""Vision 360: one operator's flows, history, risks and their fiscal impact.

Every indicator here is scoped: its SQL filters by ``$SCOPE(importer)`` (the operator of
an import, the exporter of an export), directly or through the operator's declarations,
so the web app can serve it to a company for its own identifiers only. The partner
country of a flow is the origin of an import and the destination of an export.

>>> VISION360.scoped, len(VISION360.indicators) >= 10
(True, True)
>>> DECLARATIONS.scoped and OPERATORS.scoped is False
True
"""

from __future__ import annotations

from vigie.indicators.pilote import REGIONS
from vigie.indicators.sql import Board, Indicator

PARTNER = "if(direction = 'export', ifNull(destination, ''), origin)"

OWN_DECLARATIONS = "(SELECT declaration_id FROM declarations WHERE $SCOPE(importer))"
"""The ids of the operator's declarations (control results carry no operator)."""

PROFILE = Indicator(
    "profile", "Operator profile", "stat",
    "SELECT countIf(direction = 'import') AS imports, countIf(direction = 'export') AS exports, "
    "round(sumIf(customs_value_eur, direction = 'import'), 2) AS import_value_eur, "
    "round(sumIf(customs_value_eur, direction = 'export'), 2) AS export_value_eur, "
    "uniqExact(hs6) AS products, uniqExact(office) AS offices "
    "FROM declarations FINAL WHERE $SCOPE(importer) AND $PERIOD(lodged_at)",
    width=12,
)  # fmt: skip

RISK = Indicator(
    "risk", "Risks and fiscal impact", "stat",
    "SELECT (SELECT count() FROM alerts FINAL WHERE $SCOPE(importer) AND $PERIOD(lodged_at)) "
    "AS alerts, (SELECT round(sum(duty_at_risk_eur), 2) FROM scores FINAL "
    "WHERE $SCOPE(importer) AND $PERIOD(lodged_at)) AS duty_at_risk_eur, "
    "(SELECT count() FROM control_results FINAL WHERE declaration_id IN "
    f"{OWN_DECLARATIONS} AND $PERIOD(controlled_at)) AS controls, "
    "(SELECT countIf(is_fraud) FROM control_results FINAL WHERE declaration_id IN "
    f"{OWN_DECLARATIONS} AND $PERIOD(controlled_at)) AS infractions, "
    "(SELECT round(sum(recovered_eur), 2) FROM control_results FINAL WHERE declaration_id IN "
    f"{OWN_DECLARATIONS} AND $PERIOD(controlled_at)) AS recovered_eur",
    width=12,
)  # fmt: skip

FLOWS = (
    Indicator("by_country", "Flows by partner country", "barchart",
              f"SELECT {PARTNER} AS country, "
              "round(sumIf(customs_value_eur, direction = 'import'), 2) AS imports_eur, "
              "round(sumIf(customs_value_eur, direction = 'export'), 2) AS exports_eur, "
              "count() AS declarations FROM declarations FINAL "
              "WHERE $SCOPE(importer) AND $PERIOD(lodged_at) GROUP BY country "
              "ORDER BY imports_eur + exports_eur DESC", limit=25, unit="currencyEUR",
              columns=("imports_eur", "exports_eur")),
    Indicator("by_region", "Flows by region (interregional directorate)", "barchart",
              "SELECT if(r.region = '', concat('(', d.office, ')'), r.region) AS region, "
              "round(sumIf(d.customs_value_eur, d.direction = 'import'), 2) AS imports_eur, "
              "round(sumIf(d.customs_value_eur, d.direction = 'export'), 2) AS exports_eur, "
              "count() AS declarations FROM (SELECT office, direction, customs_value_eur "
              "FROM declarations FINAL WHERE $SCOPE(importer) AND $PERIOD(lodged_at)) AS d "
              f"LEFT JOIN {REGIONS} AS r ON d.office = r.office GROUP BY region "
              "ORDER BY imports_eur + exports_eur DESC", unit="currencyEUR",
              columns=("imports_eur", "exports_eur")),
    Indicator("by_product", "Flows by product (HS chapter)", "barchart",
              "SELECT chapter, round(sumIf(customs_value_eur, direction = 'import'), 2) "
              "AS imports_eur, round(sumIf(customs_value_eur, direction = 'export'), 2) "
              "AS exports_eur, count() AS declarations FROM declarations FINAL "
              "WHERE $SCOPE(importer) AND $PERIOD(lodged_at) GROUP BY chapter "
              "ORDER BY imports_eur + exports_eur DESC", limit=20, unit="currencyEUR",
              columns=("imports_eur", "exports_eur")),
    Indicator("by_office", "Flows by customs office", "table",
              "SELECT d.office AS office, r.region_name AS region, count() AS declarations, "
              "round(sum(d.customs_value_eur), 2) AS value_eur FROM (SELECT office, "
              "customs_value_eur FROM declarations FINAL WHERE $SCOPE(importer) "
              f"AND $PERIOD(lodged_at)) AS d LEFT JOIN {REGIONS} AS r ON d.office = r.office "
              "GROUP BY office, region ORDER BY value_eur DESC", limit=50),
    Indicator("per_week", "Declared value per week", "timeseries",
              "SELECT toDateTime(toStartOfWeek(lodged_at)) AS time, "
              "sumIf(customs_value_eur, direction = 'import') AS imports_eur, "
              "sumIf(customs_value_eur, direction = 'export') AS exports_eur "
              "FROM declarations FINAL WHERE $SCOPE(importer) AND $PERIOD(lodged_at) "
              "GROUP BY time ORDER BY time", unit="currencyEUR"),
    Indicator("risk_per_week", "Risk and duty at risk per week", "timeseries",
              "SELECT toDateTime(toStartOfWeek(lodged_at)) AS time, avg(risk) AS mean_risk, "
              "max(risk) AS max_risk, sum(duty_at_risk_eur) AS duty_at_risk_eur "
              "FROM scores FINAL WHERE $SCOPE(importer) AND $PERIOD(lodged_at) "
              "GROUP BY time ORDER BY time", columns=("mean_risk", "max_risk")),
    Indicator("alerts", "Alerts", "table",
              "SELECT raised_at, declaration_id, commodity_code, round(risk, 3) AS risk, "
              "round(duty_at_risk_eur, 2) AS duty_at_risk_eur, selection, "
              "arrayStringConcat(reason_texts, '; ') AS reasons FROM alerts FINAL "
              "WHERE $SCOPE(importer) AND $PERIOD(lodged_at) ORDER BY risk DESC, declaration_id",
              limit=200, width=24),
    Indicator("control_outcomes", "Control outcomes", "table",
              "SELECT outcome, ifNull(typology, '') AS typology, count() AS controls, "
              "round(sum(recovered_eur), 2) AS recovered_eur FROM control_results FINAL "
              f"WHERE declaration_id IN {OWN_DECLARATIONS} AND $PERIOD(controlled_at) "
              "GROUP BY outcome, typology ORDER BY controls DESC", limit=50),
)  # fmt: skip

DECLARATIONS = Indicator(
    "declarations", "Declarations and their status", "table",
    "SELECT d.lodged_at AS lodged_at, d.declaration_id AS declaration_id, d.direction AS "
    "direction, "
    "d.commodity_code AS commodity_code, "
    "if(d.direction = 'export', ifNull(d.destination, ''), d.origin) AS partner, "
    "d.office AS office, round(d.customs_value_eur, 2) AS value_eur, "
    "round(s.risk, 3) AS risk, round(s.duty_at_risk_eur, 2) AS duty_at_risk_eur, "
    "multiIf(c.outcome != '', concat('controlled: ', c.outcome), s.selected, 'alerted', "
    "s.declaration_id != '', 'scored', 'awaiting score') AS status, "
    "round(c.recovered_eur, 2) AS recovered_eur "
    "FROM (SELECT declaration_id, lodged_at, direction, commodity_code, origin, destination, "
    "office, customs_value_eur FROM declarations FINAL "
    "WHERE $SCOPE(importer) AND $PERIOD(lodged_at)) AS d "
    "LEFT JOIN (SELECT declaration_id, risk, duty_at_risk_eur, selected FROM scores FINAL "
    "WHERE $SCOPE(importer) AND $PERIOD(lodged_at)) AS s ON d.declaration_id = s.declaration_id "
    "LEFT JOIN (SELECT declaration_id, outcome, recovered_eur FROM control_results FINAL "
    f"WHERE declaration_id IN {OWN_DECLARATIONS}) AS c ON d.declaration_id = c.declaration_id "
    "ORDER BY lodged_at DESC, declaration_id",
    limit=200, width=24,
)  # fmt: skip
"""Every declaration of the operator with its risk and status: the paginated, exportable list."""

VISION360 = Board(
    "vigie-vision360",
    "Vigie — Vision 360",
    (PROFILE, RISK, *FLOWS, DECLARATIONS),
    description="One operator: flows both ways by country, region and product, history, "
    "risks and their fiscal impact.",
)

OPERATORS = Indicator(
    "operators", "Operators", "table",
    "SELECT importer AS operator, countIf(direction = 'import') AS imports, "
    "countIf(direction = 'export') AS exports, round(sum(customs_value_eur), 2) AS value_eur, "
    "max(lodged_at) AS last_lodged_at FROM declarations FINAL "
    "WHERE $PERIOD(lodged_at) AND positionCaseInsensitive(importer, {q:String}) > 0 "
    "GROUP BY importer ORDER BY imports + exports DESC, operator",
    limit=50, width=24,
)  # fmt: skip
"""Operator search for customs staff (never served to a company: not scoped)."""

"""Minoration de valeur and Atypie: the detectors' own boards, for customs staff.

>>> MINORATION.uid, ATYPIE.uid, MINORATION.scoped
('vigie-minoration', 'vigie-atypie', False)
"""

from __future__ import annotations

from vigie.indicators.sql import Board, Indicator

MINORATION = Board(
    "vigie-minoration",
    "Vigie — Minoration de valeur",
    (
        Indicator(
            "below_50_of_reference",
            "Below 50 % of reference",
            "stat",
            "SELECT countIf(below_lowest_acceptable) AS below_half_reference, "
            "countIf(below_lowest_acceptable) / greatest(count(), 1) AS share FROM scores "
            "FINAL WHERE $PERIOD(lodged_at)",
            width=8,
        ),
        Indicator(
            "duty_at_risk",
            "Duty at risk",
            "stat",
            "SELECT sum(duty_at_risk_eur) AS duty_at_risk_eur FROM scores FINAL WHERE "
            "$PERIOD(lodged_at)",
            unit="currencyEUR",
            width=8,
        ),
        Indicator(
            "median_value_ratio",
            "Median value ratio",
            "stat",
            "SELECT median(value_ratio) AS median_ratio FROM scores FINAL WHERE "
            "$PERIOD(lodged_at) AND value_ratio IS NOT NULL",
            width=8,
        ),
        Indicator(
            "top_under_valued_flows_hs6_origin",
            "Top under-valued flows (HS6 x origin)",
            "table",
            "SELECT d.hs6 AS hs6, d.origin AS origin, count() AS declarations, "
            "round(median(s.value_ratio), 3) AS median_ratio, "
            "countIf(s.below_lowest_acceptable) AS below_half_reference, "
            "round(sum(s.duty_at_risk_eur), 2) AS duty_at_risk_eur FROM (SELECT "
            "declaration_id, value_ratio, below_lowest_acceptable, duty_at_risk_eur FROM "
            "scores FINAL WHERE $PERIOD(lodged_at) AND value_ratio IS NOT NULL) AS s INNER "
            "JOIN (SELECT declaration_id, hs6, origin FROM declarations FINAL WHERE "
            "$PERIOD(lodged_at)) AS d ON s.declaration_id = d.declaration_id GROUP BY hs6, "
            "origin HAVING below_half_reference > 0 ORDER BY duty_at_risk_eur DESC, "
            "below_half_reference DESC",
            limit=50,
            width=14,
        ),
        Indicator(
            "distribution_of_value_ratios",
            "Distribution of value ratios",
            "barchart",
            "SELECT toString(round(least(value_ratio, 3), 1)) AS ratio, count() AS "
            "declarations FROM scores FINAL WHERE $PERIOD(lodged_at) AND value_ratio IS NOT "
            "NULL GROUP BY ratio ORDER BY toFloat64(ratio)",
            width=10,
        ),
        Indicator(
            "duty_at_risk_per_day",
            "Duty at risk per day",
            "timeseries",
            "SELECT toStartOfDay(lodged_at) AS time, sum(duty_at_risk_eur) AS "
            "duty_at_risk_eur, countIf(below_lowest_acceptable) AS below_half_reference "
            "FROM scores FINAL WHERE $PERIOD(lodged_at) GROUP BY time ORDER BY time",
        ),
        Indicator(
            "importers_with_most_under_valuation",
            "Importers with most under-valuation",
            "table",
            "SELECT importer, count() AS declarations, countIf(below_lowest_acceptable) AS "
            "below_half_reference, round(median(value_ratio), 3) AS median_ratio, "
            "round(sum(duty_at_risk_eur), 2) AS duty_at_risk_eur FROM scores FINAL WHERE "
            "$PERIOD(lodged_at) AND value_ratio IS NOT NULL GROUP BY importer HAVING "
            "below_half_reference > 0 ORDER BY duty_at_risk_eur DESC, below_half_reference "
            "DESC",
            limit=50,
        ),
        Indicator(
            "most_under_valued_declarations",
            "Most under-valued declarations",
            "table",
            "SELECT lodged_at, declaration_id, importer, commodity_code, round(value_ratio, "
            "3) AS ratio, round(reference_unit_value, 2) AS reference_unit_value, "
            "valuation_unit AS unit, support_level, round(duty_at_risk_eur, 2) AS "
            "duty_at_risk_eur, selected FROM scores FINAL WHERE $PERIOD(lodged_at) AND "
            "value_ratio < 0.5 ORDER BY duty_at_risk_eur DESC, ratio",
            limit=200,
            width=24,
        ),
    ),
)

ATYPIE = Board(
    "vigie-atypie",
    "Vigie — Atypie",
    (
        Indicator(
            "atypical_declarations_score_0_5",
            "Atypical declarations (score ≥ 0.5)",
            "stat",
            "SELECT countIf(atypicality_score >= 0.5) AS atypical, "
            "countIf(atypicality_score >= 0.5) / greatest(count(), 1) AS share FROM scores "
            "FINAL WHERE $PERIOD(lodged_at)",
            width=12,
        ),
        Indicator(
            "atypicality_p50_p95_p99",
            "Atypicality p50 / p95 / p99",
            "timeseries",
            "SELECT toStartOfDay(lodged_at) AS time, quantile(0.5)(atypicality_score) AS "
            "p50, quantile(0.95)(atypicality_score) AS p95, "
            "quantile(0.99)(atypicality_score) AS p99 FROM scores FINAL WHERE "
            "$PERIOD(lodged_at) GROUP BY time ORDER BY time",
        ),
        Indicator(
            "distribution_of_atypicality_scores",
            "Distribution of atypicality scores",
            "barchart",
            "SELECT toString(floor(atypicality_score * 20) / 20) AS score, count() AS "
            "declarations FROM scores FINAL WHERE $PERIOD(lodged_at) GROUP BY score ORDER "
            "BY toFloat64(score)",
        ),
        Indicator(
            "features_behind_atypical_declarations",
            "Features behind atypical declarations",
            "table",
            "SELECT c.name AS feature, count() AS declarations, round(avg(c.weight), 3) AS "
            "mean_weight, round(avg(c.value), 3) AS mean_value FROM scores FINAL ARRAY JOIN "
            "contributions AS c WHERE $PERIOD(lodged_at) AND atypicality_score >= 0.5 GROUP "
            "BY feature ORDER BY declarations DESC",
            limit=30,
        ),
        Indicator(
            "reason_codes",
            "Reason codes",
            "barchart",
            "SELECT code, count() AS declarations FROM scores FINAL ARRAY JOIN reason_codes "
            "AS code WHERE $PERIOD(lodged_at) GROUP BY code ORDER BY declarations DESC",
            limit=30,
        ),
        Indicator(
            "atypical_flows_by_origin_and_chapter",
            "Atypical flows by origin and chapter",
            "table",
            "SELECT d.origin AS origin, d.chapter AS chapter, count() AS atypical, "
            "round(avg(s.atypicality_score), 3) AS mean_score FROM (SELECT declaration_id, "
            "atypicality_score FROM scores FINAL WHERE $PERIOD(lodged_at) AND "
            "atypicality_score >= 0.5) AS s INNER JOIN (SELECT declaration_id, origin, "
            "chapter FROM declarations FINAL WHERE $PERIOD(lodged_at)) AS d ON "
            "s.declaration_id = d.declaration_id GROUP BY origin, chapter ORDER BY atypical "
            "DESC",
            limit=50,
        ),
        Indicator(
            "most_atypical_declarations",
            "Most atypical declarations",
            "table",
            "SELECT lodged_at, declaration_id, importer, commodity_code, "
            "round(atypicality_score, 3) AS atypicality, round(risk, 3) AS risk, "
            "arrayStringConcat(arrayMap(c -> c.name, contributions), ', ') AS features, "
            "selected FROM scores FINAL WHERE $PERIOD(lodged_at) ORDER BY atypicality_score "
            "DESC",
            limit=200,
            width=24,
        ),
    ),
)

"""The indicators' SQL: one query each, markers that expand fully, scopes that hold."""

from __future__ import annotations

import re

import pytest

from vigie.indicators import BOARDS, DECLARATIONS, OPERATORS, PILOTE, VISION360, Indicator

ALL = [i for board in BOARDS.values() for i in board.indicators] + [DECLARATIONS, OPERATORS]
PARAMETER = re.compile(r"\{(\w+):[^}]+\}")


@pytest.mark.parametrize("indicator", ALL, ids=lambda i: i.key)
def test_markers_expand_fully(indicator: Indicator) -> None:
    for sql in (indicator.web_sql(), indicator.web_sql(paginated=True)):
        assert "$" not in sql, sql
        names = set(PARAMETER.findall(sql))
        assert names <= {"start", "end", "scope", "budget", "limit", "offset", "q"}, names
    grafana = indicator.grafana_sql()
    assert "{scope" not in grafana and "$PERIOD" not in grafana and "$SCOPE" not in grafana


@pytest.mark.parametrize("indicator", VISION360.indicators, ids=lambda i: i.key)
def test_every_vision360_query_is_filtered_by_the_scope(indicator: Indicator) -> None:
    sql = indicator.web_sql()
    assert indicator.scoped
    for table in ("declarations", "scores", "alerts", "control_results"):
        for match in re.finditer(rf"FROM {table}\b", sql):
            clause = sql[match.end() : match.end() + 300]
            where = clause.split("WHERE", 1)[1] if "WHERE" in clause else ""
            assert "{scope:Array(String)}" in where, f"{indicator.key}: {table} unscoped"


def test_staff_only_queries_are_not_scoped() -> None:
    assert not any(i.scoped for i in PILOTE.indicators)
    assert not OPERATORS.scoped and "{q:String}" in OPERATORS.web_sql()


def test_tables_paginate_and_never_carry_their_own_limit() -> None:
    for indicator in ALL:
        assert " LIMIT " not in indicator.sql, indicator.key
    paginated = DECLARATIONS.web_sql(paginated=True)
    assert paginated.endswith("LIMIT {limit:UInt32} OFFSET {offset:UInt32}")


def test_keys_are_unique_within_a_board() -> None:
    for board in BOARDS.values():
        keys = [i.key for i in board.indicators]
        assert len(keys) == len(set(keys)), board.uid
    with pytest.raises(KeyError):
        PILOTE["no-such-indicator"]

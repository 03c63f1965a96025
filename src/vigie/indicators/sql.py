"""An indicator is one SQL query written once, rendered for Grafana or for the web app.

The SQL carries three markers, expanded differently for each reader:

- ``$PERIOD(col)``: the period filter. Grafana: ``$__timeFilter(col)``; the web app:
  ``col >= {start:DateTime64(3, 'UTC')} AND col < {end:DateTime64(3, 'UTC')}``, bound
  by ClickHouse as query parameters.
- ``$SCOPE(col)``: the operators a reader may see. Grafana (customs staff, one operator
  chosen in the ``importer`` variable): ``col = ${importer:sqlstring}``; the web app:
  ``col IN {scope:Array(String)}``, the list computed on the server from the account.
- ``$BUDGET``: the engine's inspection budget (a share of declarations). Grafana: the
  ``budget`` variable; the web app: ``{budget:Float64}``.

A table indicator never ends with its own LIMIT: Grafana gets ``LIMIT <limit>``, the web
app ``LIMIT {limit:UInt32} OFFSET {offset:UInt32}`` (pagination).

Examples
--------
>>> flows = Indicator("flows", "Flows", "table",
...     "SELECT origin, count() AS n FROM declarations FINAL "
...     "WHERE $SCOPE(importer) AND $PERIOD(lodged_at) GROUP BY origin ORDER BY n DESC",
...     limit=20)
>>> print(flows.grafana_sql())  # doctest: +NORMALIZE_WHITESPACE
SELECT origin, count() AS n FROM declarations FINAL WHERE importer = ${importer:sqlstring}
AND $__timeFilter(lodged_at) GROUP BY origin ORDER BY n DESC LIMIT 20
>>> print(flows.web_sql(paginated=True))  # doctest: +NORMALIZE_WHITESPACE
SELECT origin, count() AS n FROM declarations FINAL WHERE importer IN {scope:Array(String)}
AND lodged_at >= {start:DateTime64(3, 'UTC')} AND lodged_at < {end:DateTime64(3, 'UTC')}
GROUP BY origin ORDER BY n DESC LIMIT {limit:UInt32} OFFSET {offset:UInt32}
>>> flows.scoped
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["stat", "timeseries", "table", "barchart"]

_PERIOD = re.compile(r"\$PERIOD\(([A-Za-z_][\w.]*)\)")
_SCOPE = re.compile(r"\$SCOPE\(([A-Za-z_][\w.]*)\)")
_WIDTH: dict[str, int] = {"stat": 4, "timeseries": 12, "table": 12, "barchart": 12}
_HEIGHT: dict[str, int] = {"stat": 4, "timeseries": 8, "table": 9, "barchart": 8}


@dataclass(frozen=True)
class Indicator:
    """One query: its key, title, kind of panel, SQL with markers, and presentation hints.

    ``columns`` lists the columns a chart plots (default: every column but the first);
    ``unit`` is Grafana's unit of the values; ``width`` the panel's width in Grafana's
    24-column grid; ``limit`` the rows of a table.
    """

    key: str
    title: str
    kind: Kind
    sql: str
    limit: int | None = None
    unit: str | None = None
    width: int | None = None
    description: str = ""
    columns: tuple[str, ...] = ()

    @property
    def scoped(self) -> bool:
        """Whether the query filters by operator (a company may read it)."""
        return _SCOPE.search(self.sql) is not None

    @property
    def panel_width(self) -> int:
        return self.width or _WIDTH[self.kind]

    @property
    def panel_height(self) -> int:
        return _HEIGHT[self.kind]

    def grafana_sql(self) -> str:
        """The query with Grafana's and the ClickHouse plugin's macros."""
        sql = _PERIOD.sub(r"$__timeFilter(\1)", self.sql)
        sql = _SCOPE.sub(r"\1 = ${importer:sqlstring}", sql)
        sql = sql.replace("$BUDGET", "${budget}")
        return f"{sql} LIMIT {self.limit}" if self.limit else sql

    def web_sql(self, *, paginated: bool = False) -> str:
        """The query with ClickHouse query parameters, bound by the web app."""
        sql = _PERIOD.sub(
            r"\1 >= {start:DateTime64(3, 'UTC')} AND \1 < {end:DateTime64(3, 'UTC')}", self.sql
        )
        sql = _SCOPE.sub(r"\1 IN {scope:Array(String)}", sql)
        sql = sql.replace("$BUDGET", "{budget:Float64}")
        if paginated:
            return f"{sql} LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}"
        return f"{sql} LIMIT {self.limit}" if self.limit else sql


def whole_history(sql: str) -> str:
    """The query over every period: each ``$PERIOD(col)`` filter made always true.

    >>> whole_history("SELECT count() FROM alerts WHERE $PERIOD(raised_at)")
    'SELECT count() FROM alerts WHERE 1'
    """
    return _PERIOD.sub("1", sql)


@dataclass(frozen=True)
class Board:
    """A set of indicators shown together: one Grafana dashboard, one web page."""

    uid: str
    title: str
    indicators: tuple[Indicator, ...]
    description: str = ""
    tags: tuple[str, ...] = field(default=("vigie",))

    def __getitem__(self, key: str) -> Indicator:
        for indicator in self.indicators:
            if indicator.key == key:
                return indicator
        raise KeyError(f"{self.uid} has no indicator {key!r}")

    @property
    def scoped(self) -> bool:
        """Whether every indicator filters by operator (a per-company board)."""
        return all(indicator.scoped for indicator in self.indicators)

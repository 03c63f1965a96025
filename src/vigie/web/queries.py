"""Indicators run for a request: the period, the scope, pagination, and chart series.

:func:`run` is the one way the web app reads an indicator: a scoped indicator must be
given a :class:`~vigie.web.access.Scope`, and an unscoped one (Pilote, staff only) must
not; both bind every value as a ClickHouse parameter.

Examples
--------
>>> p = Period.parse("2026-01-01", "2026-01-31", default=None)
>>> p.start.isoformat(), p.end.isoformat(), p.days
('2026-01-01T00:00:00+00:00', '2026-02-01T00:00:00+00:00', 31)
>>> chart(Rows(("country", "imports_eur", "declarations"), [("CN", 10.0, 2), ("US", 5.0, 1)]),
...       ("imports_eur",))
{'labels': ['CN', 'US'], 'series': [{'name': 'imports_eur', 'values': [10.0, 5.0]}]}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from vigie.indicators import Indicator
from vigie.web.access import Scope
from vigie.web.warehouse import Rows, Warehouse

MAX_DAYS = 3 * 366
PAGE_SIZES = (25, 50, 100, 200)
CSV_MAX_ROWS = 100_000


class BadRequestError(ValueError):
    """A request's parameters cannot be read (a period backwards or too long)."""


@dataclass(frozen=True)
class Period:
    """A half-open UTC period ``[start, end)`` of whole days."""

    start: datetime
    end: datetime

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()

    @classmethod
    def of_days(cls, first: date, last: date) -> Period:
        if last < first:
            raise BadRequestError("the period ends before it starts")
        if (last - first).days >= MAX_DAYS:
            raise BadRequestError(f"a period spans at most {MAX_DAYS} days")
        start = datetime(first.year, first.month, first.day, tzinfo=UTC)
        return cls(start, start + timedelta(days=(last - first).days + 1))

    @classmethod
    def parse(cls, first: str | None, last: str | None, default: Period | None) -> Period:
        """The period of ``from``/``to`` query values (YYYY-MM-DD); missing ends from
        ``default`` (the data's own span)."""
        fallback = default or cls.last_days(30)
        try:
            start = date.fromisoformat(first) if first else fallback.first_day
            end = date.fromisoformat(last) if last else fallback.last_day
        except ValueError as exc:
            raise BadRequestError(f"dates are YYYY-MM-DD: {exc}") from exc
        return cls.of_days(start, end)

    @classmethod
    def last_days(cls, days: int) -> Period:
        today = datetime.now(UTC).date()
        return cls.of_days(today - timedelta(days=days - 1), today)


def data_period(warehouse: Warehouse, scope: Scope | None) -> Period | None:
    """The days the data of ``scope`` (all data for None) spans, if any."""
    where = "WHERE importer IN {scope:Array(String)}" if scope else ""
    params: dict[str, Any] = {"scope": list(scope.operators)} if scope else {}
    rows = warehouse.query(
        f"SELECT min(lodged_at) AS first, max(lodged_at) AS last, count() AS n "
        f"FROM declarations {where}",
        params,
    ).first()
    if not rows["n"]:
        return None
    first = datetime.fromisoformat(rows["first"]).date()
    last = datetime.fromisoformat(rows["last"]).date()
    return Period.of_days(first, last)


def run(
    warehouse: Warehouse,
    indicator: Indicator,
    period: Period,
    scope: Scope | None,
    *,
    page: tuple[int, int] | None = None,
    budget: float = 0.05,
    extra: dict[str, Any] | None = None,
) -> Rows:
    """The rows of ``indicator`` for ``period`` and ``scope``; ``page`` is (limit, offset)."""
    if indicator.scoped != (scope is not None):
        raise TypeError(f"{indicator.key}: a scoped indicator needs a scope, and only it")
    params: dict[str, Any] = {"start": period.start, "end": period.end, "budget": budget}
    if scope is not None:
        params["scope"] = list(scope.operators)
    if page is not None:
        params["limit"], params["offset"] = page
    params.update(extra or {})
    return warehouse.query(indicator.web_sql(paginated=page is not None), params)


def chart(rows: Rows, columns: Sequence[str] = ()) -> dict[str, Any]:
    """Labels (the first column) and one series per plotted column; a text column after
    the first splits the rows into one series per value (long to wide)."""
    if not rows.columns:
        return {"labels": [], "series": []}
    label = rows.columns[0]
    records = rows.records()
    labels = list(dict.fromkeys(str(r[label])[:10] if label == "time" else r[label]
                                for r in records))  # fmt: skip
    split = (
        next((c for c in rows.columns[1:] if isinstance(records[0][c], str)), None)
        if (records)
        else None
    )
    if split is not None:
        value = next(c for c in rows.columns[1:] if c != split)
        by_name: dict[str, dict[Any, Any]] = {}
        for r in records:
            key = str(r[label])[:10] if label == "time" else r[label]
            by_name.setdefault(str(r[split]), {})[key] = r[value]
        series = [{"name": n, "values": [v.get(x) for x in labels]} for n, v in by_name.items()]
        return {"labels": labels, "series": series}
    plotted = list(columns) or [c for c in rows.columns[1:]]
    series = [{"name": c, "values": [r[c] for r in records]} for c in plotted]
    return {"labels": labels, "series": series}

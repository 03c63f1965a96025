"""The JSON API (and CSV exports): Vision 360 of one operator, operator search, Pilote.

Every route takes the account from its session or token; company routes resolve the
operator through :func:`vigie.web.access.scope_for`, so a company reads its own
identifiers only and another company's identifier answers 404 exactly like one that
does not exist. Tables are paginated (``page``, ``page_size``) and exported as CSV with
``format=csv`` (all rows of the period, up to 100,000).
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from vigie.indicators import DECLARATIONS, OPERATORS, PILOTE, VISION360, Indicator
from vigie.web.access import NotFoundError, Scope, require_customs, scope_for
from vigie.web.auth import Context, CurrentAccount, context
from vigie.web.queries import CSV_MAX_ROWS, Period, data_period, run
from vigie.web.warehouse import Rows

router = APIRouter(prefix="/api", tags=["data"])

Ctx = Annotated[Context, Depends(context)]
From = Annotated[str | None, Query(alias="from", description="First day, YYYY-MM-DD")]
To = Annotated[str | None, Query(alias="to", description="Last day, YYYY-MM-DD")]
Page = Annotated[int, Query(ge=1, le=100_000)]
PageSize = Annotated[int, Query(ge=1, le=200)]
Format = Annotated[Literal["json", "csv"], Query()]


def company_scope(request: Request, ctx: Context, account: Any, operator: str) -> Scope:
    """The scope of a request for ``operator``, or 404 (see :mod:`vigie.web.access`)."""
    request.state.operator = operator
    return scope_for(account, operator, exists=lambda op: operator_exists(ctx, op))


def operator_exists(ctx: Context, operator: str) -> bool:
    found = ctx.warehouse.query(
        "SELECT count() AS n FROM declarations WHERE importer = {operator:String}",
        {"operator": operator},
    ).first()
    return bool(found["n"])


def period_of(ctx: Context, scope: Scope | None, first: str | None, last: str | None) -> Period:
    """The requested period; a missing end defaults to the span of the scope's data."""
    default = None if first and last else data_period(ctx.warehouse, scope)
    return Period.parse(first, last, default)


def answer(rows: Rows, fmt: str, name: str, meta: dict[str, Any]) -> Any:
    """The rows as JSON (with ``meta``) or as a CSV attachment."""
    if fmt == "csv":
        return csv_response(rows, name)
    return {**meta, "columns": list(rows.columns), "rows": [list(r) for r in rows.rows]}


def csv_response(rows: Rows, name: str) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(rows.columns)
    writer.writerows([_cell(v) for v in row] for row in rows.rows)
    headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is quoted (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _describe(indicator: Indicator, period: Period) -> dict[str, Any]:
    return {
        "indicator": indicator.key,
        "title": indicator.title,
        "period": {"from": period.first_day.isoformat(), "to": period.last_day.isoformat()},
    }


@router.get("/me")
def me(account: CurrentAccount) -> dict[str, Any]:
    """The logged-in account: name, role and (companies) its operators."""
    return {"account": account.name, "role": account.role, "operators": list(account.operators)}


@router.get("/companies/{operator}/indicators/{key}")
def company_indicator(
    operator: str, key: str, request: Request, account: CurrentAccount, ctx: Ctx,
    first: From = None, last: To = None, format: Format = "json",
) -> Any:  # fmt: skip
    """One Vision 360 indicator of ``operator`` for the period."""
    scope = company_scope(request, ctx, account, operator)
    indicator = _indicator(key)
    period = period_of(ctx, scope, first, last)
    rows = run(ctx.warehouse, indicator, period, scope)
    return answer(rows, format, f"{operator}-{key}", _describe(indicator, period))


@router.get("/companies/{operator}/declarations")
def company_declarations(
    operator: str, request: Request, account: CurrentAccount, ctx: Ctx,
    first: From = None, last: To = None, page: Page = 1, page_size: PageSize = 25,
    format: Format = "json",
) -> Any:  # fmt: skip
    """The operator's declarations with risk and status, newest first, a page at a time."""
    scope = company_scope(request, ctx, account, operator)
    period = period_of(ctx, scope, first, last)
    limit, offset = (CSV_MAX_ROWS, 0) if format == "csv" else (page_size, (page - 1) * page_size)
    rows = run(ctx.warehouse, DECLARATIONS, period, scope, page=(limit, offset))
    meta = {**_describe(DECLARATIONS, period), "page": page, "page_size": page_size}
    return answer(rows, format, f"{operator}-declarations", meta)


@router.get("/operators")
def operators(
    request: Request, account: CurrentAccount, ctx: Ctx,
    q: Annotated[str, Query(max_length=64)] = "", first: From = None, last: To = None,
    page: Page = 1, page_size: PageSize = 50, format: Format = "json",
) -> Any:  # fmt: skip
    """Operators whose identifier contains ``q`` (customs staff only)."""
    require_customs(account)
    period = period_of(ctx, None, first, last)
    page_at = (CSV_MAX_ROWS, 0) if format == "csv" else (page_size, (page - 1) * page_size)
    rows = run(ctx.warehouse, OPERATORS, period, None, page=page_at, extra={"q": q})
    return answer(rows, format, "operators", {**_describe(OPERATORS, period), "q": q})


@router.get("/pilote/{key}")
def pilote(
    key: str, account: CurrentAccount, ctx: Ctx,
    first: From = None, last: To = None, format: Format = "json",
) -> Any:  # fmt: skip
    """One Pilote performance indicator for the period (customs staff only)."""
    require_customs(account)
    try:
        indicator = PILOTE[key]
    except KeyError:
        raise NotFoundError() from None
    period = period_of(ctx, None, first, last)
    rows = run(ctx.warehouse, indicator, period, None, budget=ctx.settings.engine.budget)
    return answer(rows, format, f"pilote-{key}", _describe(indicator, period))


def _indicator(key: str) -> Indicator:
    try:
        return VISION360[key]
    except KeyError:
        raise NotFoundError() from None

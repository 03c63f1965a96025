"""The HTML pages: a company's Vision 360, the operator search, Pilote performance.

Pages are rendered on the server from the same indicators as the API; each chart's data
travels in the page as JSON (``<script type="application/json">``) and is drawn in the
browser by Chart.js, shipped with the package (no CDN). Tables link to their CSV export.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vigie.indicators import DECLARATIONS, OPERATORS, PILOTE, VISION360, Indicator
from vigie.web.access import Scope, require_customs
from vigie.web.api import From, To, company_scope, period_of
from vigie.web.auth import Context, CurrentAccount, context, csrf_for_session
from vigie.web.queries import PAGE_SIZES, Period, chart, run

router = APIRouter(include_in_schema=False)
Ctx = Annotated[Context, Depends(context)]


@router.get("/")
def home(account: CurrentAccount) -> Response:
    if account.is_customs:
        return RedirectResponse("/pilote", status_code=303)
    return RedirectResponse(f"/companies/{account.operators[0]}", status_code=303)


@router.get("/companies/{operator}", response_class=HTMLResponse)
def company(
    operator: str, request: Request, account: CurrentAccount, ctx: Ctx,
    first: From = None, last: To = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 25,
) -> Response:  # fmt: skip
    scope = company_scope(request, ctx, account, operator)
    period = period_of(ctx, scope, first, last)
    board = [i for i in VISION360.indicators if i is not DECLARATIONS]
    page_size = page_size if page_size in PAGE_SIZES else PAGE_SIZES[0]
    rows = run(ctx.warehouse, DECLARATIONS, period, scope,
               page=(page_size + 1, (page - 1) * page_size))  # fmt: skip
    declarations = {
        "columns": rows.columns,
        "rows": rows.rows[:page_size],
        "page": page,
        "page_size": page_size,
        "has_next": len(rows.rows) > page_size,
    }
    view = _board(ctx, board, period, scope)
    return _render(request, ctx, account, "company.html", {
        "operator": operator, "period": period, "declarations": declarations, **view,
        "base": f"/companies/{operator}", "api": f"/api/companies/{operator}",
    })  # fmt: skip


@router.get("/operators", response_class=HTMLResponse)
def operators(
    request: Request, account: CurrentAccount, ctx: Ctx,
    q: Annotated[str, Query(max_length=64)] = "", first: From = None, last: To = None,
) -> Response:  # fmt: skip
    require_customs(account)
    period = period_of(ctx, None, first, last)
    rows = run(ctx.warehouse, OPERATORS, period, None, page=(50, 0), extra={"q": q})
    return _render(request, ctx, account, "operators.html",
                   {"q": q, "period": period, "rows": rows, "indicator": OPERATORS})  # fmt: skip


@router.get("/pilote", response_class=HTMLResponse)
def pilote(
    request: Request, account: CurrentAccount, ctx: Ctx, first: From = None, last: To = None
) -> Response:
    require_customs(account)
    period = period_of(ctx, None, first, last)
    view = _board(ctx, list(PILOTE.indicators), period, None)
    return _render(request, ctx, account, "pilote.html",
                   {"period": period, **view, "base": "/pilote", "api": "/api/pilote"})  # fmt: skip


def _board(
    ctx: Context, indicators: list[Indicator], period: Period, scope: Scope | None
) -> dict[str, Any]:
    stats, charts, tables = [], [], []
    budget = ctx.settings.engine.budget
    for indicator in indicators:
        rows = run(ctx.warehouse, indicator, period, scope, budget=budget)
        if indicator.kind == "stat":
            stats.append((indicator, rows.first()))
        elif indicator.kind == "table":
            tables.append((indicator, rows))
        else:
            data = chart(rows, indicator.columns)
            payload = {"kind": indicator.kind, "unit": indicator.unit, **data}
            charts.append((indicator, orjson.dumps(payload).decode()))
    return {"stats": stats, "charts": charts, "tables": tables}


def _render(
    request: Request, ctx: Context, account: Any, template: str, page: dict[str, Any]
) -> Response:
    page = {**page, "account": account, "csrf": csrf_for_session(request, ctx)}
    return ctx.templates.TemplateResponse(request, template, page)

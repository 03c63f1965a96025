"""The FastAPI application: routes, error answers, security headers, the audit trail.

:func:`create_app` takes everything it uses (settings, accounts, signing keys, the
warehouse), so tests build it around a real chDB warehouse and a real accounts file.
OpenAPI is served at ``/openapi.json`` and ``/docs``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from vigie.settings import Settings
from vigie.web import api, auth, pages
from vigie.web.access import ForbiddenError, NotFoundError
from vigie.web.accounts import AccountStore
from vigie.web.audit import audit_middleware
from vigie.web.auth import Context, LoginRequiredError
from vigie.web.queries import BadRequestError
from vigie.web.tokens import Keys
from vigie.web.warehouse import Warehouse, WarehouseUnavailableError

HERE = Path(__file__).resolve().parent
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def create_app(
    settings: Settings,
    warehouse: Warehouse,
    accounts: AccountStore | None = None,
    keys: Keys | None = None,
) -> FastAPI:
    """The web application over ``warehouse``."""
    app = FastAPI(
        title="Vigie — Vision 360 and Pilote performance",
        description="Customs flows, risks and management indicators, read from ClickHouse. "
        "Authenticate with POST /api/token, then send Authorization: Bearer <token>.",
        version="1",
    )
    app.state.context = Context(
        settings=settings,
        accounts=accounts or AccountStore(settings.accounts_path),
        keys=keys or Keys.from_file(settings.web_dir / "secret.key"),
        warehouse=warehouse,
        templates=_templates(),
    )
    app.include_router(auth.router)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _errors(app)
    app.middleware("http")(_security_headers)
    app.middleware("http")(audit_middleware(warehouse))
    return app


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    response.headers.update(SECURITY_HEADERS)
    if not request.url.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


def _errors(app: FastAPI) -> None:
    def page_or_json(request: Request, status: int, detail: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": detail}, status_code=status)
        ctx: Context = request.app.state.context
        page = {"status": status, "detail": detail, "account": None, "csrf": ""}
        return ctx.templates.TemplateResponse(request, "error.html", page, status_code=status)

    async def not_found(request: Request, exc: Exception) -> Response:
        return page_or_json(request, 404, "Not Found")

    async def forbidden(request: Request, exc: Exception) -> Response:
        return page_or_json(request, 403, "Customs staff only")

    async def bad_request(request: Request, exc: Exception) -> Response:
        return page_or_json(request, 400, str(exc))

    async def unavailable(request: Request, exc: Exception) -> Response:
        return page_or_json(request, 503, "The warehouse is unavailable")

    async def login_required(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"detail": "Not authenticated"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return RedirectResponse("/login", status_code=303)

    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(ForbiddenError, forbidden)
    app.add_exception_handler(BadRequestError, bad_request)
    app.add_exception_handler(WarehouseUnavailableError, unavailable)
    app.add_exception_handler(LoginRequiredError, login_required)


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["figure"] = figure
    return templates


def figure(value: Any, unit: str | None = None) -> str:
    """A value as a person reads it in a table or a stat.

    >>> figure(1234567.891), figure(0.0423, "percentunit"), figure(None), figure(12)
    ('1,234,567.89', '4.2 %', '-', '12')
    >>> figure("2026-03-02T08:15:00Z"), figure("2026-03-02T08:15:07.874000Z")
    ('2026-03-02 08:15', '2026-03-02 08:15')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "percentunit" and isinstance(value, int | float):
        return f"{value * 100:.1f} %"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str) and 20 <= len(value) <= 27 and value.endswith("Z"):
        try:
            return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return value
    return str(value)

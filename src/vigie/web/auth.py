"""Logging in and out, API tokens, and the account behind each request.

A request is authenticated by its session cookie (the browser) or by an
``Authorization: Bearer`` token (``POST /api/token``); both are the same signed,
expiring token (:mod:`vigie.web.tokens`). Forms (login, logout) carry a CSRF token;
the session cookie is HttpOnly and SameSite=Strict. A failed login says only that the
name or the password is wrong, after the same Argon2 work either way.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from vigie.settings import Settings
from vigie.web.accounts import Account, AccountStore
from vigie.web.tokens import Keys, fingerprint
from vigie.web.warehouse import Warehouse

SESSION_COOKIE = "vigie_session"
NONCE_COOKIE = "vigie_csrf"


@dataclass(frozen=True)
class Context:
    """What every request handler needs: settings, accounts, keys, warehouse, templates."""

    settings: Settings
    accounts: AccountStore
    keys: Keys
    warehouse: Warehouse
    templates: Jinja2Templates

    @property
    def lifetime_s(self) -> float:
        return self.settings.web_session_hours * 3600


class LoginRequiredError(Exception):
    """No valid session or token: 401 for the API, the login page for a person."""


def context(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


def _token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(SESSION_COOKIE, "")


def current_account(request: Request, ctx: Annotated[Context, Depends(context)]) -> Account:
    """The account of a valid, unexpired token whose account still has that password."""
    claim = ctx.keys.read_session(_token(request), now=time.time())
    account = ctx.accounts.get(claim.account) if claim else None
    if claim is None or account is None or claim.fingerprint != fingerprint(account.password_hash):
        raise LoginRequiredError()
    request.state.account, request.state.role = account.name, account.role
    return account


CurrentAccount = Annotated[Account, Depends(current_account)]
router = APIRouter()


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Token(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_in: int
    role: str
    operators: list[str]


@router.post("/api/token", tags=["auth"])
def api_token(
    credentials: Credentials, request: Request, ctx: Annotated[Context, Depends(context)]
) -> Token:
    """A bearer token for the API, valid for the session lifetime."""
    request.state.account = f"login:{credentials.username[:64]}"
    account = ctx.accounts.verify(credentials.username, credentials.password)
    if account is None:
        raise LoginRequiredError()
    request.state.account, request.state.role = account.name, account.role
    token = ctx.keys.session(account.name, account.password_hash, time.time(), ctx.lifetime_s)
    return Token(token=token, expires_in=int(ctx.lifetime_s), role=account.role,
                 operators=list(account.operators))  # fmt: skip


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, ctx: Annotated[Context, Depends(context)]) -> Response:
    return _login_form(request, ctx, error=None, status=200)


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    ctx: Annotated[Context, Depends(context)],
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    request.state.account = f"login:{username}"
    if not ctx.keys.check_csrf(csrf, request.cookies.get(NONCE_COOKIE, "")):
        return _login_form(request, ctx, error="The form expired: please try again.", status=403)
    account = ctx.accounts.verify(username, password)
    if account is None:
        return _login_form(request, ctx, error="Wrong name or password.", status=401)
    request.state.account, request.state.role = account.name, account.role
    token = ctx.keys.session(account.name, account.password_hash, time.time(), ctx.lifetime_s)
    response = RedirectResponse("/", status_code=303)
    _set_cookie(response, ctx, SESSION_COOKIE, token, int(ctx.lifetime_s))
    response.delete_cookie(NONCE_COOKIE, path="/")
    return response


@router.post("/logout", include_in_schema=False)
def logout(
    request: Request,
    account: CurrentAccount,
    ctx: Annotated[Context, Depends(context)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    if not ctx.keys.check_csrf(csrf, _token(request)):
        return JSONResponse({"detail": "invalid CSRF token"}, status_code=403)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def csrf_for_session(request: Request, ctx: Context) -> str:
    """The CSRF token of the forms of a logged-in page."""
    return ctx.keys.csrf(_token(request))


def _login_form(request: Request, ctx: Context, error: str | None, status: int) -> Response:
    nonce = secrets.token_urlsafe(24)
    page: dict[str, Any] = {"csrf": ctx.keys.csrf(nonce), "error": error, "account": None}
    response = ctx.templates.TemplateResponse(request, "login.html", page, status_code=status)
    _set_cookie(response, ctx, NONCE_COOKIE, nonce, 3600)
    return response


def _set_cookie(response: Response, ctx: Context, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=ctx.settings.web_secure_cookies,
    )

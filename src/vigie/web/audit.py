"""Every request to the web app, written to the ``web_audit`` table before its answer leaves.

One row per request: its id (also sent as ``X-Request-Id``), the time, the account and
role (``-`` before login; ``login:<name>`` for a login attempt), method, path, query
string, status, the operator the request named, the client's address and user agent,
and the time taken. The row is written synchronously: if it cannot be written, the
request is answered 503 instead (no access goes unrecorded).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from vigie.sinks.warehouse.rows import AUDIT
from vigie.web.warehouse import Warehouse

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
_TEXT = 512


def audit_middleware(warehouse: Warehouse) -> Callable[[Request, Handler], Awaitable[Response]]:
    """An HTTP middleware writing one audit row per request."""

    async def middleware(request: Request, call_next: Handler) -> Response:
        request_id = uuid.uuid4().hex
        request.state.request_id = request_id
        began = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:
            await _write(warehouse, _row(request, request_id, 500, began))
            raise
        try:
            await _write(warehouse, _row(request, request_id, response.status_code, began))
        except Exception:  # the driver's errors vary by backend: chDB or HTTP
            log.exception("audit row of request %s not written: refusing the answer", request_id)
            return PlainTextResponse("audit unavailable", status_code=503)
        response.headers["X-Request-Id"] = request_id
        return response

    return middleware


async def _write(warehouse: Warehouse, row: list[Any]) -> None:
    await run_in_threadpool(warehouse.insert, AUDIT.name, [row], AUDIT.columns)


def _row(request: Request, request_id: str, status: int, began: float) -> list[Any]:
    return [
        request_id,
        datetime.now(UTC),
        getattr(request.state, "account", "-"),
        getattr(request.state, "role", "-"),
        request.method,
        request.url.path[:_TEXT],
        request.url.query[:_TEXT],
        status,
        str(getattr(request.state, "operator", ""))[:_TEXT],
        request.client.host if request.client else "",
        request.headers.get("user-agent", "")[:_TEXT],
        round((time.perf_counter() - began) * 1000, 3),
    ]

"""HTTP endpoints of the worker, served by Faust's web server on ``worker_web_port``.

* ``GET /health``: 200 while the process runs its event loop.
* ``GET /ready``: 200 once the group has assigned partitions and each one's model is
  restored, 503 before that or during a rebalance.
* ``GET /metrics``: Prometheus text format (:mod:`vigie.worker.metrics`).
* ``POST /controls``: control results (one JSON object, a JSON array, or JSON lines),
  bearer-token authenticated with ``Settings.controls_token``; validated, then produced to
  ``control-results`` keyed by declaration id. 401 without the right token, 503 when no
  token is configured (the endpoint is disabled), 422 with the errors when a record is
  invalid (nothing is produced then).

Examples
--------
>>> authorized("Bearer s3cret", "s3cret"), authorized("Bearer nope", "s3cret")
(True, False)
>>> authorized(None, "s3cret"), authorized("s3cret", "s3cret")
(False, False)
>>> body = b'{"declaration_id": "D-1", "controlled_at": "2026-03-09T00:00:00Z",'
>>> body += b' "outcome": "compliant", "selection": "random_audit"}'
>>> [r.outcome for r in parse_controls(body)]
['compliant']
>>> try:
...     parse_controls(b'[{"declaration_id": "D-1"}]')
... except DecodeError as e:
...     print(e.reason, e.errors[0]["loc"][:1])
schema [0]
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

import faust
import orjson

from vigie.contracts.codec import decode_object, encode
from vigie.contracts.schemas import ControlResult
from vigie.errors import DecodeError
from vigie.worker.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from vigie.worker.app import Runtime

MAX_BODY_BYTES = 4 * 1024 * 1024


def authorized(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries the bearer ``token`` (constant time)."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].strip().encode(), token.encode())


def parse_controls(body: bytes) -> list[ControlResult]:
    """Control results from a JSON object, a JSON array or JSON lines; all or nothing."""
    try:
        parsed = orjson.loads(body)
        items = parsed if isinstance(parsed, list) else [parsed]
    except orjson.JSONDecodeError:
        try:
            items = [orjson.loads(line) for line in body.splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            raise DecodeError(
                "invalid_json", [{"loc": (), "msg": f"not JSON nor JSON lines: {exc}"}]
            ) from exc
    results: list[ControlResult] = []
    errors: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        try:
            results.append(decode_object(ControlResult, item))
        except DecodeError as exc:
            errors.extend({**e, "loc": [i, *e.get("loc", ())]} for e in exc.errors)
    if errors:
        raise DecodeError("schema", errors)
    if not results:
        raise DecodeError("empty", [{"loc": (), "msg": "no control result in the body"}])
    return results


def attach(rt: Runtime) -> None:
    """Register the views on the runtime's app."""
    app = rt.app

    @app.page("/health")
    class Health(faust.web.View):
        async def get(self, request: Any) -> Any:
            return self.json({"status": "ok"})

    @app.page("/ready")
    class Ready(faust.web.View):
        async def get(self, request: Any) -> Any:
            body = rt.readiness()
            return self.json(body, status=200 if body["ready"] else 503)

    @app.page("/metrics")
    class Metrics(faust.web.View):
        async def get(self, request: Any) -> Any:
            rt.refresh_gauges()
            return self.bytes(rt.metrics.render(), content_type=CONTENT_TYPE)

    @app.page("/controls")
    class Controls(faust.web.View):
        async def post(self, request: Any) -> Any:
            token = rt.settings.controls_token
            if token is None:
                return self.json({"error": "controls endpoint disabled: no token"}, status=503)
            if not authorized(request.headers.get("Authorization"), token):
                return self.json(
                    {"error": "unauthorized"},
                    status=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
            body = await request.content.read(MAX_BODY_BYTES + 1)
            if len(body) > MAX_BODY_BYTES:
                return self.json({"error": "body too large"}, status=413)
            try:
                results = parse_controls(body)
            except DecodeError as exc:
                return self.json({"error": exc.reason, "errors": exc.errors}, status=422)
            for result in results:
                await rt.controls.send(key=result.declaration_id.encode(), value=encode(result))
            await rt.app.producer.flush()
            return self.json({"accepted": len(results)}, status=202)

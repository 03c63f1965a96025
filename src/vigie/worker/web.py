"""HTTP endpoints of the worker, served by Faust's web server (loopback by default).

* ``GET /health``: 200 while the process runs its event loop (no token: for supervisors).
* ``GET /ready``: 200 once every assigned partition's model is restored, 503 before that
  or during a rebalance; the models' positions. Bearer token: ``worker_token``.
* ``GET /metrics``: Prometheus text format. Bearer token: ``worker_token``.
* ``POST /controls``: control results (a JSON object, a JSON array or JSON lines),
  bearer token ``controls_token`` (503 when unset: the endpoint is off); validated, all
  or nothing (422 naming the bad items), then produced to ``control-results``.

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

import asyncio
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
import orjson

from vigie.contracts.codec import decode_object, encode
from vigie.contracts.schemas import ControlResult
from vigie.errors import DecodeError
from vigie.worker.metrics import CONTENT_TYPE, WorkerMetrics

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


@dataclass(frozen=True)
class Endpoints:
    """What the views need from the worker."""

    token: str
    """Bearer token of /ready and /metrics."""
    controls_token: str | None
    status: Callable[[], dict[str, Any]]
    metrics: WorkerMetrics
    controls_topic: str
    producer: Any
    """A confluent-kafka Producer for /controls."""


def attach(app: faust.App, ep: Endpoints) -> None:
    """Register the views on ``app``."""

    def denied(view: faust.web.View, request: Any, token: str) -> Any:
        if authorized(request.headers.get("Authorization"), token):
            return None
        return view.json(
            {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.page("/health")
    class Health(faust.web.View):
        async def get(self, request: Any) -> Any:
            return self.json({"status": "ok"})

    @app.page("/ready")
    class Ready(faust.web.View):
        async def get(self, request: Any) -> Any:
            if (refusal := denied(self, request, ep.token)) is not None:
                return refusal
            body = ep.status()
            return self.json(body, status=200 if body["ready"] else 503)

    @app.page("/metrics")
    class Metrics(faust.web.View):
        async def get(self, request: Any) -> Any:
            if (refusal := denied(self, request, ep.token)) is not None:
                return refusal
            return self.bytes(ep.metrics.render(), content_type=CONTENT_TYPE)

    @app.page("/controls")
    class Controls(faust.web.View):
        async def post(self, request: Any) -> Any:
            if ep.controls_token is None:
                return self.json({"error": "controls endpoint disabled: no token"}, status=503)
            if (refusal := denied(self, request, ep.controls_token)) is not None:
                return refusal
            body = await request.content.read(MAX_BODY_BYTES + 1)
            if len(body) > MAX_BODY_BYTES:
                return self.json({"error": "body too large"}, status=413)
            try:
                results = parse_controls(body)
            except DecodeError as exc:
                return self.json({"error": exc.reason, "errors": exc.errors}, status=422)
            failed = await asyncio.to_thread(produce_controls, ep, results)
            if failed:
                return self.json({"error": "not delivered", "detail": failed[:3]}, status=503)
            return self.json({"accepted": len(results)}, status=202)


def produce_controls(ep: Endpoints, results: list[ControlResult]) -> list[str]:
    """Produce and flush; the delivery errors (empty: every result is in Kafka)."""
    failed: list[str] = []

    def report(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(str(err))

    for result in results:
        key = result.declaration_id.encode()
        ep.producer.produce(ep.controls_topic, encode(result), key, on_delivery=report)
    if ep.producer.flush(30):
        failed.append("timed out")
    return failed

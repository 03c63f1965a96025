"""A local webhook subscriber for the demo: verifies every signature, counts deliveries.

It plays the subscriber's side of the Standard Webhooks contract: the signature must be
the HMAC of ``webhook-id.webhook-timestamp.body`` with the shared secret, and a repeated
``webhook-id`` is a duplicate to acknowledge and ignore. It runs an aiohttp server on
127.0.0.1 in a thread of the demo process.

Examples
--------
>>> from vigie.sinks.webhooks.signing import new_secret, signed_headers
>>> tally = Tally(new_secret())
>>> body = b'{"type": "alert.raised", "data": {"alert_id": "alert:D-1"}}'
>>> headers = signed_headers(tally.secret, "msg_1", 1614265330, body)
>>> tally.receive(headers, body), tally.receive(headers, body), tally.receive({}, body)
(200, 200, 401)
>>> tally.alerts, tally.duplicates, tally.rejected
({'alert:D-1'}, 1, 1)
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import orjson

from vigie.sinks.webhooks.signing import new_secret, sign


@dataclass
class Tally:
    """What the subscriber received: distinct alerts, duplicates, rejected deliveries."""

    secret: str
    alerts: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    duplicates: int = 0
    rejected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def receive(self, headers: Mapping[str, str], body: bytes) -> int:
        """Verify and count one delivery; the HTTP status to answer."""
        msg_id = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        given = headers.get("webhook-signature", "")
        if not (msg_id and stamp.isdigit() and given):
            return self._reject()
        expected = sign(self.secret, msg_id, int(stamp), body)
        if not any(hmac.compare_digest(expected, s) for s in given.split()):
            return self._reject()
        alert_id = orjson.loads(body)["data"]["alert_id"]
        with self.lock:
            if msg_id in self.seen:
                self.duplicates += 1
            self.seen.add(msg_id)
            self.alerts.add(alert_id)
        return 200

    def _reject(self) -> int:
        with self.lock:
            self.rejected += 1
        return 401

    def as_dict(self) -> dict[str, int]:
        with self.lock:
            return {
                "alerts_delivered": len(self.alerts),
                "duplicates": self.duplicates,
                "rejected": self.rejected,
            }


class HookServer(threading.Thread):
    """A webhook subscriber's HTTP server on 127.0.0.1, on its own event loop in a daemon
    thread: ``POST /hooks/{name}`` is answered with the status :meth:`answer` returns.

    ``port`` 0 takes a free port; :attr:`port` holds the real one once started. Used by
    the demo (:class:`Receiver`) and by the end-to-end tests' receiver.
    """

    def __init__(self, name: str, port: int = 0) -> None:
        super().__init__(name=name, daemon=True)
        self.port = port
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        """Made by the thread when it starts: a receiver never started holds no loop."""
        self._shutdown: asyncio.Event | None = None

    def hook_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    def answer(self, name: str, headers: Mapping[str, str], body: bytes) -> int:
        """The HTTP status for one delivery to ``/hooks/{name}`` (headers in lower case)."""
        raise NotImplementedError

    def run(self) -> None:
        self._loop = loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        from aiohttp import web

        async def hook(request: web.Request) -> web.Response:
            body = await request.read()
            headers = {k.lower(): v for k, v in request.headers.items()}
            return web.Response(status=self.answer(request.match_info["name"], headers, body))

        app = web.Application()
        app.router.add_post("/hooks/{name}", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self.port = int(runner.addresses[0][1])
        self._shutdown = asyncio.Event()
        self._ready.set()
        await self._shutdown.wait()
        await runner.cleanup()

    def begin(self) -> Self:
        """Start the server and wait until it listens."""
        self.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"the webhook server {self.name} did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._shutdown is not None and self.is_alive():
            self._loop.call_soon_threadsafe(self._shutdown.set)
        self.join(10)


class Receiver(HookServer):
    """The demo's subscriber: every alert, each signature checked (see :class:`Tally`)."""

    def __init__(self, port: int = 0) -> None:
        super().__init__("demo-webhooks", port)
        self.tally = Tally(new_secret())

    @property
    def url(self) -> str:
        return self.hook_url("vigie")

    def write_subscribers(self, path: Path) -> Path:
        """The dispatcher's subscribers file: this receiver, every alert."""
        path.write_text(
            f'[[subscribers]]\nname = "targeting-demo"\nurl = "{self.url}"\n'
            f'secret = "{self.tally.secret}"\n'
        )
        return path

    def answer(self, name: str, headers: Mapping[str, str], body: bytes) -> int:
        return self.tally.receive(headers, body)

    def __enter__(self) -> Receiver:
        return self.begin()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

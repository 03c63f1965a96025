"""A webhook subscriber that can be taken down and brought back on the same address.

:class:`WebhookReceiver` verifies every request with the independent ``standardwebhooks``
package (the Standard Webhooks reference implementation), answers 200, and counts per
subscriber the ``webhook-id`` of each alert and the 2xx answers of each ``webhook-id``.
:meth:`WebhookReceiver.stop` closes its port (the dispatcher's connections are refused,
as when a subscriber's service is down); :meth:`WebhookReceiver.start` listens again on
the same port, with the same counts.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vigie_dev.demo.receiver import HookServer


@dataclass
class Deliveries:
    """What a subscriber received: 2xx answers per webhook-id, webhook-ids per alert."""

    answered: Counter[str] = field(default_factory=Counter)
    ids_by_alert: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def copy(self) -> Deliveries:
        ids = defaultdict(set, {a: set(i) for a, i in self.ids_by_alert.items()})
        return Deliveries(Counter(self.answered), ids)


class _Server(HookServer):
    def __init__(self, owner: WebhookReceiver, port: int) -> None:
        super().__init__("fault-webhooks", port)
        self.owner = owner

    def answer(self, name: str, headers: Mapping[str, str], body: bytes) -> int:
        return self.owner.receive(name, headers, body)


class WebhookReceiver:
    """Subscribers ``secrets`` (name -> secret) served at ``url(name)``.

    >>> import time
    >>> from vigie.sinks.webhooks.signing import new_secret, signed_headers
    >>> receiver = WebhookReceiver({"all": new_secret()})
    >>> body = b'{"type": "alert.raised", "data": {"alert_id": "alert:D-1"}}'
    >>> headers = signed_headers(receiver.secrets["all"], "msg_1", int(time.time()), body)
    >>> receiver.receive("all", headers, body), receiver.receive("all", {}, body)
    (200, 400)
    >>> receiver.snapshot()["all"].ids_by_alert["alert:D-1"], len(receiver.invalid)
    ({'msg_1'}, 1)
    """

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.port = 0
        self.lock = threading.Lock()
        self.received: dict[str, Deliveries] = {name: Deliveries() for name in secrets}
        self.invalid: list[str] = []
        self._server: _Server | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    def start(self) -> WebhookReceiver:
        """Listen (on the port of the first start, once there was one)."""
        server = _Server(self, self.port).begin()
        self.port = server.port
        self._server = server
        return self

    def stop(self) -> None:
        """Close the port: deliveries are refused until :meth:`start`."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def receive(self, name: str, headers: Mapping[str, str], body: bytes) -> int:
        """Verify and count one delivery; the HTTP status to answer."""
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        try:
            event: Any = Webhook(self.secrets[name]).verify(body, dict(headers))
        except (WebhookVerificationError, KeyError) as exc:
            with self.lock:
                self.invalid.append(f"{name}: {exc!r}")
            return 400
        msg_id = headers["webhook-id"]
        with self.lock:
            got = self.received[name]
            got.answered[msg_id] += 1
            got.ids_by_alert[str(event["data"]["alert_id"])].add(msg_id)
        return 200

    def snapshot(self) -> dict[str, Deliveries]:
        """A copy of the counts, taken under the lock."""
        with self.lock:
            return {name: got.copy() for name, got in self.received.items()}

"""Fixtures of the end-to-end acceptance tests: a signature-checking webhook subscriber.

``hook_receiver(secrets, fail_first=1)`` starts a real aiohttp server on 127.0.0.1 (random
port) in a thread of the test process. It plays a Standard Webhooks subscriber: every
request's signature is verified with the independent ``standardwebhooks`` package, the
first ``fail_first`` attempts of each delivery (``webhook-id``) are answered 500 and the
later ones 200, and it counts every 2xx answer per ``webhook-id`` and per subscriber.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from vigie_dev.demo.receiver import HookServer


class HookReceiver(HookServer):
    """Verifies each request with ``standardwebhooks``; refuses the first attempts."""

    def __init__(self, secrets: dict[str, str], fail_first: int = 1) -> None:
        super().__init__("acceptance-webhooks")
        self.secrets = secrets
        self.fail_first = fail_first
        self.lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.successes: Counter[str] = Counter()
        """2xx answers per webhook-id."""
        self.delivered: dict[str, Counter[str]] = defaultdict(Counter)
        """2xx answers per subscriber and alert id."""
        self.invalid: list[str] = []

    def url(self, name: str) -> str:
        return self.hook_url(name)

    def answer(self, name: str, headers: Mapping[str, str], body: bytes) -> int:
        """Verify and count one request; the HTTP status to answer."""
        try:
            event: Any = Webhook(self.secrets[name]).verify(body, dict(headers))
        except (WebhookVerificationError, KeyError) as exc:
            with self.lock:
                self.invalid.append(f"{name}: {exc!r}")
            return 400
        msg_id = headers["webhook-id"]
        alert_id = str(event["data"]["alert_id"])
        with self.lock:
            self.attempts[msg_id] += 1
            if self.attempts[msg_id] <= self.fail_first:
                return 500
            self.successes[msg_id] += 1
            self.delivered[name][alert_id] += 1
        return 200

    def snapshot(self) -> tuple[dict[str, Counter[str]], Counter[str], Counter[str], list[str]]:
        """Copies of (delivered, successes, attempts, invalid), taken under the lock."""
        with self.lock:
            return (
                {n: Counter(c) for n, c in self.delivered.items()},
                Counter(self.successes),
                Counter(self.attempts),
                list(self.invalid),
            )


@pytest.fixture
def hook_receiver() -> Iterator[Callable[..., HookReceiver]]:
    """``hook_receiver(secrets, fail_first=1)``: a started receiver, stopped after the test."""
    started: list[HookReceiver] = []

    def start(secrets: dict[str, str], fail_first: int = 1) -> HookReceiver:
        receiver = HookReceiver(secrets, fail_first).begin()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()

"""The web app served for real: a chDB warehouse filled with a generated, scored stream,
an accounts file, and uvicorn listening on a free port in a thread of the test process.

Three accounts: ``adviser`` (customs staff), ``acme`` and ``globex`` (two companies, each
with its own operator identifier, both importing and exporting). Every HTTP response
the tests receive is recorded (request id, path, status) so that the audit test can
check that the ``web_audit`` table holds each one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from vigie.settings import Settings
from vigie.web.accounts import AccountStore
from vigie.web.app import create_app
from vigie.web.tokens import Keys
from vigie.web.warehouse import Warehouse
from vigie_dev.testing import free_port
from vigie_dev.testing.warehouse import fill, scored_traffic

PASSWORDS = {"adviser": "adviser-pass-2026", "acme": "acme-pass-2026", "globex": "globex-pass-2026"}


@dataclass
class Site:
    """The running app and what the tests need to know about it."""

    url: str
    warehouse: Warehouse
    accounts: AccountStore
    keys: Keys
    companies: dict[str, str]
    responses: list[tuple[str, str, int]] = field(default_factory=list)

    def record(self, response: httpx.Response) -> None:
        self.responses.append(
            (response.headers.get("x-request-id", ""), response.request.url.path,
             response.status_code)
        )  # fmt: skip

    @contextmanager
    def client(self, account: str | None = None) -> Iterator[httpx.Client]:
        """An HTTP client, logged in with a bearer token when ``account`` is given."""
        with httpx.Client(
            base_url=self.url, event_hooks={"response": [self.record]}, timeout=60
        ) as client:
            if account is not None:
                answer = client.post(
                    "/api/token", json={"username": account, "password": PASSWORDS[account]}
                )
                assert answer.status_code == 200, answer.text
                client.headers["Authorization"] = f"Bearer {answer.json()['token']}"
            yield client

    def declarations_of(self, operator: str) -> set[str]:
        rows = self.warehouse.query(
            "SELECT declaration_id FROM declarations WHERE importer = {op:String}",
            {"op": operator},
        ).rows
        return {row[0] for row in rows}


def two_companies(warehouse: Warehouse) -> list[str]:
    """Two operators that both import and export, with alerts and controls."""
    rows = warehouse.query(
        "SELECT importer FROM declarations GROUP BY importer "
        "HAVING countIf(direction = 'export') >= 10 AND countIf(direction = 'import') >= 20 "
        "AND importer IN (SELECT importer FROM alerts) "
        "ORDER BY count() DESC, importer LIMIT 2",
        {},
    ).rows
    assert len(rows) == 2, rows
    return [rows[0][0], rows[1][0]]


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("web")
    settings = Settings(state_dir=root, web_session_hours=1)
    warehouse = Warehouse.open(settings)
    start = (datetime.now(UTC) - timedelta(days=105)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    fill(warehouse.client, scored_traffic(5000, seed=21, start=start))
    acme, globex = two_companies(warehouse)
    accounts = AccountStore(settings.accounts_path)
    accounts.add("adviser", "customs", PASSWORDS["adviser"])
    accounts.add("acme", "company", PASSWORDS["acme"], (acme,))
    accounts.add("globex", "company", PASSWORDS["globex"], (globex,))
    keys = Keys.from_file(settings.web_dir / "secret.key")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, warehouse, accounts, keys), host="127.0.0.1",
                       port=port, log_level="warning")
    )  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield Site(f"http://127.0.0.1:{port}", warehouse, accounts, keys,
                   {"acme": acme, "globex": globex})  # fmt: skip
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        warehouse.close()


def audited(site: Site, request_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """The audit rows of ``request_ids``: id to (account, path, status)."""
    rows = site.warehouse.query(
        "SELECT request_id, account, path, status FROM web_audit FINAL "
        "WHERE request_id IN {ids:Array(String)}",
        {"ids": request_ids},
    ).rows
    return {row[0]: row[1:] for row in rows}

"""The web app's link to ClickHouse: one client, parameterised queries, a clear refusal.

Every query goes through :meth:`Warehouse.query` with its values bound by ClickHouse as
query parameters (``{name:Type}`` in the SQL): no value is ever spliced into SQL text.
One lock serialises the queries of the process (chDB runs in-process and its client is
not safe across threads; a server is reached through the same code).

chDB allows one process per directory. When another process (the demo's or a running
``vigie warehouse write``) holds the embedded warehouse, :meth:`Warehouse.open` fails at
once with :class:`WarehouseUnavailableError`, naming the directory and what to do: stop the
writer, or point ``VIGIE_CLICKHOUSE_URL`` at a ClickHouse server. It never waits.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from vigie.errors import VigieError
from vigie.settings import Settings
from vigie.sinks.clickhouse_client import clickhouse_failure, connect
from vigie.sinks.warehouse import migrate

log = logging.getLogger(__name__)


class WarehouseUnavailableError(VigieError):
    """The warehouse cannot be opened or read (held by another process, or down)."""


@dataclass(frozen=True)
class Rows:
    """A query's result: column names and rows of JSON-able values."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def first(self) -> dict[str, Any]:
        """The first row as a mapping (all None when the result is empty)."""
        if not self.rows:
            return dict.fromkeys(self.columns)
        return dict(zip(self.columns, self.rows[0], strict=True))


def plain(value: Any) -> Any:
    """A ClickHouse value as JSON has it: UTC ISO times, no NaN, enums by name.

    >>> plain(datetime(2026, 3, 2, 8, 15)), plain(float("nan")), plain(2.5)
    ('2026-03-02T08:15:00Z', None, 2.5)
    """
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return moment.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Enum):
        return value.name
    return value


class Warehouse:
    """A ClickHouse client shared by the app's requests."""

    def __init__(self, client: Any, dsn: str) -> None:
        self.client = client
        self.dsn = dsn
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings) -> Warehouse:
        """Connect, apply the migrations (idempotent), or say why it cannot be done."""
        dsn = settings.clickhouse_dsn
        try:
            client = connect(settings)
            migrate(client)
        except Exception as exc:  # the driver's errors vary by backend: chDB or HTTP
            raise WarehouseUnavailableError(clickhouse_failure(dsn, exc)) from exc
        return cls(client, dsn)

    def query(self, sql: str, parameters: Mapping[str, Any]) -> Rows:
        """Run ``sql`` with ``parameters`` bound by ClickHouse."""
        try:
            with self._lock:
                result = self.client.query(sql, parameters=dict(parameters))
        except Exception as exc:  # the driver's errors vary by backend: chDB or HTTP
            log.error("warehouse query failed: %s", exc)
            raise WarehouseUnavailableError(f"the warehouse query failed: {exc}") from exc
        rows = [tuple(plain(v) for v in row) for row in result.result_rows]
        return Rows(tuple(result.column_names), rows)

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        with self._lock:
            self.client.insert(table, list(rows), column_names=list(columns))

    def close(self) -> None:
        with self._lock:
            self.client.close()

"""The ClickHouse warehouse: schema migrations, table writers, the Kafka writer.

Embedded chDB by default (one process owns a chDB directory at a time); a ClickHouse
server by URL (``VIGIE_CLICKHOUSE_URL``) when several processes write.
"""

from __future__ import annotations

from vigie.sinks.warehouse.migrations import migrate
from vigie.sinks.warehouse.rows import TABLES
from vigie.sinks.warehouse.summary import summary
from vigie.sinks.warehouse.writer import TableWriter

__all__ = ["TABLES", "TableWriter", "migrate", "summary"]

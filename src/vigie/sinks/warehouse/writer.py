"""The table writer: one warehouse table as a :class:`~vigie.sinks.base.BatchingSink`.

Each batch is first cut down to the records the table does not hold yet
(:mod:`vigie.sinks.warehouse.identity`), so a record replayed for any reason is never
inserted twice, in raw rows. The rest is inserted with an ``insert_deduplication_token``
derived from the log slices the batch covers (or from its rows, for records that come
from no log): an insert retried after an error whose outcome is unknown writes the
partitions it had not written. Any driver error (chDB or HTTP) becomes a
:class:`~vigie.errors.SinkError`, which the consumer loop waits out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from vigie.errors import SinkError
from vigie.sinks.base import Batch, BatchingSink, content_token
from vigie.sinks.warehouse.identity import fresh_rows
from vigie.sinks.warehouse.rows import Table, rows_of

log = logging.getLogger(__name__)


def insert_settings(token: str) -> dict[str, Any]:
    """An insert that a retry with the same token does not repeat, and whose rows are
    stored as given (revisions of one key are not folded before a merge folds them)."""
    return {"insert_deduplicate": 1, "insert_deduplication_token": token, "optimize_on_insert": 0}


class TableWriter(BatchingSink[Any]):
    """Writes records of one schema into their warehouse table.

    Parameters
    ----------
    client
        A clickhouse-connect client (chDB or server).
    table
        The table description from :data:`vigie.sinks.warehouse.rows.TABLES`.
    max_records, max_age_s
        A batch this large, or whose first record is this old (seconds), is due.
    """

    def __init__(
        self,
        client: Any,
        table: Table,
        max_records: int = 5000,
        max_age_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(table.name, max_records=max_records, max_age_s=max_age_s, clock=clock)
        self.client = client
        self.table = table

    def write(self, batch: Batch[Any]) -> int:
        """Insert the batch's records the table lacks; return how many were inserted."""
        name = self.table.name
        try:
            rows = fresh_rows(self.client, self.table, rows_of(self.table, batch.records))
        except Exception as exc:  # the driver's errors vary by backend: chDB or HTTP
            raise SinkError(f"warehouse lookup in {name} failed: {exc}") from exc
        if not rows:
            log.debug("%d records already in %s", len(batch), name)
            return 0
        token = batch.token(name) if batch.from_log else content_token(name, rows)
        try:
            self.client.insert(
                name,
                rows,
                column_names=list(self.table.columns),
                settings=insert_settings(token),
            )
        except Exception as exc:  # the driver's errors vary by backend: chDB or HTTP
            raise SinkError(
                f"warehouse insert into {name} ({len(rows)} rows) failed: {exc}"
            ) from exc
        log.debug("inserted %d of %d rows into %s (token %s)", len(rows), len(batch), name, token)
        return len(rows)

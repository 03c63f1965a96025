"""Batching writers: ``add()`` per record, ``flush()`` per checkpoint, due by size or age.

:class:`BatchingWriter` holds the batch and the log positions it came from; a subclass
only says how to ``write`` a whole batch. :class:`TableWriter` writes one warehouse table
with an ``insert_deduplication_token`` derived from the batch, so re-inserting the same
batch (a replay after a crash between insert and offset commit) is a no-op.

Examples
--------
>>> class Total(BatchingWriter[int]):
...     def __init__(self) -> None:
...         super().__init__(max_records=2, max_age_s=60.0)
...         self.total, self.tokens = 0, []
...     def write(self, batch: Sequence[int], token: str) -> int:
...         self.total += sum(batch)
...         self.tokens.append(token)
...         return len(batch)
>>> w = Total()
>>> w.add(3, Position("scores", 0, 10)); w.due()
False
>>> w.add(4, Position("scores", 0, 11)); w.due()
True
>>> w.flush(), w.total, len(w), w.flush()
(2, 7, 0, 0)
>>> w.tokens[0] == batch_token("Total", [Position("scores", 0, 10), Position("scores", 0, 11)])
True
"""

from __future__ import annotations

import hashlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from vigie.errors import SinkError
from vigie.sinks.warehouse.rows import Table, rows_of

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, order=True)
class Position:
    """Where a record was read: topic, partition, offset."""

    topic: str
    partition: int
    offset: int


def batch_token(name: str, positions: Iterable[Position]) -> str:
    """A batch's identity from the log slices it covers (per topic-partition: first, last, n).

    >>> a = batch_token("scores", [Position("s", 0, 5), Position("s", 0, 6)])
    >>> a == batch_token("scores", [Position("s", 0, 6), Position("s", 0, 5)]), a[:7]
    (True, 'scores:')
    >>> a == batch_token("scores", [Position("s", 0, 6), Position("s", 0, 7)])
    False
    """
    spans: dict[tuple[str, int], list[int]] = {}
    for p in positions:
        span = spans.setdefault((p.topic, p.partition), [p.offset, p.offset, 0])
        span[0], span[1], span[2] = min(span[0], p.offset), max(span[1], p.offset), span[2] + 1
    text = ";".join(f"{t}/{part}:{a}-{b}#{n}" for (t, part), (a, b, n) in sorted(spans.items()))
    return f"{name}:{hashlib.sha256(text.encode('utf-8')).hexdigest()[:24]}"


def content_token(name: str, rows: Sequence[Sequence[Any]]) -> str:
    """A batch's identity from its content, for records that come from no log."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(orjson.dumps(list(row), default=str, option=orjson.OPT_NON_STR_KEYS))
    return f"{name}:{digest.hexdigest()[:24]}"


class BatchingWriter(ABC, Generic[T]):
    """Buffers records until :meth:`flush`; :meth:`due` says when a flush is wanted.

    Parameters
    ----------
    max_records
        A batch this large is due.
    max_age_s
        A non-empty batch whose first record is this old (seconds) is due.
    clock
        Monotonic clock, in seconds.
    """

    def __init__(
        self,
        max_records: int = 5000,
        max_age_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_records = max_records
        self.max_age_s = max_age_s
        self.clock = clock
        self._batch: list[T] = []
        self._positions: list[Position] = []
        self._since: float | None = None

    def add(self, record: T, position: Position | None = None) -> None:
        """Buffer one record (and where it was read, if it came from a log)."""
        if self._since is None:
            self._since = self.clock()
        self._batch.append(record)
        if position is not None:
            self._positions.append(position)

    def due(self) -> bool:
        """Whether the batch is large or old enough to flush."""
        if not self._batch or self._since is None:
            return False
        full = len(self._batch) >= self.max_records
        return full or self.clock() - self._since >= self.max_age_s

    def flush(self) -> int:
        """Write the batch; on failure the batch is kept and the error propagates."""
        if not self._batch:
            return 0
        token = self.token()
        written = self.write(self._batch, token)
        self._batch, self._positions, self._since = [], [], None
        return written

    def token(self) -> str:
        """The deduplication token of the current batch."""
        name = type(self).__name__
        if len(self._positions) == len(self._batch):
            return batch_token(name, self._positions)
        return content_token(name, [[repr(r)] for r in self._batch])

    def __len__(self) -> int:
        return len(self._batch)

    @abstractmethod
    def write(self, batch: Sequence[T], token: str) -> int:
        """Write ``batch`` in one go, idempotently for a given ``token``; return rows sent."""


class TableWriter(BatchingWriter[Any]):
    """Writes records of one schema into their warehouse table.

    Parameters
    ----------
    client
        A clickhouse-connect client (chDB or server).
    table
        The table description from :data:`vigie.sinks.warehouse.rows.TABLES`.
    """

    def __init__(
        self,
        client: Any,
        table: Table,
        max_records: int = 5000,
        max_age_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_records=max_records, max_age_s=max_age_s, clock=clock)
        self.client = client
        self.table = table

    def token(self) -> str:
        if len(self._positions) == len(self._batch):
            return batch_token(self.table.name, self._positions)
        return content_token(self.table.name, rows_of(self.table, self._batch))

    def write(self, batch: Sequence[Any], token: str) -> int:
        rows = rows_of(self.table, batch)
        try:
            self.client.insert(
                self.table.name,
                rows,
                column_names=list(self.table.columns),
                settings={"insert_deduplicate": 1, "insert_deduplication_token": token},
            )
        except Exception as exc:  # the driver's errors vary by backend: chDB or HTTP
            raise SinkError(
                f"warehouse insert into {self.table.name} ({len(rows)} rows) failed: {exc}"
            ) from exc
        log.debug("inserted %d rows into %s (token %s)", len(rows), self.table.name, token)
        return len(rows)

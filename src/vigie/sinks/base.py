"""The batching sink: ``add()`` per record, ``flush()`` per checkpoint (Quix style).

A sink buffers what it is given, with the log position each record was read at, and
writes the whole batch at once when flushed. The consumer loop (:mod:`vigie.sinks.pump`)
commits its Kafka offsets only after ``flush()`` returned, so a crash replays the batch
and the sink's idempotent writes absorb the replay. A subclass only says how to
``write`` a :class:`Batch`; a batch is due by size or age.

A sink that must slow down raises :class:`~vigie.errors.BackpressureError` (with
``retry_after``) or another :class:`~vigie.errors.SinkError` from ``write``; the batch
stays buffered for the next flush.

Examples
--------
>>> class Total(BatchingSink[int]):
...     def write(self, batch: Batch[int]) -> int:
...         self.total = getattr(self, "total", 0) + sum(batch.records)
...         self.token = batch.token("total")
...         return len(batch)
>>> sink = Total("total", max_records=2, max_age_s=60.0)
>>> sink.add(3, Position("scores", 0, 10)); sink.due()
False
>>> sink.add(4, Position("scores", 0, 11)); sink.due()
True
>>> sink.flush(), sink.total, len(sink), sink.flush()
(2, 7, 0, 0)
>>> sink.token == batch_token("total", [Position("scores", 0, 10), Position("scores", 0, 11)])
True
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

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


@dataclass(frozen=True)
class Batch(Generic[T]):
    """The records of one flush and, when they came from a log, where each was read."""

    records: Sequence[T]
    positions: Sequence[Position]

    @property
    def from_log(self) -> bool:
        """True when every record has its log position."""
        return len(self.positions) == len(self.records)

    def token(self, name: str) -> str:
        """The batch's deduplication token: from its log slices, else from its content."""
        if self.from_log:
            return batch_token(name, self.positions)
        return content_token(name, [[repr(r)] for r in self.records])

    def __len__(self) -> int:
        return len(self.records)


class BatchingSink(ABC, Generic[T]):
    """Buffers records until :meth:`flush`; :meth:`due` says when a flush is wanted.

    Parameters
    ----------
    name
        What the sink is called in stats, metrics and logs.
    max_records
        A batch this large is due.
    max_age_s
        A non-empty batch whose first record is this old (seconds) is due; 0: at once.
    clock
        Monotonic clock, in seconds.
    """

    def __init__(
        self,
        name: str,
        *,
        max_records: int = 5000,
        max_age_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.max_records = max_records
        self.max_age_s = max_age_s
        self.clock = clock
        self._records: list[T] = []
        self._positions: list[Position] = []
        self._since: float | None = None

    def add(self, record: T, position: Position | None = None) -> None:
        """Buffer one record (and where it was read, if it came from a log)."""
        if self._since is None:
            self._since = self.clock()
        self._records.append(record)
        if position is not None:
            self._positions.append(position)

    def due(self) -> bool:
        """Whether the batch is large or old enough to flush."""
        if self._since is None:
            return False
        full = len(self._records) >= self.max_records
        return full or self.clock() - self._since >= self.max_age_s

    def flush(self) -> int:
        """Write the batch; on failure the batch is kept and the error propagates.

        Returns what :meth:`write` returns (for most sinks, the records that changed it:
        replayed duplicates do not count).
        """
        if not self._records:
            return 0
        written = self.write(Batch(self._records, self._positions))
        self.discard()
        return written

    def discard(self) -> None:
        """Forget the buffered batch (its offsets are not committed: it will be re-read)."""
        self._records, self._positions, self._since = [], [], None

    def __len__(self) -> int:
        return len(self._records)

    @abstractmethod
    def write(self, batch: Batch[T]) -> int:
        """Write ``batch`` in one go, idempotently; return the number of records written."""

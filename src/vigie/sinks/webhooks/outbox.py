"""The persistent webhook outbox: one SQLite row per (alert, subscriber) delivery.

Enqueueing is ``INSERT OR IGNORE`` on the stable ``webhook_id``, so replaying the alerts
topic never creates a second delivery. Due rows are *claimed* with a lease (their next
attempt is pushed ``lease_s`` ahead in the same transaction), so a dispatcher that dies
mid-delivery leaves them to be retried once the lease expires, and two dispatchers on one
file never send the same row at once. Times are Unix seconds (UTC).

Delivered rows are pruned after a retention (:meth:`Outbox.prune`); their ids stay, a few
dozen bytes each, as long as the alerts topic keeps records, so a replay of the topic still
finds them delivered. :meth:`Outbox.redrive` puts failed deliveries back to pending, with
a fresh retry horizon (``retry_since``).

>>> import tempfile
>>> box = Outbox(Path(tempfile.mkdtemp()) / "outbox.sqlite3")
>>> new = NewDelivery("msg_1", "desk", "alert:D-1", b"{}")
>>> box.enqueue([new, new], now=100.0), box.enqueue([new], now=101.0)
(1, 0)
>>> [d.webhook_id for d in box.claim_due(now=100.0, limit=10, lease_s=30.0)]
['msg_1']
>>> box.claim_due(now=120.0, limit=10, lease_s=30.0)
[]
>>> box.settle([Outcome("msg_1", "failed", 1, 120.0, "HTTP 410")], now=120.0)
>>> box.counts(), [d.last_error for d in box.failed()]
({'pending': 0, 'delivered': 0, 'failed': 1}, ['HTTP 410'])
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from vigie.errors import BackpressureError

Status = Literal["pending", "delivered", "failed"]
STATUSES: tuple[Status, ...] = ("pending", "delivered", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    webhook_id      TEXT PRIMARY KEY,
    subscriber      TEXT NOT NULL,
    alert_id        TEXT NOT NULL,
    payload         BLOB NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    last_error      TEXT,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    retry_since     REAL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_settled ON deliveries (status, updated_at);
CREATE TABLE IF NOT EXISTS pruned (
    webhook_id   TEXT PRIMARY KEY,
    delivered_at REAL NOT NULL
);
"""
_ADDED_COLUMNS = {"retry_since": "REAL"}
"""Columns added after the first release: added to an older outbox file when opened."""
_COLUMNS = (
    "webhook_id, subscriber, alert_id, payload, attempts, next_attempt_at, status, last_error,"
    " coalesce(retry_since, created_at)"
)


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to enqueue."""

    webhook_id: str
    subscriber: str
    alert_id: str
    payload: bytes


@dataclass(frozen=True)
class Delivery:
    """A row of the outbox."""

    webhook_id: str
    subscriber: str
    alert_id: str
    payload: bytes
    attempts: int
    next_attempt_at: float
    status: Status
    last_error: str | None
    retry_since: float = 0.0
    """When its current run of attempts began (enqueued, or redriven): the retry horizon's
    start."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view (payload as text, times in ISO 8601 UTC)."""
        return {
            "webhook_id": self.webhook_id,
            "subscriber": self.subscriber,
            "alert_id": self.alert_id,
            "attempts": self.attempts,
            "next_attempt_at": datetime.fromtimestamp(self.next_attempt_at, UTC).isoformat(),
            "status": self.status,
            "last_error": self.last_error,
            "payload": self.payload.decode("utf-8", errors="replace"),
        }


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt: the row's new status, attempts and next attempt time."""

    webhook_id: str
    status: Status
    attempts: int
    next_attempt_at: float
    error: str | None = None


class Outbox:
    """The deliveries table in a SQLite file (WAL), created on first use."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # One thread at a time uses a connection, but not always the one that opened it.
        self._db = sqlite3.connect(
            path, isolation_level=None, timeout=busy_timeout_s, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(deliveries)")}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in have:
                self._db.execute(f"ALTER TABLE deliveries ADD COLUMN {column} {kind}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise BackpressureError(f"outbox {self.path} is locked: {exc}", 1.0) from exc
            raise
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def enqueue(self, deliveries: Iterable[NewDelivery], *, now: float) -> int:
        """Add deliveries in one transaction; returns how many were new."""
        rows = [
            (d.webhook_id, d.subscriber, d.alert_id, d.payload, now, now, now, now, d.webhook_id)
            for d in deliveries
        ]
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO deliveries (webhook_id, subscriber, alert_id, payload,"
                " next_attempt_at, created_at, updated_at, retry_since)"
                " SELECT ?, ?, ?, ?, ?, ?, ?, ?"
                " WHERE NOT EXISTS (SELECT 1 FROM pruned WHERE webhook_id = ?)",
                rows,
            )
            return db.total_changes - before

    def claim_due(self, *, now: float, limit: int, lease_s: float) -> list[Delivery]:
        """Pending rows due at ``now`` (oldest first), leased for ``lease_s`` seconds."""
        with self._transaction() as db:
            due = db.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE status = 'pending'"
                " AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
                (now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE deliveries SET next_attempt_at = ?, updated_at = ? WHERE webhook_id = ?",
                [(now + lease_s, now, row[0]) for row in due],
            )
        return [_delivery(row) for row in due]

    def settle(self, outcomes: Sequence[Outcome], *, now: float) -> None:
        """Record the outcomes of attempts, in one transaction."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ?,"
                " last_error = ?, updated_at = ? WHERE webhook_id = ?",
                [
                    (o.status, o.attempts, o.next_attempt_at, o.error, now, o.webhook_id)
                    for o in outcomes
                ],
            )

    def redrive(
        self, *, now: float, subscriber: str | None = None, since: float | None = None
    ) -> int:
        """Failed deliveries (of ``subscriber``, failed at or after ``since``) back to
        pending, due now, attempts and retry horizon started afresh; returns how many."""
        where = "status = 'failed'"
        args: list[Any] = [now, now, now]
        if subscriber is not None:
            where += " AND subscriber = ?"
            args.append(subscriber)
        if since is not None:
            where += " AND updated_at >= ?"
            args.append(since)
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?,"
                f" retry_since = ?, updated_at = ? WHERE {where}",
                args,
            )
            return int(cursor.rowcount)

    def prune(self, *, delivered_before: float, forget_before: float) -> tuple[int, int]:
        """Delete delivered rows settled before ``delivered_before`` (their ids are kept),
        and the kept ids of deliveries older than ``forget_before``; returns both counts."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO pruned (webhook_id, delivered_at) SELECT webhook_id,"
                " updated_at FROM deliveries WHERE status = 'delivered' AND updated_at < ?",
                (delivered_before,),
            )
            pruned = db.execute(
                "DELETE FROM deliveries WHERE status = 'delivered' AND updated_at < ?",
                (delivered_before,),
            ).rowcount
            forgotten = db.execute(
                "DELETE FROM pruned WHERE delivered_at < ?", (forget_before,)
            ).rowcount
        return int(pruned), int(forgotten)

    def failed(self, limit: int = 1000) -> list[Delivery]:
        """Dead-lettered deliveries, most recent first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM deliveries WHERE status = 'failed'"
            " ORDER BY updated_at DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [_delivery(row) for row in rows]

    def get(self, webhook_id: str) -> Delivery | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM deliveries WHERE webhook_id = ?", (webhook_id,)
        ).fetchone()
        return _delivery(row) if row else None

    def counts(self) -> dict[str, int]:
        """Number of deliveries per status."""
        found = dict(
            self._db.execute("SELECT status, count(*) FROM deliveries GROUP BY status").fetchall()
        )
        return {status: int(found.get(status, 0)) for status in STATUSES}

    def next_due(self) -> float | None:
        """When the earliest pending delivery is due (None: nothing pending)."""
        row = self._db.execute(
            "SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending'"
        ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _delivery(row: tuple[Any, ...]) -> Delivery:
    return Delivery(
        webhook_id=row[0],
        subscriber=row[1],
        alert_id=row[2],
        payload=bytes(row[3]),
        attempts=int(row[4]),
        next_attempt_at=float(row[5]),
        status=row[6],
        last_error=row[7],
        retry_since=float(row[8]),
    )

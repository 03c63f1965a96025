"""Reading the alert stream as the targeting service does: a consumer group, acks, reclaims.

:class:`AlertFeed` is the group's API (XREADGROUP, XACK, XAUTOCLAIM). :class:`StreamView`
looks at the stream without a group (the latest entries, then new ones; nothing is
acknowledged), for people. :func:`follow` reads either for as long as asked, through
Redis outages: it reconnects with backoff, recreates the group if a restarted Redis lost
it, and says one line when Redis goes away and one when it is back.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from vigie.contracts.codec import decode
from vigie.contracts.schemas import Alert
from vigie.sinks.redis_alerts import AlertKeys
from vigie.sinks.retry import Backoff

OUTAGES = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
"""What a Redis that is down, restarting or frozen raises."""
RECONNECT = Backoff(base_s=0.2, factor=2.0, cap_s=5.0, jitter=0.3)


@dataclass(frozen=True)
class FeedEntry:
    """One alert read from the stream by a consumer of the group."""

    entry_id: str
    alert: Alert
    claimed: bool = False
    """True when taken over from another consumer's pending list."""


class AlertFeed:
    """Reads the stream as the targeting service does: a consumer group, acks, reclaims.

    Parameters
    ----------
    client, keys
        Redis client answering ``str`` (``decode_responses=True``, as :func:`redis_client`)
        and key names.
    group, consumer
        Consumer group and this consumer's name within it.
    start_id
        Where a newly created group starts: ``"0"`` (the whole stream) or ``"$"`` (new only).
    claim_idle_ms
        Entries pending longer than this on any consumer (one that crashed before its
        XACK) are taken over by :meth:`claim_stale`.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: AlertKeys,
        group: str,
        consumer: str,
        *,
        start_id: str = "0",
        claim_idle_ms: int = 60_000,
    ) -> None:
        self.client = client
        self.keys = keys
        self.group = group
        self.consumer = consumer
        self.start_id = start_id
        self.claim_idle_ms = claim_idle_ms

    def ensure_group(self) -> bool:
        """Create the group (and the stream) if missing; True if it was created."""
        try:
            self.client.xgroup_create(self.keys.stream, self.group, self.start_id, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            return False
        return True

    def read(self, count: int = 100, block_ms: int | None = None) -> list[FeedEntry]:
        """New entries for this consumer (they stay pending until :meth:`ack`)."""
        response: Any = self.client.xreadgroup(
            self.group, self.consumer, {self.keys.stream: ">"}, count=count, block=block_ms
        )
        entries = [e for _stream, batch in (response or []) for e in batch]
        return [_entry(entry_id, fields) for entry_id, fields in entries]

    def claim_stale(self, count: int = 100) -> list[FeedEntry]:
        """Take over entries left pending by a consumer idle for ``claim_idle_ms``."""
        claimed: list[FeedEntry] = []
        cursor = "0-0"
        while len(claimed) < count:
            response: Any = self.client.xautoclaim(
                self.keys.stream,
                self.group,
                self.consumer,
                self.claim_idle_ms,
                start_id=cursor,
                count=count - len(claimed),
            )
            cursor, entries = response[0], response[1]
            # Entries trimmed from the stream come back without fields: nothing to take.
            claimed.extend(_entry(i, f, claimed=True) for i, f in entries if f)
            if cursor == "0-0":
                break
        return claimed

    def next_batch(self, count: int = 100, block_ms: int | None = None) -> list[FeedEntry]:
        """Reclaimed stale entries first, else new ones."""
        return self.claim_stale(count) or self.read(count, block_ms)

    def ack(self, entries: Sequence[FeedEntry]) -> int:
        """Acknowledge processed entries; returns how many were pending."""
        if not entries:
            return 0
        return int(self.client.xack(self.keys.stream, self.group, *(e.entry_id for e in entries)))

    def leave(self) -> bool:
        """Remove this consumer from the group if nothing is pending on it; True if removed.

        (XGROUP DELCONSUMER drops a consumer's pending entries: never with some left.)
        """
        mine = self.client.xpending_range(
            self.keys.stream, self.group, "-", "+", 1, consumername=self.consumer
        )
        if mine:
            return False
        self.client.xgroup_delconsumer(self.keys.stream, self.group, self.consumer)
        return True

    def pending_count(self) -> int:
        """Entries delivered to some consumer of the group and not acknowledged yet."""
        summary = self.client.xpending(self.keys.stream, self.group)
        return int(summary["pending"])


class StreamView:
    """The stream as a person looks at it: the latest ``last`` entries first, then the
    entries added after them (XREVRANGE, then XREAD). No group, no acknowledgement: reading
    twice shows the same alerts."""

    def __init__(self, client: redis.Redis, keys: AlertKeys, last: int) -> None:
        self.client = client
        self.keys = keys
        self.last = last
        self.cursor: str | None = None
        """The id of the last entry shown (``0-0`` for an empty stream)."""

    def next_batch(self, count: int = 100, block_ms: int | None = None) -> list[FeedEntry]:
        """The latest entries on the first call, then the ones added since the previous."""
        if self.cursor is None:
            newest: Any = self.client.xrevrange(self.keys.stream, count=self.last)
            entries = [(i, f) for i, f in reversed(newest or [])]
            self.cursor = entries[-1][0] if entries else "0-0"
        else:
            response: Any = self.client.xread(
                {self.keys.stream: self.cursor}, count=count, block=block_ms
            )
            entries = [e for _stream, batch in (response or []) for e in batch]
            if entries:
                self.cursor = entries[-1][0]
        return [_entry(entry_id, fields) for entry_id, fields in entries if fields]

    def ack(self, entries: Sequence[FeedEntry]) -> int:
        return 0

    def ensure_group(self) -> bool:
        return False


def _entry(entry_id: str, fields: dict[str, str], *, claimed: bool = False) -> FeedEntry:
    alert = decode(Alert, fields["alert"].encode("utf-8"))
    return FeedEntry(entry_id=entry_id, alert=alert, claimed=claimed)


def follow(
    feed: AlertFeed | StreamView,
    *,
    want: Callable[[], int],
    block_ms: int | None,
    should_stop: Callable[[], bool],
    say: Callable[[str], None],
    backoff: Backoff = RECONNECT,
) -> Iterator[list[FeedEntry]]:
    """Batches of entries (possibly empty) until ``should_stop()``; each batch is
    acknowledged when the next one is asked for, so an entry is acked once processed.

    A Redis outage is waited out: ``say`` hears once that Redis is unreachable and once
    that it is back, however many reconnection attempts it took.
    """
    rng = random.Random()
    down_since: float | None = None
    attempts = 0
    unacked: list[FeedEntry] = []
    try:
        while not should_stop():
            try:
                if down_since is not None:
                    feed.ensure_group()
                feed.ack(unacked)
                unacked = []
                entries = feed.next_batch(want(), block_ms)
            except OUTAGES as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    say(f"Redis unreachable ({exc}); reconnecting with backoff")
                attempts += 1
                _sleep(backoff.delay(attempts, rng), should_stop)
                continue
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                feed.ensure_group()  # a Redis restarted without its data lost the group
                continue
            if down_since is not None:
                say(f"Redis reachable again after {time.monotonic() - down_since:.0f} s")
                down_since, attempts = None, 0
            unacked = entries
            yield entries
    finally:
        try:
            feed.ack(unacked)
        except (*OUTAGES, redis.ResponseError):
            pass  # left pending: reclaimed later by a consumer of the group


def _sleep(seconds: float, should_stop: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not should_stop() and time.monotonic() < deadline:
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

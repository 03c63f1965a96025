"""The live alert feed in Redis: one stream entry per alert id, however often it is replayed.

Layout under the key prefix (``Settings.redis_prefix``, ``vigie`` by default)::

    <p>:alerts                  stream, one entry per alert, approximately capped (MAXLEN ~)
    <p>:alert-seen:<alert id>   dedup marker (SET NX EX), lives as long as the alerts topic
    <p>:alert:<alert id>        hash with the alert's details, expires after ``detail_ttl_s``
    <p>:importer-risk           hash importer -> JSON of its latest alert (by lodging time)
    <p>:importer-risk-rank      sorted set of importers by that latest risk

Each alert is written by one Lua script, atomically: the marker first, and the rest only
if the marker is new. A batch is one transactional pipeline. The publisher commits its
Kafka offsets after the pipeline succeeded, so it is at-least-once on the wire and
exactly-once in Redis.

>>> from vigie.sinks.examples import example_alert
>>> keys = AlertKeys("t1")
>>> keys.stream, keys.seen("alert:D-1"), keys.alert("alert:D-1")
('t1:alerts', 't1:alert-seen:alert:D-1', 't1:alert:alert:D-1')
>>> fields = alert_fields(example_alert())
>>> fields["alert_id"], fields["importer"], fields["risk"], fields["reasons"]
('alert:FR26IM0000001', 'FR12345678901', '0.93', 'VAL_LOW')
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from vigie.contracts.codec import decode, encode
from vigie.contracts.schemas import Alert
from vigie.errors import BackpressureError
from vigie.settings import Settings
from vigie.sinks.base import BatchingSink, PumpStats, kafka_consumer, pump

log = logging.getLogger(__name__)

DEDUP_TTL_S = 90 * 24 * 3600
"""As long as the alerts topic keeps records: a full replay still finds every marker."""
DETAIL_TTL_S = 7 * 24 * 3600
RETRY_AFTER_S = 1.0

_WRITE_ALERT = """
-- KEYS: seen marker, stream, alert hash, importer hash, importer rank
-- ARGV: dedup ttl, detail ttl, maxlen, importer, risk, lodged_at_ms, latest JSON, fields...
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
redis.call('HSET', KEYS[3], unpack(fields))
redis.call('EXPIRE', KEYS[3], ARGV[2])
local previous = redis.call('HGET', KEYS[4], ARGV[4])
if (not previous) or tonumber(cjson.decode(previous)['lodged_at_ms']) <= tonumber(ARGV[6]) then
  redis.call('HSET', KEYS[4], ARGV[4], ARGV[7])
  redis.call('ZADD', KEYS[5], ARGV[5], ARGV[4])
end
return 1
"""


@dataclass(frozen=True)
class AlertKeys:
    """The Redis key names under one prefix."""

    prefix: str = "vigie"

    @property
    def stream(self) -> str:
        return f"{self.prefix}:alerts"

    @property
    def importer_risk(self) -> str:
        return f"{self.prefix}:importer-risk"

    @property
    def importer_rank(self) -> str:
        return f"{self.prefix}:importer-risk-rank"

    def seen(self, alert_id: str) -> str:
        return f"{self.prefix}:alert-seen:{alert_id}"

    def alert(self, alert_id: str) -> str:
        return f"{self.prefix}:alert:{alert_id}"


def redis_client(settings: Settings) -> redis.Redis:
    """A Redis client on the configured server, answering ``str``."""
    return redis.Redis.from_url(settings.redis_dsn, decode_responses=True)


def alert_fields(alert: Alert) -> dict[str, str]:
    """The flat fields of an alert's stream entry and hash (the full record under ``alert``)."""
    score = alert.score
    return {
        "alert_id": alert.alert_id,
        "declaration_id": score.declaration_id,
        "importer": score.importer,
        "office": score.office,
        "commodity_code": score.commodity_code,
        "risk": repr(score.risk),
        "raised_at": alert.raised_at.isoformat(),
        "reasons": ",".join(r.code for r in score.reasons),
        "alert": encode(alert).decode("utf-8"),
    }


class RedisAlertSink(BatchingSink[Alert]):
    """Writes alerts to the stream, the alert hashes and the per-importer risk, idempotently.

    Parameters
    ----------
    client
        The Redis client (the network layer: tests pass one on the real server).
    keys
        Key names under the prefix.
    maxlen
        Approximate bound of the stream (``XADD MAXLEN ~``).
    dedup_ttl_s, detail_ttl_s
        Lifetime of the dedup markers and of the alert hashes.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: AlertKeys,
        *,
        maxlen: int = 100_000,
        dedup_ttl_s: int = DEDUP_TTL_S,
        detail_ttl_s: int = DETAIL_TTL_S,
    ) -> None:
        super().__init__()
        self.client = client
        self.keys = keys
        self.maxlen = maxlen
        self.dedup_ttl_s = dedup_ttl_s
        self.detail_ttl_s = detail_ttl_s
        self._script = client.register_script(_WRITE_ALERT)

    def write(self, batch: Sequence[Alert]) -> int:
        """One transactional pipeline for the batch; returns how many alerts were new."""
        pipe = self.client.pipeline(transaction=True)
        for alert in batch:
            keys, args = self._call(alert)
            self._script(keys=keys, args=args, client=pipe)
        try:
            return sum(int(r) for r in pipe.execute())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            raise BackpressureError(f"Redis unavailable: {exc}", RETRY_AFTER_S) from exc
        except redis.ResponseError as exc:
            if str(exc).startswith(("OOM", "BUSY")):
                raise BackpressureError(f"Redis refuses writes: {exc}", RETRY_AFTER_S) from exc
            raise

    def _call(self, alert: Alert) -> tuple[list[str], list[Any]]:
        score = alert.score
        lodged_ms = int(score.lodged_at.timestamp() * 1000)
        latest = {
            "alert_id": alert.alert_id,
            "declaration_id": score.declaration_id,
            "risk": score.risk,
            "lodged_at": score.lodged_at.isoformat(),
            "lodged_at_ms": lodged_ms,
        }
        flat = [item for pair in alert_fields(alert).items() for item in pair]
        keys = [
            self.keys.seen(alert.alert_id),
            self.keys.stream,
            self.keys.alert(alert.alert_id),
            self.keys.importer_risk,
            self.keys.importer_rank,
        ]
        head = [self.dedup_ttl_s, self.detail_ttl_s, self.maxlen, score.importer, score.risk]
        return keys, [*head, lodged_ms, orjson.dumps(latest).decode("utf-8"), *flat]


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


def _entry(entry_id: str, fields: dict[str, str], *, claimed: bool = False) -> FeedEntry:
    alert = decode(Alert, fields["alert"].encode("utf-8"))
    return FeedEntry(entry_id=entry_id, alert=alert, claimed=claimed)


def publish(
    settings: Settings,
    *,
    group_id: str = "vigie-alerts-redis",
    client: redis.Redis | None = None,
    idle_exit_s: float | None = None,
    max_records: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> PumpStats:
    """Run the Kafka ``alerts`` -> Redis publisher (at-least-once, idempotent writes)."""
    conn = client or redis_client(settings)
    sink = RedisAlertSink(
        conn, AlertKeys(settings.redis_prefix), maxlen=settings.alerts_stream_maxlen
    )
    consumer = kafka_consumer(settings.bootstrap_servers, settings.topic("alerts"), group_id)
    try:
        return pump(
            consumer,
            Alert,
            sink,
            idle_exit_s=idle_exit_s,
            max_records=max_records,
            should_stop=should_stop,
        )
    finally:
        consumer.close()
        if client is None:
            conn.close()

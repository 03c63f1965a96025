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
exactly-once in Redis. A Redis that is down, restarting or frozen (every call has a
socket timeout) is a :class:`~vigie.errors.BackpressureError`: the pump waits it out.

:func:`republish` rebuilds the feed from the ``alerts`` topic, from the offsets of a given
time, through the same script: run twice, it adds nothing.

>>> from vigie.sinks.examples import example_alert
>>> keys = AlertKeys("t1")
>>> keys.stream, keys.seen("alert:D-1"), keys.alert("alert:D-1")
('t1:alerts', 't1:alert-seen:alert:D-1', 't1:alert:alert:D-1')
>>> fields = alert_fields(example_alert())
>>> fields["alert_id"], fields["kind"], fields["risk"], fields["reasons"]
('alert:FR26IM0000001', 'risk', '0.93', 'VAL_LOW')
>>> alert_fields(example_alert(kind="random_audit"))["kind"]
'random_audit'
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from vigie.contracts.catalogue import ALERTS
from vigie.contracts.codec import encode
from vigie.contracts.schemas import Alert
from vigie.errors import BackpressureError
from vigie.kafka import ClientEvents, consumer_config, retry_transient, watermarks
from vigie.settings import Settings
from vigie.sinks.base import Batch, BatchingSink
from vigie.sinks.deadletters import DeadLetterSink
from vigie.sinks.pump import Pump, Route
from vigie.sinks.stats import SinkStats

log = logging.getLogger(__name__)

DEDUP_TTL_S = 90 * 24 * 3600
"""As long as the alerts topic keeps records: a full replay still finds every marker."""
DETAIL_TTL_S = 7 * 24 * 3600
RETRY_AFTER_S = 1.0
SOCKET_TIMEOUT_S = 5.0
"""A frozen Redis (SIGSTOP, a full disk) is an error after this long, never a hang."""
CONNECT_TIMEOUT_S = 2.0
HEALTH_CHECK_S = 10
"""A connection idle this long is PINGed before use (a Redis restarted meanwhile)."""

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
    """A Redis client on the configured server, answering ``str``, with timeouts.

    A dropped connection (a restarted server) is retried once at once; longer outages are
    for the caller to wait out.
    """
    return redis.Redis.from_url(
        settings.redis_dsn,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_S,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.1), retries=1),
    )


def alert_fields(alert: Alert) -> dict[str, str]:
    """The flat fields of an alert's stream entry and hash (the full record under ``alert``).

    ``kind`` tells a risk alert (``risk``) from a random audit (``random_audit``): an
    audit is drawn whatever the risk, and its reasons are not why it was chosen.
    """
    score = alert.score
    return {
        "alert_id": alert.alert_id,
        "kind": alert.kind,
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
        super().__init__("redis", max_records=500)
        self.client = client
        self.keys = keys
        self.maxlen = maxlen
        self.dedup_ttl_s = dedup_ttl_s
        self.detail_ttl_s = detail_ttl_s
        self._script = client.register_script(_WRITE_ALERT)

    def write(self, batch: Batch[Alert]) -> int:
        """One transactional pipeline for the batch; returns how many alerts were new."""
        pipe = self.client.pipeline(transaction=True)
        for alert in batch.records:
            keys, args = self._call(alert)
            self._script(keys=keys, args=args, client=pipe)
        try:
            return sum(int(r) for r in pipe.execute())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            raise BackpressureError(f"Redis unavailable: {exc}", RETRY_AFTER_S) from exc
        except redis.exceptions.NoScriptError as exc:
            # Redis restarted empty after the pipeline checked its script: the retry loads
            # it again, and the script skips the alerts this attempt already wrote.
            raise BackpressureError(f"Redis lost its script: {exc}", RETRY_AFTER_S) from exc
        except redis.ResponseError as exc:
            if str(exc).startswith(("OOM", "BUSY", "LOADING", "MISCONF", "READONLY")):
                raise BackpressureError(f"Redis refuses writes: {exc}", RETRY_AFTER_S) from exc
            raise

    def _call(self, alert: Alert) -> tuple[list[str], list[Any]]:
        score = alert.score
        lodged_ms = int(score.lodged_at.timestamp() * 1000)
        latest = {
            "alert_id": alert.alert_id,
            "kind": alert.kind,
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


def publish(
    settings: Settings,
    *,
    group_id: str = "vigie-alerts-redis",
    client: redis.Redis | None = None,
    idle_exit_s: float | None = None,
    max_records: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_start: Callable[[Pump], None] = lambda pump: None,
) -> SinkStats:
    """Run the Kafka ``alerts`` -> Redis publisher (at-least-once, idempotent writes).

    ``on_start`` receives the pump before it runs (to serve its ``/ready`` and metrics).
    """
    with _alert_pump(settings, "vigie-alerts-redis", group_id, client) as pump:
        on_start(pump)
        return pump.run(idle_exit_s=idle_exit_s, max_records=max_records, should_stop=should_stop)


def republish(
    settings: Settings,
    since: datetime,
    *,
    client: redis.Redis | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> SinkStats:
    """Rebuild the feed from the alerts recorded since ``since``, up to the topic's current
    end, through the same idempotent script; no consumer group offset is touched."""
    from confluent_kafka import TopicPartition

    topic = settings.topic(ALERTS.name)
    group = f"vigie-republish-{uuid.uuid4().hex[:12]}"
    with _alert_pump(settings, "vigie-republish", group, client, assign=True) as pump:
        consumer = pump.consumer
        metadata = consumer.list_topics(topic, timeout=30).topics[topic]
        stamp = int(since.timestamp() * 1000)
        wanted = [TopicPartition(topic, p, stamp) for p in sorted(metadata.partitions)]
        starts = retry_transient(lambda left: consumer.offsets_for_times(wanted, timeout=left), 30)
        ends, assignment = {}, []
        for tp in starts:
            high = watermarks(consumer, tp, 30)[1]
            if 0 <= tp.offset < high:
                ends[(topic, tp.partition)] = high
                assignment.append(TopicPartition(topic, tp.partition, tp.offset))
        if not assignment:
            return pump.stats
        consumer.assign(assignment)
        return pump.run(ends=ends, should_stop=should_stop)


@contextmanager
def _alert_pump(
    settings: Settings,
    client_id: str,
    group_id: str,
    client: redis.Redis | None,
    *,
    assign: bool = False,
) -> Iterator[Pump]:
    """A pump from the alerts topic into Redis; consumer, producer and client closed after."""
    conn = client or redis_client(settings)
    sink = RedisAlertSink(
        conn, AlertKeys(settings.redis_prefix), maxlen=settings.alerts_stream_maxlen
    )
    events = ClientEvents(client_id)
    config = consumer_config(settings, group_id, client_id=client_id, events=events)
    rejects = DeadLetterSink(settings, client_id=client_id)
    pump = Pump(
        config,
        {settings.topic(ALERTS.name): Route(Alert, sink)},
        rejects,
        events,
        name="alerts-republish" if assign else "alerts-redis",
        assignment=[] if assign else None,
        linger_s=0.0,  # the targeting service reads alerts live: none waits for company
    )
    try:
        yield pump
    finally:
        pump.close()
        rejects.close()
        if client is None:
            conn.close()

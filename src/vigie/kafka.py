"""The configuration of every confluent-kafka client of Vigie, and what librdkafka says.

:func:`consumer_config` and :func:`producer_config` start from one base: a reconnect
backoff that grows to a few seconds (not librdkafka's 100 ms, which makes a few hundred
attempts a second across clients during a broker outage), socket and connection-setup
timeouts, and librdkafka's own log lines routed to the ``vigie.kafka`` logger at warning
level instead of its stderr.

:class:`ClientEvents` receives those log lines, the error callback and the statistics of
one client. It says once that Kafka became unreachable and once that it is back, and
each distinct message once in between: a broker outage costs a few lines, however many
times the client retries.

:func:`take` is how every consumer of Vigie reads: a batch that waits for its first record,
then only briefly for company (throughput at high rates, no added latency at low ones).

Examples
--------
>>> from vigie.settings import Settings
>>> conf = consumer_config(Settings(kafka_bootstrap="k:9092"), "g", client_id="vigie-x")
>>> conf["group.id"], conf["enable.auto.commit"], conf["reconnect.backoff.max.ms"]
('g', False, 4000)
>>> events = ClientEvents("vigie-x")
>>> events.log(40, "%s [%s] %s", "FAIL", "rdkafka#consumer-1", "[thrd:k:9092/1]: Connect failed")
>>> events.log(40, "%s [%s] %s", "FAIL", "rdkafka#consumer-1", "[thrd:k:9092/1]: Connect failed")
>>> events.said, events.suppressed
(1, 1)
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from vigie.settings import Settings

log = logging.getLogger("vigie.kafka")

RECONNECT_BACKOFF_MS = 250
RECONNECT_BACKOFF_MAX_MS = 4000
"""A broker that comes back is seen within about 4 s; one attempt per 4 s meanwhile."""
SESSION_TIMEOUT_MS = 10_000
"""How long a group waits for a member that stopped heartbeating (librdkafka: 45 s)."""
STATISTICS_INTERVAL_MS = 5000
"""How often a consumer's statistics (broker states, lag) reach :meth:`ClientEvents.stats`."""
MAX_DISTINCT = 200
"""Distinct messages remembered per state (beyond that, each one is logged)."""

_NUMBERS = re.compile(r"\d+")
_THREAD = re.compile(r"^\[thrd:[^\]]*\]:\s*")


def _base(settings: Settings, client_id: str, events: ClientEvents) -> dict[str, Any]:
    events.address = settings.bootstrap_servers
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": client_id,
        "reconnect.backoff.ms": RECONNECT_BACKOFF_MS,
        "reconnect.backoff.max.ms": RECONNECT_BACKOFF_MAX_MS,
        "socket.connection.setup.timeout.ms": 10_000,
        "socket.timeout.ms": 30_000,
        "socket.keepalive.enable": True,
        "log.connection.close": False,
        "log_level": 4,  # syslog warning: librdkafka's info and debug lines stay out
        "logger": events,
        "error_cb": events.error,
    }


def consumer_config(
    settings: Settings,
    group_id: str,
    *,
    client_id: str = "vigie",
    events: ClientEvents | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A consumer that commits only by hand, from the earliest offset for a new group."""
    events = events or ClientEvents(client_id)
    conf = {
        **_base(settings, client_id, events),
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "statistics.interval.ms": STATISTICS_INTERVAL_MS,
        "stats_cb": events.stats,
        # After a broker outage longer than the session, the consumer rejoins under a new
        # member id and the restarted coordinator waits for the old one to expire: with
        # librdkafka's 45 s that paused every sink about 40 s after the broker was back.
        "session.timeout.ms": SESSION_TIMEOUT_MS,
        # A member learns of a rebalance at its next heartbeat: with 1 s, a second worker
        # joining settled in 1.7-2.0 s from its start instead of 2.7-2.9 (three runs each).
        "heartbeat.interval.ms": SESSION_TIMEOUT_MS // 10,
    }
    conf.update(overrides or {})
    return conf


def admin_config(
    settings: Settings, *, client_id: str = "vigie-admin", events: ClientEvents | None = None
) -> dict[str, Any]:
    """An admin client's configuration: the shared base (quiet, routed logging)."""
    return _base(settings, client_id, events or ClientEvents(client_id))


def producer_config(
    settings: Settings,
    *,
    client_id: str = "vigie-producer",
    events: ClientEvents | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An idempotent producer (``acks=all``): retries never duplicate nor reorder."""
    events = events or ClientEvents(client_id)
    conf = {
        **_base(settings, client_id, events),
        "enable.idempotence": True,
        "acks": "all",
    }
    conf.update(overrides or {})
    return conf


BATCH_LINGER_S = 0.02
"""How long a batch waits for company once its first record arrived."""


def take(consumer: Any, want: int, poll_s: float, linger_s: float = BATCH_LINGER_S) -> list[Any]:
    """Up to ``want`` messages: wait up to ``poll_s`` for the first, then up to ``linger_s``
    for more. Batches still form at high rates, and a lone alert at a low rate is passed
    on within ``linger_s`` of its arrival rather than after the whole poll."""
    first = consumer.poll(poll_s)
    if first is None:
        return []
    if want <= 1:
        return [first]
    return [first, *consumer.consume(num_messages=want - 1, timeout=linger_s)]


TRANSIENT_ERRORS = frozenset({"NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE",
                              "UNKNOWN_TOPIC_OR_PART", "_TRANSPORT", "_TIMED_OUT"})  # fmt: skip
"""Errors of a partition whose leader is moving or not known yet (a topic just created, a
broker restarting): asked again, the broker answers."""
RETRY_BACKOFF_S = 0.2


def watermarks(consumer: Any, partition: Any, timeout_s: float) -> tuple[int, int]:
    """The low and high offsets of ``partition`` (a TopicPartition), asking again while
    the broker answers with a :data:`TRANSIENT_ERRORS` error, until ``timeout_s``.

    A restore reads them first: without the retry, a leader election at that moment made
    the worker rebuild a model from its log (or learn controls during a replay).
    """
    low, high = retry_transient(
        lambda left: consumer.get_watermark_offsets(partition, timeout=left), timeout_s
    )
    return int(low), int(high)


def retry_transient(call: Callable[[float], Any], timeout_s: float) -> Any:
    """``call(seconds left)``, again after a :data:`TRANSIENT_ERRORS` KafkaException, until
    ``timeout_s`` has passed (then the last error is raised).

    >>> from confluent_kafka import KafkaError, KafkaException
    >>> answers = [KafkaError.NOT_LEADER_FOR_PARTITION, None]
    >>> def ask(left: float) -> tuple[int, int]:
    ...     code = answers.pop(0)
    ...     if code is not None:
    ...         raise KafkaException(KafkaError(code))
    ...     return (0, 42)
    >>> retry_transient(ask, 5.0)
    (0, 42)
    >>> def refused(left: float) -> None:
    ...     raise KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    >>> retry_transient(refused, 5.0)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    KafkaException: TOPIC_AUTHORIZATION_FAILED
    """
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + timeout_s
    while True:
        left = max(deadline - time.monotonic(), 0.1)
        try:
            return call(left)
        except KafkaException as exc:
            error: Any = exc.args[0] if exc.args else None
            name = error.name() if error is not None and hasattr(error, "name") else ""
            if name not in TRANSIENT_ERRORS or time.monotonic() + RETRY_BACKOFF_S > deadline:
                raise
            log.info("kafka: %s, asking again", name)
            time.sleep(RETRY_BACKOFF_S)


class ClientEvents:
    """The log lines, errors and statistics of one client, each said once per state.

    The state is whether Kafka is reachable. It turns to unreachable when librdkafka
    reports all brokers down, and back when a statistics report shows a broker up or
    the caller saw Kafka answer (:meth:`reachable_again`). Each change is one line; in
    between, a message already said (numbers aside) is only counted in ``suppressed``.
    """

    def __init__(
        self,
        name: str,
        logger: logging.Logger = log,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.logger = logger
        self.clock = clock
        self.reachable = True
        self.since = clock()
        self.suppressed = 0
        self.said = 0
        self.lag: dict[tuple[str, int], int] = {}
        """Records between each assigned partition's end and the read position."""
        self.group: dict[str, Any] = {}
        """The consumer group as librdkafka last reported it (state, join state, partitions)."""
        self.address = "the configured brokers"
        """Where Kafka is expected (set from the settings by the configuration builders)."""
        self._seen: set[str] = set()

    def log(self, level: int, fmt: str, *args: Any) -> None:
        """librdkafka's log callback (confluent-kafka calls ``logger.log``)."""
        message = fmt % args if args else fmt
        if len(args) == 3:  # (facility, client name, text): the text is what varies
            message = f"{args[0]}: {_THREAD.sub('', str(args[2]))}"
        self._once(level, message)

    def error(self, err: Any) -> None:
        """librdkafka's error callback: a ``KafkaError``."""
        from confluent_kafka import KafkaError

        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.unreachable(err.str())
            return
        level = logging.ERROR if err.fatal() else logging.WARNING
        self._once(level, f"{err.name()}: {_THREAD.sub('', err.str())}")

    def stats(self, text: str) -> None:
        """librdkafka's statistics (JSON): broker states and each partition's lag."""
        data = orjson.loads(text)
        if any(b.get("state") == "UP" for b in data.get("brokers", {}).values()):
            self.reachable_again()
        lag: dict[tuple[str, int], int] = {}
        for topic, info in data.get("topics", {}).items():
            for pid, part in info.get("partitions", {}).items():
                if int(pid) >= 0 and part.get("consumer_lag", -1) >= 0:
                    lag[(topic, int(pid))] = int(part["consumer_lag"])
        self.lag = lag
        group = data.get("cgrp")
        if group:
            self.group = {
                "state": group.get("state"),
                "join_state": group.get("join_state"),
                "assigned": group.get("assignment_size"),
                "rebalances": group.get("rebalance_cnt"),
            }

    def unreachable(self, reason: str) -> None:
        """Kafka stopped answering: say so once."""
        if not self.reachable:
            return
        self._change(False)
        self.logger.warning(
            "%s: Kafka unreachable at %s (%s); waiting for it: start it, or check "
            "VIGIE_KAFKA_BOOTSTRAP",
            self.name,
            self.address,
            reason,
        )

    def reachable_again(self) -> None:
        """Kafka answers again: say for how long it did not, once."""
        if self.reachable:
            return
        down_s, suppressed = self.clock() - self.since, self.suppressed
        self._change(True)
        self.logger.warning(
            "%s: Kafka reachable again after %.0f s (%d repeated messages not logged)",
            self.name,
            down_s,
            suppressed,
        )

    def _change(self, reachable: bool) -> None:
        self.reachable = reachable
        self.since = self.clock()
        self.suppressed = 0
        self._seen.clear()

    def _once(self, level: int, message: str) -> None:
        key = _NUMBERS.sub("#", message)
        if key in self._seen:
            self.suppressed += 1
            return
        if len(self._seen) < MAX_DISTINCT:
            self._seen.add(key)
        self.said += 1
        self.logger.log(level, "%s: %s", self.name, message)

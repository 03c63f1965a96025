"""The one consumer loop of every sink: Kafka topics -> batching sinks -> commit.

:class:`Pump` reads its topics, decodes each record with its topic's schema and adds it to
that topic's sink (:class:`Route`). At each checkpoint it flushes every sink, waiting out
failures with backoff for as long as it takes, and only then commits the offsets: a crash
replays what was not committed, and the sinks' idempotent writes absorb the replay.

A consumer whose group membership stalls is made anew (:meth:`Pump.watch`): librdkafka
normally rejoins by itself after a broker outage, but a consumer that Kafka answers and that
neither holds partitions nor reads the lag it is told about is not waited for forever.

A record that does not decode is never skipped: its dead letter (original bytes, source
topic, reason) goes to the ``rejects`` sink, flushed like the others before the offsets
move past it, and is counted. While a sink fails, the consumer's partitions are paused and
it keeps polling, so it stays in its group without reading further.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from vigie import kafka
from vigie.contracts.codec import dead_letter, decode
from vigie.contracts.schemas import DeadLetter
from vigie.errors import DecodeError
from vigie.kafka import ClientEvents
from vigie.sinks import consuming
from vigie.sinks.base import BatchingSink, Position
from vigie.sinks.retry import Backoff, SinkHealth, persist
from vigie.sinks.stats import SinkStats

log = logging.getLogger(__name__)

OUTPUT_MAX_BYTES = 4 * 1024 * 1024
"""Size limit for records Vigie itself produced (scores, alerts, dead letters)."""
MAX_ERRORS_KEPT = 50
"""Kafka errors kept in the stats (a long-running sink must not grow without bound)."""
COMMIT_WAIT_S = 10.0
"""How long a checkpoint waits for its commit to be acknowledged (a broker outage)."""
STALL_S = 60.0
"""A membership this long without progress (six session timeouts) is made anew."""


@dataclass(frozen=True)
class Route:
    """Where a topic's records go: their schema, their sink, their size limit."""

    schema: type[BaseModel]
    sink: BatchingSink[Any]
    max_bytes: int = OUTPUT_MAX_BYTES


class Pump:
    """Consumes topics into sinks; commits after each successful flush of them all.

    Parameters
    ----------
    config
        The consumer's configuration (:func:`vigie.kafka.consumer_config`).
    routes
        Physical topic name -> :class:`Route`.
    rejects
        Where dead letters of undecodable records go (flushed before each commit).
    events
        The consumer's :class:`~vigie.kafka.ClientEvents` (reachability, lag).
    name
        The pump's name in logs, ``/ready`` and metrics.
    batch_size, poll_s
        Messages taken per poll, and how long a poll waits for the first one.
    linger_s
        How long a poll then waits for company (:func:`vigie.kafka.take`): 0 for a sink
        read live, which takes what is already fetched (under load, still a batch).
    backoff
        Delays between attempts of a failing flush.
    assignment
        Partitions to read without a group (nothing committed); None: subscribe.
    stall_s
        How long a subscribed consumer may make no progress, though Kafka answers, before
        it is made anew (see :meth:`watch`).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        routes: Mapping[str, Route],
        rejects: BatchingSink[DeadLetter],
        events: ClientEvents,
        *,
        name: str,
        batch_size: int = 500,
        poll_s: float = 0.5,
        linger_s: float = kafka.BATCH_LINGER_S,
        backoff: Backoff | None = None,
        assignment: list[Any] | None = None,
        stall_s: float = STALL_S,
    ) -> None:
        from confluent_kafka import Consumer

        self.config = {**config, "on_commit": self._on_commit}
        self.consumer = Consumer(self.config)
        self.routes = dict(routes)
        self.rejects = rejects
        self.events = events
        self.name = name
        self.batch_size = batch_size
        self.poll_s = poll_s
        self.linger_s = linger_s
        self.backoff = backoff or Backoff()
        self.health = SinkHealth(name)
        self.stats = SinkStats()
        self.sinks: dict[str, BatchingSink[Any]] = {r.sink.name: r.sink for r in routes.values()}
        self.sinks.setdefault(rejects.name, rejects)
        self.stats.rows = dict.fromkeys(self.sinks, 0)
        self.commits = assignment is None
        self._uncommitted = False
        self._commits_in_flight = 0
        self._carried: list[Any] = []
        self._next: dict[tuple[str, int], int] = {}
        """Per partition, the offset after the last message routed: what a commit commits
        (the consumer's own position may already be past messages carried over)."""
        self._paused = False
        self._should_stop: Callable[[], bool] = lambda: False
        self._rng = random.Random()
        self.stall_s = stall_s
        self._progress_at = time.monotonic()
        """When the consumer last showed progress: a record, or nothing owed to it."""
        if assignment is None:
            self._subscribe()
        else:
            self.consumer.assign(assignment)

    def _subscribe(self) -> None:
        self.consumer.subscribe(list(self.routes), on_revoke=self._on_revoke, on_lost=self._on_lost)

    @property
    def topics(self) -> list[str]:
        """The physical topic names read."""
        return list(self.routes)

    # ------------------------------------------------------------------ reading
    def poll(self, want: int | None = None) -> int:
        """Take up to ``want`` (default ``batch_size``) messages into the sinks; return how many.

        Messages that arrived while a commit was awaited come first.
        """
        want = want or self.batch_size
        messages, self._carried = self._carried[:want], self._carried[want:]
        if len(messages) < want:
            wait_s = 0.0 if messages else self.poll_s
            messages += kafka.take(self.consumer, want - len(messages), wait_s, self.linger_s)
        for message in messages:
            self._route(message)
        return len(messages)

    def _route(self, message: Any) -> None:
        error = message.error()
        if error is not None:
            if len(self.stats.kafka_errors) < MAX_ERRORS_KEPT:
                self.stats.kafka_errors.append(str(error))
            self.events.error(error)
            return
        self.events.reachable_again()
        self._progress_at = time.monotonic()
        self._uncommitted = True
        self._next[(message.topic(), message.partition())] = message.offset() + 1
        self.stats.consumed += 1
        if self.stats.first_record_at is None:
            self.stats.first_record_at = time.monotonic()
        topic = message.topic()
        route = self.routes[topic]
        position = Position(topic, message.partition(), message.offset())
        try:
            record = decode(route.schema, message.value(), max_bytes=route.max_bytes)
        except DecodeError as exc:
            self._dead_letter(message, position, exc)
            return
        route.sink.add(record, position)

    def _dead_letter(self, message: Any, position: Position, exc: DecodeError) -> None:
        letter = dead_letter(
            position.topic, message.key(), message.value(), exc, consuming.kafka_time(message)
        )
        self.rejects.add(letter, position)
        self.stats.dead_lettered += 1
        reasons = self.stats.dead_letter_reasons
        reasons[exc.reason] = reasons.get(exc.reason, 0) + 1
        # the first of each reason is said; the rest are counted (stats, metrics)
        level = logging.WARNING if reasons[exc.reason] == 1 else logging.DEBUG
        log.log(
            level,
            "%s: dead-lettered %s[%d]@%d (%s, further ones counted only): %s",
            self.name,
            position.topic,
            position.partition,
            position.offset,
            exc.reason,
            exc,
        )

    # ------------------------------------------------------------------ writing
    def due(self) -> bool:
        """Whether any sink's batch is full or old enough."""
        return any(s.due() for s in self.sinks.values())

    def pending(self) -> int:
        """Records buffered and not yet written."""
        return sum(len(s) for s in self.sinks.values())

    def flush(self) -> int | None:
        """Write every sink's batch, retrying each until it succeeds; return records sent.

        None: asked to stop while a sink was failing (nothing more is written then).
        """
        sent = 0
        for name, sink in self.sinks.items():
            written = persist(sink.flush, self.health, self._wait, self.backoff, self._rng)
            if written is None:
                return None
            self.stats.rows[name] += written
            if sink is not self.rejects or any(r.sink is sink for r in self.routes.values()):
                self.stats.written += written
            sent += written
        self._resume()
        return sent

    def commit(self, *, wait: bool = False) -> None:
        """Commit the offsets of everything consumed so far (all of it is written).

        Asynchronous, so that neither a broker outage nor the broker's answer holds up the
        loop: a commit waited for after each batch delayed the next alert by up to 50 ms.
        One commit is in flight at a time; what is consumed meanwhile is committed by the
        next. ``wait`` (a stop): the answers are waited for, up to ``COMMIT_WAIT_S``, while
        polling on (what arrives meanwhile is kept for the next :meth:`poll`).
        A failed commit is retried by the next one; a replay meanwhile is absorbed.
        """
        from confluent_kafka import KafkaException

        if not self.commits:
            return
        if wait and self._uncommitted:
            self._await_commits()
        if self._uncommitted and not self._commits_in_flight:
            self._uncommitted = False
            self._commits_in_flight += 1
            try:
                self.consumer.commit(offsets=self._offsets(), asynchronous=True)
            except KafkaException as exc:
                self._on_commit(exc.args[0], [])
        if wait:
            self._await_commits()

    def _await_commits(self) -> None:
        deadline = time.monotonic() + COMMIT_WAIT_S
        while self._commits_in_flight and time.monotonic() < deadline:
            message = self.consumer.poll(0.05)
            if message is not None:
                self._carried.append(message)  # for the next poll: not read yet

    def _offsets(self) -> list[Any]:
        from confluent_kafka import TopicPartition

        return [TopicPartition(t, p, o) for (t, p), o in sorted(self._next.items())]

    def _on_commit(self, err: Any, partitions: list[Any]) -> None:
        from confluent_kafka import KafkaError

        self._commits_in_flight = max(0, self._commits_in_flight - 1)
        if err is not None and err.code() != KafkaError._NO_OFFSET:
            self._uncommitted = True
            self.events.error(err)
        elif err is None:
            self.events.reachable_again()

    def checkpoint(self, *, final: bool = False) -> int | None:
        """Flush then commit: the only order that never loses a record (``final``: the
        commit's answer is waited for)."""
        sent = self.flush()
        if sent is None:
            return None
        self.commit(wait=final)
        self.stats.checkpoints += 1
        self.stats.last_checkpoint_at = time.monotonic()
        log.debug("%s: checkpoint %d, %d records written", self.name, self.stats.checkpoints, sent)
        return sent

    def _wait(self, seconds: float) -> bool:
        """Between attempts of a failing flush: paused, keep polling (group membership,
        callbacks); a message still arriving is buffered. False when asked to stop."""
        self._pause()
        deadline = time.monotonic() + seconds
        while not self._should_stop():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            message = self.consumer.poll(min(left, 0.5))
            if message is not None:
                self._route(message)
        return False

    def _pause(self) -> None:
        if not self._paused:
            self.consumer.pause(self.consumer.assignment())
            self._paused = True

    def _resume(self) -> None:
        if self._paused:
            self.consumer.resume(self.consumer.assignment())
            self._paused = False

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        """Partitions taken away without a rebalance (the session timed out): no commit can
        succeed for them any more; what we hold is written once, else re-read."""
        log.warning("%s: %d partitions lost (session timed out)", self.name, len(partitions))
        self._uncommitted = False
        self._on_revoke(consumer, partitions)

    def watch(self) -> bool:
        """Make the consumer anew if its membership stalled; True when it did.

        Stalled: for ``stall_s`` Kafka answered, the pump was not pausing itself, and yet
        the consumer was either out of a settled group (rejoining without end) or not
        reading the records its partitions were reported to lag by. A new consumer joins
        the group again; nothing is lost (offsets are committed only after writes) and a
        re-read is absorbed by the sinks' idempotent writes.
        """
        lag = sum(self.events.lag.values())
        join_state = self.events.group.get("join_state", "steady")
        settled = join_state == "steady" and lag == 0  # a member with no partition too
        now = time.monotonic()
        if (
            not self.commits
            or self._paused
            or not self.events.reachable
            or self._carried
            or settled
        ):
            self._progress_at = now
            return False
        stalled_s = now - self._progress_at
        if stalled_s < self.stall_s:
            return False
        log.warning(
            "%s: no progress for %.0f s though Kafka answers (group %s, %d partitions, lag %d);"
            " joining again with a new consumer",
            self.name,
            stalled_s,
            join_state,
            len(self.consumer.assignment()),
            lag,
        )
        self.rejoin()
        return True

    def rejoin(self) -> None:
        """Close the consumer (leaving the group) and join again with a new one."""
        from confluent_kafka import Consumer

        try:
            self.consumer.close()
        except Exception as exc:  # a consumer that stalled may not close cleanly
            log.warning("%s: closing the stalled consumer failed (%s)", self.name, exc)
        for sink in self.sinks.values():  # not committed: read again by the new consumer
            sink.discard()
        self._uncommitted = False
        self._forget_partitions()
        self.events.group, self.events.lag = {}, {}
        self.consumer = Consumer(self.config)
        self._subscribe()
        self.stats.rejoins += 1
        self._progress_at = time.monotonic()

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        """Partitions leave: write what we hold once, else drop it for the next owner (the
        messages carried, not routed yet, are forgotten: the next owner reads them)."""
        try:
            for sink in self.sinks.values():
                sink.flush()
            if self.commits and self._uncommitted:
                self.consumer.commit(offsets=self._offsets(), asynchronous=False)
                self._uncommitted = False
        except Exception as exc:  # the next owner replays from the last commit
            log.warning("%s: partitions revoked while writing failed (%s): dropped", self.name, exc)
            for sink in self.sinks.values():
                sink.discard()
            self._uncommitted = False
        self._forget_partitions()

    def _forget_partitions(self) -> None:
        """What the pump knew of the partitions it held: carried messages, positions to
        commit, commits awaited, the pause."""
        self._carried.clear()
        self._next.clear()
        self._commits_in_flight = 0
        self._paused = False

    # ------------------------------------------------------------------ running
    def run(
        self,
        *,
        once: bool = False,
        until_idle: bool = False,
        max_records: int | None = None,
        idle_exit_s: float | None = None,
        ends: Mapping[tuple[str, int], int] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> SinkStats:
        """Consume and write until stopped, then checkpoint what is left.

        ``once``: stop after the first poll that brought records is written (or when
        caught up); ``until_idle``: stop when every partition is read to its end;
        ``max_records``: after that many records; ``idle_exit_s``: after that long without
        a record; ``ends``: once each (topic, partition) is read up to its offset.
        """
        self._should_stop = should_stop
        active_at = time.monotonic()
        while not should_stop():
            if max_records is not None and self.stats.consumed >= max_records:
                break
            left = None if max_records is None else max_records - self.stats.consumed
            arrived = self.poll(None if left is None else min(self.batch_size, left))
            idle = arrived == 0
            if arrived or not self.consumer.assignment():
                active_at = time.monotonic()
            wanted = self.due() or (idle and self.pending()) or (once and arrived)
            if wanted and (self.checkpoint() is None or once):
                break
            if ends is not None and self.reached(ends):
                break
            if idle and (once or until_idle) and self.caught_up():
                break
            if idle and idle_exit_s is not None and time.monotonic() - active_at >= idle_exit_s:
                break
            if idle:
                self.commit()  # what was consumed while the last commit was in flight
                self.watch()
        self.checkpoint(final=True)  # when stopped, one attempt: a failing sink is not waited for
        return self.stats

    def reached(self, ends: Mapping[tuple[str, int], int]) -> bool:
        """Whether every (topic, partition) in ``ends`` is read up to its offset."""
        return not self._carried and consuming.reached(self.consumer, ends)

    def caught_up(self) -> bool:
        """Whether every assigned partition has been read up to its high watermark."""
        return not self._carried and consuming.caught_up(self.consumer)

    def readiness(self) -> dict[str, Any]:
        """What ``/ready`` says: ready, the sink's state, Kafka's, the lag, the figures."""
        reachable = self.events.reachable
        since = datetime.fromtimestamp(time.time() - (time.monotonic() - self.events.since), UTC)
        return {
            "ready": reachable and self.health.state == "healthy",
            "sink": self.name,
            **self.health.as_dict(),
            "kafka": {"connected": reachable, "since": since.isoformat()},
            "group": self.events.group,
            "lag": {f"{t}[{p}]": n for (t, p), n in sorted(self.events.lag.items())},
            "stats": self.stats.as_dict(),
        }

    def close(self) -> None:
        """Leave the consumer group (buffered records are flushed once on revocation)."""
        self.consumer.close()

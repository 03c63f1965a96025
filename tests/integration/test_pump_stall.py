"""A sink's consumer whose group membership stalls is made anew, and loses nothing.

librdkafka rejoins its group by itself after a broker outage; once in the fault suite, a
dispatcher's intake never read again after its session timed out while the broker was
down. :meth:`Pump.watch` does not wait for that forever. Both stalls are put on a real
consumer of the real broker behind the pump's back: a consumer out of its group (it
unsubscribed, and nothing makes it join again), and one whose partitions stopped fetching
(paused) while records arrive. A quiet healthy consumer is left alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Producer
from pydantic import BaseModel

from vigie.contracts.catalogue import ALERTS
from vigie.kafka import ClientEvents, consumer_config
from vigie.settings import Settings
from vigie.sinks.base import Batch, BatchingSink
from vigie.sinks.deadletters import DeadLetterSink
from vigie.sinks.pump import Pump, Route
from vigie.sinks.web import PumpCollector

pytestmark = pytest.mark.integration

STALL_S = 4.0


class Numbered(BaseModel):
    n: int


class Kept(BatchingSink[Numbered]):
    """Keeps what it is given: the records the pump wrote, in order."""

    def __init__(self) -> None:
        super().__init__("kept")
        self.numbers: list[int] = []

    def write(self, batch: Batch[Numbered]) -> int:
        self.numbers.extend(r.n for r in batch.records)
        return len(batch)


@pytest.fixture
def pump(isolated_settings: Settings) -> Iterator[tuple[Pump, Kept, Callable[[int], None]]]:
    settings = isolated_settings
    topic = settings.topic(ALERTS.name)
    events = ClientEvents("stall-test")
    config = consumer_config(settings, f"{settings.topic_prefix}stall", events=events)
    kept = Kept()
    rejects = DeadLetterSink(settings, client_id="stall-test")
    pump = Pump(config, {topic: Route(Numbered, kept)}, rejects, events, name="stall-test",
                poll_s=0.2, stall_s=STALL_S)  # fmt: skip
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})

    def send(n: int) -> None:
        producer.produce(topic, b'{"n": %d}' % n, key=b"k")
        producer.flush(10)

    try:
        yield pump, kept, send
    finally:
        pump.close()
        rejects.close()


def settle(pump: Pump, kept: Kept, send: Callable[[int], None]) -> None:
    """The first record read and committed; the group steady in the statistics."""
    send(1)
    run_until(pump, lambda: 1 in kept.numbers and pump.events.group.get("join_state") == "steady")


def run_until(pump: Pump, done: Callable[[], bool], timeout: float = 60.0) -> float:
    """Run the pump (on this thread: the stall is put on it here) until ``done``; seconds."""
    began = time.monotonic()
    pump.run(should_stop=lambda: done() or time.monotonic() - began > timeout)
    assert done(), f"not done after {timeout} s"
    return time.monotonic() - began


def test_a_consumer_left_out_of_its_group_joins_again(
    pump: tuple[Pump, Kept, Callable[[int], None]],
) -> None:
    consumer, kept, send = pump
    settle(consumer, kept, send)
    consumer.consumer.unsubscribe()  # out of its group, and nothing rejoins it
    send(2)
    waited = run_until(consumer, lambda: 2 in kept.numbers)
    assert consumer.stats.rejoins == 1
    assert consumer.readiness()["stats"]["rejoins"] == 1
    rejoins = next(m for m in PumpCollector(consumer).collect() if m.name.endswith("rejoins"))
    assert [s.value for s in rejoins.samples if s.name.endswith("_total")] == [1]
    assert waited >= STALL_S  # the stall waited out, no sooner


def test_a_consumer_that_stopped_fetching_is_made_anew(
    pump: tuple[Pump, Kept, Callable[[int], None]],
) -> None:
    consumer, kept, send = pump
    settle(consumer, kept, send)
    consumer.consumer.pause(consumer.consumer.assignment())  # assigned, no longer fetching
    send(2)
    waited = run_until(consumer, lambda: 2 in kept.numbers)
    assert consumer.stats.rejoins == 1
    assert waited >= STALL_S


def test_a_quiet_healthy_consumer_is_left_alone(
    pump: tuple[Pump, Kept, Callable[[int], None]],
) -> None:
    consumer, kept, send = pump
    settle(consumer, kept, send)
    quiet = time.monotonic()
    run_until(consumer, lambda: time.monotonic() - quiet > 3 * STALL_S)  # no lag, steady
    send(2)
    run_until(consumer, lambda: 2 in kept.numbers)
    assert consumer.stats.rejoins == 0
    assert kept.numbers == [1, 2]

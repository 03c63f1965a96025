"""Two workers in one consumer group over 4 partitions; one is killed mid-stream and its
partitions move to the other with their models: every declaration is scored, every one is
learnt exactly once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from vigie.generator import generate
from vigie.settings import Settings
from vigie.streams.testing import TopicReader, WorkerProcess, produce, wait_for
from vigie.topics.codec import encode

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_killed_worker_partitions_move_and_nothing_is_lost(isolated_settings: Settings) -> None:
    settings = isolated_settings
    assert settings.topic_partitions == 4
    decls = [item.declaration for item in generate(4000, seed=41)]
    ids = {d.declaration_id for d in decls}
    one = WorkerProcess(settings, name="one").start()
    two = WorkerProcess(settings, name="two").start()
    scores = TopicReader(settings, "scores")
    try:
        for w in (one, two):
            w.wait_ready(timeout=240)
        wait_for(
            lambda: all(
                (b := w.ready()) and b["ready"] and len(b["partitions"]) == 2 for w in (one, two)
            ),
            120,
            "the group to settle on two partitions each",
        )
        held = {w.name: set(w.ready()["partitions"]) for w in (one, two)}  # type: ignore[index]
        assert held["one"] | held["two"] == {0, 1, 2, 3}
        assert not held["one"] & held["two"]

        records = [(d.importer.encode(), encode(d)) for d in decls]
        producer = threading.Thread(
            target=produce, args=(settings, "declarations", records), kwargs={"rate": 200.0}
        )
        producer.start()  # the stream goes on while a worker dies
        scores.read_until(lambda r: len(r.records) >= 800, 240, "800 scores")
        status = two.ready()
        assert status is not None and sum(m["declarations_learnt"] for m in status["models"]) > 0
        two.kill()

        body = one.wait_ready(timeout=240, partitions=4)
        assert set(body["partitions"]) == {0, 1, 2, 3}
        producer.join()
        scores.read_until(
            lambda r: ids <= {v["declaration_id"] for v in r.values()}, 300, "every score"
        )
        counts = Counter(v["declaration_id"] for v in scores.values())
        assert counts.keys() == ids  # duplicates allowed, one per id after dedup

        def learnt() -> int | None:
            status = one.ready()
            total = sum(m["declarations_learnt"] for m in status["models"]) if status else 0
            return total if total >= len(ids) else None

        assert wait_for(learnt, 120, "every declaration learnt", one) == len(ids)
        one.stop()
    finally:
        scores.close()
        one.kill()
        two.kill()

"""A snapshot the worker cannot read back: the partition's model is rebuilt from the log.

The restarted worker must read ``declarations`` again from offset 0 (not from the group's
committed position) so that the rebuilt model learns every declaration once, in order:
each Score's count of learnt declarations equals its declaration's offset.
"""

from __future__ import annotations

import pytest
from backports import zstd

from vigie.contracts.codec import encode
from vigie.settings import Settings
from vigie.worker.snapshots import SnapshotStore
from vigie.worker.state import PartitionState
from vigie_dev.generator import generate
from vigie_dev.testing import (
    TopicReader,
    WorkerProcess,
    declaration_positions,
    produce,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def write_unreadable_snapshots(settings: Settings) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "acks": "all"})
    store = SnapshotStore(settings, producer)
    for p in range(settings.topic_partitions):
        store.save(PartitionState(p, None), zstd.compress(b"not a pickle"))


def test_an_unreadable_snapshot_rebuilds_the_model_from_the_first_declaration(
    isolated_settings: Settings,
) -> None:
    settings = isolated_settings
    decls = [item.declaration for item in generate(700, seed=31)]
    first, later = decls[:600], decls[600:]
    worker = WorkerProcess(settings).start()
    restarted: WorkerProcess | None = None
    scores = TopicReader(settings, "scores")
    try:
        worker.wait_ready()
        produce(settings, "declarations", [(d.importer.encode(), encode(d)) for d in first])
        want = {d.declaration_id for d in first}
        scores.read_until(lambda r: want <= {v["declaration_id"] for v in r.values()}, 240, "600")
        assert worker.stop() == 0  # snapshots written, offsets committed past the 600
        write_unreadable_snapshots(settings)

        restarted = WorkerProcess(settings).start()
        restarted.wait_ready(partitions=settings.topic_partitions)
        failures = restarted.metric("vigie_snapshot_restore_failures_total")
        assert failures == settings.topic_partitions
        produce(settings, "declarations", [(d.importer.encode(), encode(d)) for d in later])
        wait_for(
            lambda: restarted.metric("vigie_declarations_total") >= len(decls),
            240,
            "the log relearnt from its start",
            restarted,
        )
        scores.read_until(lambda r: len(r.records) >= len(first) + len(decls), 120, "scores")
        offsets = {
            d: offset for d, (_, offset) in declaration_positions(settings, len(decls)).items()
        }
        learnt = [
            (v["declaration_id"], int(v["model_versions"]["atypicality"].rsplit("-", 1)[1]))
            for v in scores.values()
        ]
        assert [x for x in learnt if x[1] != offsets[x[0]]] == []
        assert restarted.metric("vigie_declarations_total") == len(decls)
        restarted.stop()
    finally:
        scores.close()
        worker.kill()
        if restarted is not None:
            restarted.kill()

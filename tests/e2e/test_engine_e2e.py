"""Two workers in one consumer group over 4 partitions, with a ``vigie warehouse write``
process owning the warehouse (its own embedded chDB); one worker is killed mid-stream and
its partitions move to the other with their models: every declaration is scored, every one
is learnt exactly once, and the warehouse's scores table holds exactly the generated
declaration ids, none missing, one row each after FINAL."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import orjson
import pytest

from vigie.contracts.codec import encode
from vigie.settings import Settings
from vigie_dev.demo.processes import Children
from vigie_dev.generator import generate
from vigie_dev.testing import (
    TopicReader,
    WorkerProcess,
    produce,
    run_json_script,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCORES_QUERY = """
import orjson
from vigie.settings import get_settings
from vigie.sinks.clickhouse_client import connect
c = connect(get_settings())
print(orjson.dumps({
    "score_ids": [r[0] for r in c.query("SELECT DISTINCT declaration_id FROM scores").result_rows],
    "score_rows": c.command("SELECT count() FROM scores FINAL"),
}).decode())
c.close()
"""


def writer_settings(settings: Settings) -> Settings:
    """Settings of the warehouse writer: own state dir, own embedded chDB under it."""
    return settings.model_copy(
        update={
            "state_dir": settings.state_dir / "warehouse",
            "kafka_bootstrap": settings.bootstrap_servers,
            "redis_url": settings.redis_dsn,
            "clickhouse_url": None,  # embedded chDB under the state dir, owned by the writer
        }
    )


def query_scores(children: Children) -> dict[str, Any]:
    """Distinct ids and FINAL row count of the scores table, from a separate process
    (chDB admits one process per directory)."""
    result: dict[str, Any] = run_json_script(SCORES_QUERY, children.env)
    return result


@pytest.mark.timeout(900)
def test_killed_worker_partitions_move_and_nothing_is_lost(isolated_settings: Settings) -> None:
    settings = isolated_settings
    assert settings.topic_partitions == 4
    decls = [item.declaration for item in generate(4000, seed=41)]
    ids = {d.declaration_id for d in decls}
    assert len(ids) == 4000
    warehouse_group = f"{settings.topic_prefix}warehouse"
    children = Children(writer_settings(settings))
    one = WorkerProcess(settings, name="one").start()
    two = WorkerProcess(settings, name="two").start()
    scores = TopicReader(settings, "scores")
    try:
        children.start("warehouse", "warehouse", "write", "--group", warehouse_group)
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

        started = time.monotonic()
        records = [(d.importer.encode(), encode(d)) for d in decls]
        producer = threading.Thread(
            target=produce, args=(settings, "declarations", records), kwargs={"rate": 200.0}
        )
        producer.start()  # the stream goes on while a worker dies
        scores.read_until(lambda r: len(r.records) >= 800, 240, "800 scores")
        status = two.ready()
        assert status is not None and sum(m["declarations_learnt"] for m in status["models"]) > 0
        two.kill()
        children.check()

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

        # the warehouse: stop the writer, drain what it had not written, read it back
        children.check()
        assert children.stop("warehouse") == 0
        drained = children.run("warehouse", "write", "--drain", "--group", warehouse_group)
        warehouse = query_scores(children)
        assert len(warehouse["score_ids"]) == len(ids) == warehouse["score_rows"]
        assert set(warehouse["score_ids"]) == ids  # none missing, nothing else
        print(
            "\nengine e2e figures:",
            orjson.dumps(
                {
                    "declarations": len(ids),
                    "score_records": len(scores.records),
                    "scored_twice": len(scores.records) - len(ids),
                    "warehouse_score_rows": warehouse["score_rows"],
                    "drained_rows": drained.get("rows"),
                    "elapsed_s": round(time.monotonic() - started, 1),
                }
            ).decode(),
        )
    finally:
        scores.close()
        children.stop_all()
        one.kill()
        two.kill()

"""The worker as a real subprocess on the real Kafka: scores, alerts, dead letters,
learning from control results, and surviving SIGKILL without relearning or forgetting."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from vigie.contracts.codec import encode
from vigie.contracts.schemas import Alert, ControlResult, Declaration
from vigie.settings import Settings
from vigie_dev.generator import generate
from vigie_dev.testing import TopicReader, WorkerProcess, produce, wait_for

if TYPE_CHECKING:
    from confluent_kafka import Producer

    from vigie.worker.snapshots import SnapshotStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "test-token-7f3a"
VIGIE = [sys.executable, "-c", "from vigie.cli import main; main()"]


def declarations(n: int, seed: int) -> tuple[list[Declaration], list[ControlResult]]:
    items = list(generate(n, seed=seed))
    return [i.declaration for i in items], [i.control for i in items if i.control is not None]


def send_declarations(
    settings: Settings, decls: list[Declaration], rate: float | None = None
) -> int:
    records = ((d.importer.encode(), encode(d)) for d in decls)
    return produce(settings, "declarations", records, rate=rate)


def distinct_ids(reader: TopicReader) -> Counter[str]:
    return Counter(v["declaration_id"] for v in reader.values())


def scored(ids: set[str]):  # type: ignore[no-untyped-def]
    return lambda reader: ids <= distinct_ids(reader).keys()


def test_scores_alerts_dead_letters_and_controls(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings
    decls, controls = declarations(400, seed=11)
    worker = WorkerProcess(settings, VIGIE_CONTROLS_TOKEN=TOKEN).start()
    scores = TopicReader(settings, "scores")
    try:
        worker.wait_ready()
        send_declarations(settings, decls[:300])
        produce(settings, "declarations", [(b"broken", b"{not json"), (None, b"[]")])
        ids = {d.declaration_id for d in decls[:300]}
        scores.read_until(scored(ids), 240, "the first 300 scores")

        # one Score per declaration, nothing else
        counts = distinct_ids(scores)
        assert counts.keys() == ids
        assert set(counts.values()) == {1}

        # invalid bytes went to the dead-letter topic with a reason, the worker lives on
        dlq = TopicReader(settings, "declarations.dlq")
        dlq.read_until(lambda r: len(r.records) >= 2, 60, "two dead letters")
        assert sorted(v["reason"] for v in dlq.values()) == ["invalid_json", "not_an_object"]
        assert worker.metric("vigie_dead_letters_total") == 2

        # an Alert for exactly the selected Scores, with the stable alert id
        selected = {v["declaration_id"] for v in scores.values() if v["selected"]}
        alerts = TopicReader(settings, "alerts")
        alerts.read_until(lambda r: len(r.records) >= len(selected), 60, "alerts")
        assert {a["alert_id"] for a in alerts.values()} == {Alert.id_for(i) for i in selected}
        assert worker.metric("vigie_declarations_total") == 300

        # feedback: control results through the CLI (file) and the HTTP endpoint (token)
        first = {v["declaration_id"]: v["model_versions"] for v in scores.values()}
        known = [c for c in controls if c.declaration_id in ids]
        assert len(known) >= 4, "the generator inspects about 5 % of declarations"
        path = tmp_path / "controls.jsonl"
        path.write_bytes(b"\n".join(encode(c) for c in known[:-2]) + b"\n")
        submit = subprocess.run(
            [*VIGIE, "controls", "submit", str(path), "--json"],
            env=worker.env,
            capture_output=True,
            check=False,
        )
        assert submit.returncode == 0, submit.stderr.decode()
        assert orjson.loads(submit.stdout)["delivered"] == len(known) - 2
        body = b"[" + b",".join(encode(c) for c in known[-2:]) + b"]"
        assert worker.post("/controls", body)[0] == 401
        assert worker.post("/controls", body, token="wrong")[0] == 401
        assert worker.post("/controls", b'{"declaration_id": "x"}', token=TOKEN)[0] == 422
        status, answer = worker.post("/controls", body, token=TOKEN)
        assert (status, orjson.loads(answer)) == (202, {"accepted": 2})
        wait_for(
            lambda: worker.metric("vigie_controls_learnt_total") >= len(known),
            120,
            "every control result learnt",
            worker,
        )

        # the new model versions show on later Scores of the partitions that learnt
        send_declarations(settings, decls[300:])
        later = {d.declaration_id for d in decls[300:]}
        scores.read_until(scored(later), 240, "the later scores")
        before = {v["memory"] for v in first.values()}
        after = {
            v["model_versions"]["memory"] for v in scores.values() if v["declaration_id"] in later
        }
        assert after - before, f"no later Score has a new case memory: {before} {after}"
    finally:
        scores.close()
        worker.stop()


def test_sigkill_mid_stream_then_restart_loses_and_relearns_nothing(
    isolated_settings: Settings,
) -> None:
    settings = isolated_settings
    decls, _ = declarations(2000, seed=23)
    ids = {d.declaration_id for d in decls}
    worker = WorkerProcess(settings).start()
    scores = TopicReader(settings, "scores")
    try:
        worker.wait_ready()
        # the stream goes on while the worker dies and comes back
        producer = threading.Thread(target=send_declarations, args=(settings, decls, 100.0))
        producer.start()
        scores.read_until(lambda r: len(distinct_ids(r)) >= 300, 240, "300 scores")

        def snapshotted() -> bool:
            body = worker.ready()
            return bool(body) and min(m["snapshot_id"] for m in body["models"]) >= 2  # type: ignore[index]

        wait_for(snapshotted, 60, f"a snapshot of every partition ({worker.ready()})", worker)
        assert worker.metric("vigie_declarations_total") < len(ids) - 300, "killed too late"
        worker.kill()

        restarted = WorkerProcess(settings, name="worker").start()
        restarted.wait_ready(partitions=settings.topic_partitions)
        producer.join()
        scores.read_until(scored(ids), 300, "every declaration scored after restart")
        # duplicates may sit in the topic (replay after the last snapshot), one per id after dedup
        assert distinct_ids(scores).keys() == ids

        # the model continued from its snapshot: every declaration learnt exactly once
        def learnt_all() -> int | None:
            body = restarted.ready()
            total = sum(m["declarations_learnt"] for m in body["models"]) if body else 0
            return total if total >= len(ids) else None

        assert wait_for(learnt_all, 120, "the models to learn everything", restarted) == len(ids)
        # ... and from the snapshots, not by relearning the stream from its start
        rescored = restarted.metric("vigie_declarations_total")
        assert 0 < rescored < len(ids)
        restarted.stop()
    finally:
        scores.close()
        worker.kill()


def snapshot_store(settings: Settings) -> tuple[Producer, SnapshotStore]:
    """A producer of the test's own and a snapshot store writing with it."""
    from confluent_kafka import Producer

    from vigie.worker.snapshots import SnapshotStore

    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "acks": "all"})
    return producer, SnapshotStore(settings, producer)


def test_snapshot_store_keeps_the_last_whole_snapshot_across_a_torn_write(
    isolated_settings: Settings,
) -> None:
    import os

    from vigie.worker.increments import dumps
    from vigie.worker.snapshots import CHUNK_BYTES, chunk_key
    from vigie.worker.state import PartitionState

    settings = isolated_settings
    producer, store = snapshot_store(settings)

    def state(offset: int, payload: bytes) -> PartitionState:
        s = PartitionState(2, {"payload": payload})
        s.declarations_offset = offset
        return s

    assert store.load(2) is None
    big = os.urandom(CHUNK_BYTES * 2 + 1000)  # incompressible: three chunks
    first = state(10, big)
    assert store.save(first, dumps(first, full=True)).chunks == 3
    second = state(20, b"second")
    second.snapshot_id = first.snapshot_id
    store.save(second, dumps(second, full=True))
    # a worker dies while writing the third snapshot: chunks, no manifest
    torn = (second.snapshot_id + 1) % 2
    producer.produce(
        settings.topic("model-state"),
        b"garbage",
        chunk_key(2, torn, 0),
        partition=2 % store.state_partitions(),
    )
    assert producer.flush(30) == 0
    restored = store.load(2)
    assert restored is not None
    assert (restored.declarations_offset, restored.engine) == (20, {"payload": b"second"})
    assert restored.snapshot_id == 2
    assert store.load(1) is None


def test_snapshot_store_restores_a_chain_of_deltas_and_survives_a_torn_delta(
    isolated_settings: Settings,
) -> None:
    from vigie.model.engine import RiskEngine
    from vigie.worker.increments import (
        changed_entries,
        dumps,
        forget_changes,
        next_is_delta,
        tracked,
    )
    from vigie.worker.processing import score_and_learn
    from vigie.worker.snapshots import chunk_key
    from vigie.worker.state import PartitionState

    settings = isolated_settings
    producer, store = snapshot_store(settings)
    decls, _ = declarations(900, seed=37)
    live = PartitionState(1, RiskEngine(seed=2))

    def feed(batch: list) -> None:  # type: ignore[type-arg]
        for d in batch:
            score_and_learn(live, d.importer.encode(), encode(d), source_topic="declarations")
            live.declarations_offset += 1

    def save() -> bool:
        delta = next_is_delta(live, changed_entries(live))
        saved = store.save(live, dumps(live, full=not delta), delta=delta)
        forget_changes(live)
        return saved.full

    feed(decls[:600])
    kinds = [save()]
    # deltas of 25 declarations: three weigh three quarters of the full snapshot, under the
    # weight at which the chain starts a new one (Chain.wants_full)
    for start in range(600, 700, 25):
        feed(decls[start : start + 25])
        kinds.append(save())
    assert kinds == [True, False, False, False, False]
    # a worker dies while writing the next delta: its chunk, no manifest
    assert live.chain is not None
    producer.produce(
        settings.topic("model-state"),
        b"garbage",
        chunk_key(1, live.chain.slot, 0, delta=len(live.chain.deltas)),
        partition=1 % store.state_partitions(),
    )
    assert producer.flush(30) == 0
    restored = store.load(1)
    assert restored is not None and restored.chain == live.chain
    assert restored.position == live.position == (699, -1)
    for (mine, _), (theirs, _) in zip(tracked(live), tracked(restored), strict=True):
        assert list(mine) == list(theirs)

    def risks(state: PartitionState) -> list[float | None]:
        outs = [
            score_and_learn(state, d.importer.encode(), encode(d), source_topic="declarations")
            for d in decls[800:]
        ]
        return [None if o.score is None else o.score.risk for o in outs]

    assert risks(restored) == risks(live)


def test_a_clean_stop_snapshots_so_a_restart_rescores_nothing(isolated_settings: Settings) -> None:
    settings = isolated_settings
    decls, _ = declarations(550, seed=29)
    decls, more = decls[:500], decls[500:]
    worker = WorkerProcess(settings).start()
    scores = TopicReader(settings, "scores")
    try:
        worker.wait_ready()
        send_declarations(settings, decls)
        scores.read_until(scored({d.declaration_id for d in decls}), 240, "every score")
        assert worker.stop() == 0
        restarted = WorkerProcess(settings).start()
        body = restarted.wait_ready(partitions=settings.topic_partitions)
        assert sum(m["declarations_learnt"] for m in body["models"]) == len(decls)
        send_declarations(settings, more)
        scores.read_until(scored({d.declaration_id for d in more}), 240, "the new scores")
        assert restarted.metric("vigie_declarations_total") == len(more)
        assert len(scores.records) == len(decls) + len(more)  # nothing scored twice
        restarted.stop()
    finally:
        scores.close()
        worker.kill()


def test_checkpoints_in_flight_save_the_state_they_covered_while_the_model_learns(
    isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Snapshots written in slices, full or delta, the model learning between the slices,
    then closed by a delta: each chain restores exactly the state at the offsets the
    checkpoint commits; a checkpoint dropped half-way leaves the previous chain, and the
    next snapshot is full."""
    from vigie.model.engine import RiskEngine
    from vigie.worker import checkpoint as checkpoint_module
    from vigie.worker import increments
    from vigie.worker.checkpoint import Checkpoint
    from vigie.worker.increments import tracked
    from vigie.worker.metrics import WorkerMetrics
    from vigie.worker.outputs import Outputs
    from vigie.worker.processing import score_and_learn
    from vigie.worker.state import PartitionState, SnapshotCosts

    settings = isolated_settings
    monkeypatch.setattr(increments, "CHUNK", 40)  # many slices, a pickle each
    monkeypatch.setattr(checkpoint_module, "SLICE_S", 0.0)
    _, store = snapshot_store(settings)
    decls, _ = declarations(1400, seed=41)
    live = PartitionState(1, RiskEngine(seed=2))
    commits: list[dict[int, tuple[int, int]]] = []  # the positions committed, by partition

    def commit(states: Iterable[PartitionState]) -> None:
        commits.append({s.partition: s.position for s in states})

    checkpoint = Checkpoint(Outputs(settings), store, commit, WorkerMetrics())

    def feed(state: PartitionState, n: int) -> None:
        start = state.declarations_offset + 1
        for d in decls[start : start + n]:
            score_and_learn(state, d.importer.encode(), encode(d), source_topic="declarations")
            state.declarations_offset += 1

    def learning_until_saved() -> int:
        """Feed the live model between the slices of the checkpoint in flight."""
        turns = 0
        while checkpoint.collect() is None:
            feed(live, 3)
            turns += 1
        return turns

    def restored_as_replayed() -> PartitionState:
        restored = store.load(1)
        assert restored is not None
        assert restored.position == commits[-1][1] == live.position
        replayed = PartitionState(1, RiskEngine(seed=2))
        feed(replayed, restored.declarations_offset + 1)
        assert restored.position == replayed.position
        for (mine, _), (theirs, _) in zip(tracked(replayed), tracked(restored), strict=True):
            assert plain(mine) == plain(theirs)
        return restored

    feed(live, 600)
    assert checkpoint.start(live) is None  # the first snapshot: full, in slices
    assert learning_until_saved() >= 10
    restored = restored_as_replayed()
    assert restored.chain is not None and len(restored.chain.deltas) == 1  # the closing one

    feed(live, 200)
    live.costs = SnapshotCosts()  # the kind chosen by the chain, and sliced, whatever the timings
    recorded: list[int] = []
    record = SnapshotCosts.record

    def recording(self: SnapshotCosts, *, full: bool, seconds: float, changes: int) -> None:
        recorded.append(changes)
        record(self, full=full, seconds=seconds, changes=changes)

    with monkeypatch.context() as passes:  # every closing delta worth a further pass
        passes.setattr(checkpoint_module, "CLOSING_S", 0.0)
        passes.setattr(SnapshotCosts, "delta_seconds", lambda self, changes: 1e-9)
        passes.setattr(SnapshotCosts, "record", recording)
        at_start = increments.changed_entries(live)
        assert increments.next_is_delta(live, at_start)
        assert checkpoint.start(live) is None  # a delta, in slices
        assert learning_until_saved() >= 10
    # its cost is measured over every entry written, those changed while the slices were
    assert recorded[-1] > at_start
    restored = restored_as_replayed()
    assert restored.chain is not None  # the closing delta, then 4 passes and their closing
    assert len(restored.chain.deltas) == 1 + checkpoint_module.MAX_PASSES + 1

    # dropped half-way (the partition lost): nothing named, the next snapshot is full
    feed(live, 100)
    assert checkpoint.start(live) is None
    checkpoint.collect()
    checkpoint.abandon([1])
    assert store.load(1).position == restored.position  # type: ignore[union-attr]
    assert live.chain is not None and live.chain.wants_full()
    feed(live, 50)
    assert checkpoint.start(live) is None
    learning_until_saved()
    previous = restored.chain
    restored = restored_as_replayed()
    assert restored.chain is not None and previous is not None
    assert restored.chain.slot != previous.slot  # a new chain, its full in the other slot


def plain(value: Any) -> Any:
    """A value as comparable data (objects by their attributes, arrays as lists)."""
    if isinstance(value, dict):
        return [(k, plain(v)) for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "__dict__"):
        return plain(vars(value))
    if hasattr(value, "__slots__"):
        return [plain(getattr(value, name, None)) for name in value.__slots__]
    return value

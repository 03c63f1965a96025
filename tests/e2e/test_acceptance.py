"""Acceptance of "the engine end to end", on the real stack, every part a real process.

1. ``test_50k_declarations_through_every_sink_with_a_worker_killed_mid_stream``: 50,000
   generated declarations and their control results are replayed through a ``vigie
   worker`` subprocess, with ``vigie warehouse write`` (its own embedded chDB),
   ``vigie alerts publish`` (Redis) and ``vigie webhooks dispatch`` to a local receiver
   that fails each delivery's first attempt and verifies every signature with the
   independent ``standardwebhooks`` package. The worker is SIGKILLed once 15,000 scores
   are visible and restarted. Then: exactly the 50,000 declaration ids in ClickHouse
   scores; the same alert ids, once each, in the Redis stream and the ClickHouse alerts
   table; exactly one 2xx per matching (alert, subscriber) at the receiver; and every
   Score's learnt-declaration counter equals its declaration's offset in its partition:
   the restarted model continued from its snapshot, learning each declaration once, and
   scored each replayed declaration exactly as before the kill.
2. ``test_control_results_move_later_scores_of_the_labelled_keys``: labels sent for
   declarations sharing a key (declarant, seller, HS6, origin) raise the supervised
   probability and the risk of later declarations with that key, above what they were
   before the labels and above a key without labels, through the real worker and Kafka.

Figures (elapsed, scores/s, restart time) are printed: run with ``pytest -s`` to see them.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from vigie.contracts.codec import decode, encode
from vigie.contracts.schemas import Alert, ControlResult, Declaration
from vigie.errors import VigieError
from vigie.settings import Settings
from vigie.sinks.redis_alerts import AlertKeys
from vigie.sinks.webhooks.signing import new_secret, webhook_id
from vigie.sinks.webhooks.subscribers import load_subscribers
from vigie_dev.demo.processes import Children
from vigie_dev.demo.stream import ReplayThread, interleave
from vigie_dev.generator import generate
from vigie_dev.testing import (
    TopicReader,
    WorkerProcess,
    declaration_positions,
    produce,
    run_json_script,
    wait_for,
)

if TYPE_CHECKING:
    import redis

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

N = 50_000
KILL_AFTER = 15_000
SEED = 20261129
UNTHROTTLED = 1e7
"""Replay rate: far above what one producer reaches, so the token bucket never waits."""

WAREHOUSE_QUERY = """
import orjson
from vigie.settings import get_settings
from vigie.sinks.clickhouse_client import connect
c = connect(get_settings())
col = lambda sql: [r[0] for r in c.query(sql).result_rows]
print(orjson.dumps({
    "score_ids": col("SELECT DISTINCT declaration_id FROM scores"),
    "alert_ids": col("SELECT DISTINCT alert_id FROM alerts"),
    "score_rows": c.command("SELECT count() FROM scores FINAL"),
    "alert_rows": c.command("SELECT count() FROM alerts FINAL"),
}).decode())
c.close()
"""


def stack_of_processes(settings: Settings, tmp_path: Path, redis_prefix: str) -> Settings:
    """Settings every child process gets: own state dir, own chDB, own Redis keys."""
    return settings.model_copy(
        update={
            "state_dir": tmp_path / "acceptance",
            "kafka_bootstrap": settings.bootstrap_servers,
            "redis_url": settings.redis_dsn,
            "clickhouse_url": None,  # embedded chDB under the state dir, owned by the writer
            "redis_prefix": redis_prefix,
        }
    )


def learnt_before(score: dict[str, Any]) -> int:
    """How many declarations the engine had learnt when it scored this one."""
    return int(score["model_versions"]["atypicality"].rsplit("-", 1)[1])


def redis_alert_entries(client: redis.Redis, stream: str) -> Counter[str]:
    """Entries of the Redis alert stream per alert id."""
    counts: Counter[str] = Counter()
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(stream)  # type: ignore[assignment]
    for _, fields in entries:
        counts[fields[b"alert_id"].decode()] += 1
    return counts


def write_subscribers(path: Path, secrets: dict[str, str], url: Callable[[str], str]) -> Path:
    """Two subscribers: every alert, and a desk taking only high valuation evidence."""
    path.write_text(
        f'[[subscribers]]\nname = "all"\nurl = "{url("all")}"\nsecret = "{secrets["all"]}"\n\n'
        f'[[subscribers]]\nname = "desk"\nurl = "{url("desk")}"\nsecret = "{secrets["desk"]}"\n'
        "min_risk = 0.5\n[subscribers.detectors]\nvaluation = 0.5\n"
    )
    return path


def cleanup_redis(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])


@pytest.fixture
def redis_prefix(redis_client: redis.Redis, unique_name: Callable[[str], str]) -> Iterator[str]:
    prefix = unique_name("acceptance")
    yield prefix
    cleanup_redis(redis_client, prefix)


@pytest.mark.timeout(900)
def test_50k_declarations_through_every_sink_with_a_worker_killed_mid_stream(
    isolated_settings: Settings,
    tmp_path: Path,
    redis_client: redis.Redis,
    redis_prefix: str,
    hook_receiver: Callable[..., Any],
) -> None:
    settings = stack_of_processes(isolated_settings, tmp_path, redis_prefix)
    group = settings.topic_prefix
    children = Children(settings)
    data = settings.state_dir / "data"
    files = (data / "declarations.jsonl", data / "controls.jsonl", data / "truth.jsonl")
    generated = children.run("generate", "--declarations", str(N), "--seed", str(SEED),
                             "--out", str(files[0]), "--controls", str(files[1]),
                             "--truth", str(files[2]))  # fmt: skip
    assert generated["declarations"] == N and generated["controls"] > 0
    ids = {orjson.loads(line)["declaration_id"] for line in files[0].read_bytes().splitlines()}
    assert len(ids) == N

    secrets = {"all": new_secret(), "desk": new_secret()}
    receiver = hook_receiver(secrets, fail_first=1)
    hooks = write_subscribers(settings.state_dir / "webhooks.toml", secrets, receiver.url)
    subscribers = {s.name: s for s in load_subscribers(hooks)}

    worker = WorkerProcess(settings, name="worker")
    restarted: WorkerProcess | None = None
    scores = TopicReader(settings, "scores")
    alerts = TopicReader(settings, "alerts")
    try:
        worker.start()
        children.start("warehouse", "warehouse", "write", "--group", f"{group}warehouse")
        children.start("alerts", "alerts", "publish", "--group", f"{group}alerts")
        children.start("webhooks", "webhooks", "dispatch", "--file", str(hooks),
                       "--group", f"{group}webhooks", "--base-delay", "0.2",
                       "--max-delay", "2")  # fmt: skip
        worker.wait_ready(timeout=240, partitions=settings.topic_partitions)

        pairs = interleave(files[0], files[1], data / "stream")
        replay = ReplayThread(settings, pairs, UNTHROTTLED)
        started = time.monotonic()
        replay.start()

        def distinct(reader: TopicReader) -> set[str]:
            return {v["declaration_id"] for v in reader.values()}

        scores.read_until(lambda r: len(distinct(r)) >= KILL_AFTER, 300, f"{KILL_AFTER} scores")
        before_kill = len(distinct(scores))

        def snapshotted() -> bool:  # snapshot 1 is the empty model of the assignment
            body = worker.ready()
            return body is not None and min(m["snapshot_id"] for m in body["models"]) >= 2

        wait_for(snapshotted, 60, "a snapshot of every partition", worker)
        assert worker.metric("vigie_declarations_total") < N - 10_000, "killed too late"
        worker.kill()
        killed_at = time.time()
        children.check()

        restarted = WorkerProcess(settings, name="worker").start()
        restarted.wait_ready(timeout=240, partitions=settings.topic_partitions)
        ready_after = time.time() - killed_at
        replay.join(300)
        assert replay.report is not None, f"replay failed: {replay.error!r}"
        assert replay.report["declarations"] == N
        assert replay.report["rejected"] == 0 and replay.report["delivery_errors"] == 0

        scores.read_until(lambda r: ids <= distinct(r), 480, "every declaration scored")
        all_scored = time.monotonic() - started
        assert distinct(scores) == ids
        children.check()

        # alerts: as the worker raised them on Kafka (replays after the kill included)
        raised = alerts_raised(alerts, scores)
        stream = AlertKeys(redis_prefix).stream
        wait_for(
            lambda: set(redis_alert_entries(redis_client, stream)) >= raised.keys(),
            180,
            "every alert in Redis",
        )
        # the dispatcher queues an alert for a subscriber when a record of it matches
        expected_hooks = {
            name: {
                aid
                for aid, records in raised.items()
                if any(sub.matches(decode(Alert, orjson.dumps(a))) for a in records)
            }
            for name, sub in subscribers.items()
        }
        assert 0 < len(expected_hooks["desk"]) < len(raised) == len(expected_hooks["all"])

        def hooks_delivered() -> bool:
            delivered = receiver.snapshot()[0]
            return all(set(delivered.get(n, ())) >= want for n, want in expected_hooks.items())

        wait_for(hooks_delivered, 300, "every matching alert delivered by webhook")
        all_delivered = time.monotonic() - started
        time.sleep(3)  # a late duplicate would show up now
        for name in ("webhooks", "alerts", "warehouse"):
            assert children.stop(name) == 0, name
        restarted_scored = int(restarted.metric("vigie_declarations_total"))
        restarted.stop()

        # Redis: every alert once, nothing else
        entries = redis_alert_entries(redis_client, stream)
        assert set(entries) == raised.keys()
        assert set(entries.values()) == {1}

        # webhooks: each matching (alert, subscriber) exactly once answered 2xx, all signed
        delivered, successes, attempts, invalid = receiver.snapshot()
        assert invalid == []
        for name, want in expected_hooks.items():
            assert set(delivered[name]) == want, name
            assert set(delivered[name].values()) == {1}, name
        wanted_ids = {webhook_id(a, n) for n, want in expected_hooks.items() for a in want}
        assert set(successes) == wanted_ids and set(successes.values()) == {1}
        assert all(attempts[i] >= 2 for i in wanted_ids)  # the first attempt was refused

        # ClickHouse: drain what the writer had not written, then read the tables back
        drained = children.run("warehouse", "write", "--drain", "--group",
                               f"{group}warehouse")  # fmt: skip
        warehouse = query_warehouse(children)
        assert len(warehouse["score_ids"]) == N == warehouse["score_rows"]
        assert set(warehouse["score_ids"]) == ids
        assert set(warehouse["alert_ids"]) == raised.keys() == set(entries)
        assert warehouse["alert_rows"] == len(raised)

        # the model continued across the kill: each score's count of learnt declarations
        # is its declaration's offset (learnt once each, none skipped, none relearnt) ...
        positions = declaration_positions(settings, N)
        assert positions.keys() == ids
        wrong = [
            (v["declaration_id"], learnt_before(v), positions[v["declaration_id"]])
            for v in scores.values()
            if learnt_before(v) != positions[v["declaration_id"]][1]
        ]
        assert wrong == [], wrong[:5]
        # ... and the restarted worker resumed from snapshots, not from offset 0
        after = [v for _, v, ts in scores.records if ts > killed_at + 1.0]
        resumed: dict[int, int] = {}
        for v in after:
            p = positions[v["declaration_id"]][0]
            resumed[p] = min(resumed.get(p, N), learnt_before(v))
        assert resumed, "the restarted worker scored nothing"
        assert min(resumed.values()) > 0, resumed
        # a partition the restarted worker had nothing to score was finished before the kill
        scored_before = {v["declaration_id"] for _, v, ts in scores.records if ts <= killed_at + 1}
        for p in set(range(settings.topic_partitions)) - resumed.keys():
            unscored = [i for i, (q, _) in positions.items() if q == p and i not in scored_before]
            assert unscored == [], (p, unscored[:5])
        # rescored only what followed the last snapshots, not what was scored before the kill
        assert len(scores.records) - N < before_kill
        assert restarted_scored < N
        # ... and scored again exactly as the first time: same risk, selection, reasons
        told: dict[str, set[bytes]] = {}
        for v in scores.values():
            said = {k: x for k, x in v.items() if k not in ("scored_at", "latency_ms")}
            told.setdefault(v["declaration_id"], set()).add(orjson.dumps(said))
        changed = [i for i, said in told.items() if len(said) > 1]
        assert changed == [], f"{len(changed)} declarations scored differently: {changed[:5]}"

        figures = {
            "declarations": N,
            "controls": replay.report["controls"],
            "replay_s": replay.report["seconds"],
            "all_scored_s": round(all_scored, 1),
            "scores_per_s": round(N / all_scored, 1),
            "all_in_redis_and_webhooks_s": round(all_delivered, 1),
            "score_records": len(scores.records),
            "scored_before_kill": before_kill,
            "restart_ready_s": round(ready_after, 1),
            "first_learnt_after_restart": {str(p): n for p, n in sorted(resumed.items())},
            "scored_by_restarted_worker": restarted_scored,
            "scored_twice": len(scores.records) - N,
            "alerts": len(raised),
            "alert_records_on_kafka": len(alerts.records),
            "webhooks": {n: len(w) for n, w in expected_hooks.items()},
            "webhook_attempts": sum(attempts.values()),
            "drained_rows": drained.get("rows"),
        }
        print("\nacceptance figures:", orjson.dumps(figures).decode())
    finally:
        scores.close()
        alerts.close()
        children.stop_all()
        worker.kill()
        if restarted is not None:
            restarted.kill()


def alerts_raised(alerts: TopicReader, scores: TopicReader) -> dict[str, list[dict[str, Any]]]:
    """The alert records on Kafka by alert id, once every selected score's alert is there."""
    selected = {Alert.id_for(v["declaration_id"]) for v in scores.values() if v["selected"]}

    def missing(reader: TopicReader) -> set[str]:
        return selected - {v["alert_id"] for v in reader.values()}

    try:
        alerts.read_until(lambda r: not missing(r), 120, "every alert on Kafka")
    except VigieError as exc:
        raise AssertionError(f"{exc}; none for {sorted(missing(alerts))[:5]}") from exc
    records: dict[str, list[dict[str, Any]]] = {}
    for v in alerts.values():
        records.setdefault(v["alert_id"], []).append(v)
    assert records.keys() == selected
    return records


def query_warehouse(children: Children) -> dict[str, Any]:
    """Distinct ids and row counts of the scores and alerts tables (a separate process:
    chDB admits one process per directory, and the pytest session may hold its own)."""
    result: dict[str, Any] = run_json_script(WAREHOUSE_QUERY, children.env)
    return result


# ---------------------------------------------------------------------- learning from controls
IMPORTER = "FR99999999900099"
"""One importer for every labelled group: its declarations share one partition, so one
engine scores them all and the comparisons are within one model."""
GROUPS = {
    "labelled_infraction": dict(declarant="FR11111111100001", seller="XX-LABEL-A",
                                commodity_code="85171300", origin="VN"),
    "labelled_compliant": dict(declarant="FR22222222200002", seller="XX-LABEL-B",
                               commodity_code="94036090", origin="MA"),
    "unlabelled": dict(declarant="FR33333333300003", seller="XX-CTRL-C",
                       commodity_code="39269097", origin="TR"),
}  # fmt: skip
PER_ROUND = 40
LABELLED_ROUNDS = 3


def learnt_at_least(worker: WorkerProcess, n: int) -> bool:
    return worker.metric("vigie_controls_learnt_total") >= n


def label(decl: Declaration, *, fraud: bool) -> ControlResult:
    """The control result of ``decl``, a day after it was lodged."""
    return ControlResult(
        declaration_id=decl.declaration_id,
        controlled_at=decl.lodged_at + timedelta(days=1),
        outcome="infraction" if fraud else "compliant",
        selection="other",
    )


def test_control_results_move_later_scores_of_the_labelled_keys(
    isolated_settings: Settings,
) -> None:
    settings = isolated_settings
    background = [item.declaration for item in generate(600, seed=3)]
    template = background[0]
    made = [0]

    def declaration(group: str, i: int) -> Declaration:
        made[0] += 1
        like = background[i % len(background)]
        return template.model_copy(
            update=dict(
                declaration_id=f"ACC-{group}-{made[0]}",
                importer=IMPORTER,
                lodged_at=template.lodged_at + timedelta(days=10, minutes=made[0]),
                customs_value_eur=like.customs_value_eur,
                net_mass_kg=like.net_mass_kg,
                **GROUPS[group],
            )
        )

    def send(decls: list[Declaration]) -> None:
        produce(settings, "declarations", [(d.importer.encode(), encode(d)) for d in decls])

    worker = WorkerProcess(settings, name="learner").start()
    scores = TopicReader(settings, "scores")
    by_id: dict[str, dict[str, Any]] = {}

    def scored(decls: list[Declaration]) -> list[dict[str, Any]]:
        want = {d.declaration_id for d in decls}
        scores.read_until(lambda r: want <= {v["declaration_id"] for v in r.values()},
                          240, f"{len(want)} scores")  # fmt: skip
        by_id.update({v["declaration_id"]: v for v in scores.values()})
        return [by_id[d.declaration_id] for d in decls]

    try:
        worker.wait_ready(timeout=240)
        send(background)
        scored(background)
        medians: dict[tuple[int, str], tuple[float, float]] = {}
        labels = 0
        for r in range(LABELLED_ROUNDS + 1):
            batch = {g: [declaration(g, i) for i in range(PER_ROUND)] for g in GROUPS}
            send([d for g in GROUPS for d in batch[g]])
            for g, decls in batch.items():
                out = scored(decls)
                medians[(r, g)] = (
                    statistics.median(s["supervised_probability"] for s in out),
                    statistics.median(s["risk"] for s in out),
                )
            if r == LABELLED_ROUNDS:
                final = scored(batch["labelled_infraction"])
                break
            results = [
                label(d, fraud=g == "labelled_infraction")
                for g in ("labelled_infraction", "labelled_compliant")
                for d in batch[g]
            ]
            produce(settings, "control-results",
                    [(c.declaration_id.encode(), encode(c)) for c in results])  # fmt: skip
            labels += len(results)
            wait_for(partial(learnt_at_least, worker, labels), 120, "labels learnt", worker)

        print("\nsupervised probability / risk (medians) by round and key:")
        for (r, g), (p, risk) in sorted(medians.items()):
            print(f"  round {r} {g:<20} supervised {p:.3f} risk {risk:.3f}")
        last = LABELLED_ROUNDS
        sup = {g: medians[(last, g)][0] for g in GROUPS}
        risks = {g: medians[(last, g)][1] for g in GROUPS}
        # before any label the case memory says its cold-start prior (10 %)
        assert medians[(0, "labelled_infraction")][0] == pytest.approx(0.1)
        # after: the labelled-infraction key went up, above the unlabelled and compliant keys
        assert sup["labelled_infraction"] > medians[(0, "labelled_infraction")][0] + 0.3
        assert sup["labelled_infraction"] > sup["unlabelled"] + 0.3
        assert sup["labelled_infraction"] > sup["labelled_compliant"] + 0.3
        # the final risk follows (its size depends on how the combiner calibrates the
        # supervised probability; its order must not)
        assert risks["labelled_infraction"] > risks["unlabelled"]
        assert risks["labelled_infraction"] > risks["labelled_compliant"]
        assert risks["labelled_infraction"] > medians[(0, "labelled_infraction")][1]
        # one engine learnt every label, and the final scores were made with all of them
        versions = {s["model_versions"]["memory"] for s in final}
        assert versions == {f"memory-{labels}"}
        worker.stop()
    finally:
        scores.close()
        worker.kill()

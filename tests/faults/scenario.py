"""The faults of the suite, each injected into the live stream, then lifted, then timed.

:class:`Run` holds the private stack, the live stream and the engine's processes. Its
:meth:`Run.fault` injects one fault, lifts it, and waits until every declaration produced
so far has gone all the way (:meth:`~vigie_dev.testing.pipeline.Pipeline.missing`); the
fault's :class:`~vigie_dev.testing.reliability.Window` is the declarations produced from
the injection until then. The injectors below each return what they saw of their fault
(a fault that did not take effect proves nothing: the test checks they did).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from vigie.contracts.codec import dead_letter, decode
from vigie.contracts.schemas import Alert
from vigie.errors import DecodeError
from vigie.settings import Settings
from vigie.sinks.warehouse.rows import letter_id
from vigie_dev.demo.processes import Children
from vigie_dev.testing import produce, wait_for
from vigie_dev.testing.hostile import corpus
from vigie_dev.testing.ledger import ledger, read_topic, values
from vigie_dev.testing.live_stream import LiveStream
from vigie_dev.testing.pipeline import Pipeline
from vigie_dev.testing.private_stack import PrivateStack
from vigie_dev.testing.reliability import Observed, Window

RECOVERY_TIMEOUT_S = 300.0
BROKER_DOWN_S = 30.0
REDIS_DOWN_S = 30.0
REDIS_FROZEN_S = 20.0
CLICKHOUSE_REFUSING_S = 30.0
RECEIVER_DOWN_S = 120.0


@dataclass
class Run:
    """One run of the suite: the stack, the stream, the engine, the faults so far."""

    stack: PrivateStack
    settings: Settings
    pipeline: Pipeline
    stream: LiveStream
    children: Children
    windows: list[Window] = field(default_factory=list)
    began: datetime = field(default_factory=lambda: datetime.now(UTC))

    def fault(self, name: str, inject: Callable[[Run], dict[str, Any]]) -> Window:
        """Inject a fault into the live stream, lift it, wait for the engine to catch up."""
        first = self.stream.count()
        behind = self.pipeline.missing(self.stream.ids(0, first))
        notes = inject(self)
        lifted, produced = time.monotonic(), self.stream.count()
        recover_s = self.wait_caught_up(self.stream.ids(0, produced), lifted, name)
        ids = set(self.stream.ids(first, self.stream.count()))
        in_flight = max(behind.values(), default=0) + produced - first
        window = Window(name, ids, in_flight, round(recover_s, 1), notes=notes)
        self.windows.append(window)
        return window

    def wait_caught_up(self, ids: list[str], since: float, what: str) -> float:
        """Seconds from ``since`` until ``ids`` went all the way."""
        while True:
            self.pipeline.check()
            gaps = self.pipeline.missing(ids)
            if not gaps:
                return time.monotonic() - since
            if time.monotonic() - since > RECOVERY_TIMEOUT_S:
                raise AssertionError(
                    f"{what}: not recovered after {RECOVERY_TIMEOUT_S} s: {gaps}; "
                    f"the sinks' consumers: {self.consumers()}"
                )
            time.sleep(0.5)

    def consumers(self) -> dict[str, Any]:
        """What each sink says of its consumer (group state, Kafka, rejoins): for a failure."""
        said = {}
        for sink in self.pipeline.ports:
            ready = self.pipeline.ready(sink)
            said[sink] = {"group": ready.get("group"), "kafka": ready.get("kafka"),
                          "rejoins": ready.get("stats", {}).get("rejoins"),
                          "consumed": ready.get("stats", {}).get("consumed")}  # fmt: skip
        return said

    def settle(self, ids: list[str], quiet_s: float = 5.0) -> int:
        """How many of ``ids`` are scored, once that number stopped growing for ``quiet_s``."""
        count, since = -1, time.monotonic()
        while time.monotonic() - since < quiet_s:
            self.pipeline.poll()
            now = len(self.pipeline.scored & set(ids))
            if now != count:
                count, since = now, time.monotonic()
        return count

    def hold(self, seconds: float, sink: str) -> dict[str, Any]:
        """Wait ``seconds`` (the fault lasts), watching ``sink``'s /ready meanwhile."""
        seen: dict[str, Any] = {"lasted_s": seconds, f"{sink} not ready": 0}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready = self.pipeline.ready(sink)
            if not ready.get("ready", False):
                seen[f"{sink} not ready"] += 1
            if ready.get("state") == "failing":
                seen["failing"] = True
                seen["last_error"] = str(ready.get("last_error"))[:160]
            for name, sub in ready.get("subscribers", {}).items():
                if sub.get("state") == "failing":
                    seen[f"subscriber {name} failing"] = True
            self.pipeline.poll()
            time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))
        return seen


# ---------------------------------------------------------------------- the injectors
def broker_stopped(run: Run) -> dict[str, Any]:
    run.stack.stop_kafka()
    seen = run.hold(BROKER_DOWN_S, "alerts")
    return {**seen, "broker restart_s": round(run.stack.start_kafka(), 1)}


def redis_stopped(run: Run) -> dict[str, Any]:
    run.stack.stop_redis()
    seen = run.hold(REDIS_DOWN_S, "alerts")
    return {**seen, "redis restart_s": round(run.stack.start_redis(), 1)}


def redis_lost(run: Run) -> dict[str, Any]:
    """Redis SIGKILLed, its data deleted, started empty; the feed rebuilt from the alerts
    topic by ``vigie alerts republish``, run twice (the second must add nothing)."""
    run.pipeline.poll()
    raised = len(run.pipeline.raised)
    run.stack.lose_redis()
    restart_s = run.stack.start_redis()
    left = sum(run.pipeline.redis_entries().values())
    since = run.began.isoformat()
    first = run.children.run("alerts", "republish", "--since", since)
    again = run.children.run("alerts", "republish", "--since", since)
    return {"alerts raised before": raised, "feed entries after the loss": left,
            "redis restart_s": round(restart_s, 1), "republished": first.get("consumed"),
            "republished again": again.get("consumed")}  # fmt: skip


def redis_frozen(run: Run) -> dict[str, Any]:
    run.stack.freeze_redis()
    try:
        return run.hold(REDIS_FROZEN_S, "alerts")
    finally:
        run.stack.thaw_redis()


def consumed(run: Run, sink: str) -> int:
    """Records ``sink`` consumed so far (its /ready statistics): proof it was running."""
    return int(run.pipeline.ready(sink).get("stats", {}).get("consumed", 0))


def writer_killed(run: Run) -> dict[str, Any]:
    before = consumed(run, "warehouse")
    run.pipeline.writer.kill()
    run.pipeline.writer.start()
    return {"consumed before the kill": before}


def worker_killed(run: Run) -> dict[str, Any]:
    """The worker SIGKILLed: it restarts from its last snapshot and replays from there."""
    run.pipeline.poll()
    before = len(run.pipeline.scored)
    run.pipeline.worker.kill()
    run.pipeline.worker.start()  # its start-up counts in the time to recover
    return {"consumed before the kill": before}


def publisher_killed(run: Run) -> dict[str, Any]:
    before = consumed(run, "alerts")
    run.pipeline.kill("alerts")
    run.pipeline.start_publisher()
    return {"consumed before the kill": before}


def dispatcher_killed(run: Run) -> dict[str, Any]:
    before = consumed(run, "webhooks")
    run.pipeline.kill("webhooks")
    run.pipeline.start_dispatcher()
    return {"consumed before the kill": before}


def clickhouse_refusing(run: Run) -> dict[str, Any]:
    run.pipeline.writer.refuse()
    try:
        return run.hold(CLICKHOUSE_REFUSING_S, "warehouse")
    finally:
        run.pipeline.writer.accept()


def receiver_down(run: Run) -> dict[str, Any]:
    run.pipeline.receiver.stop()
    try:
        return run.hold(RECEIVER_DOWN_S, "webhooks")
    finally:
        run.pipeline.receiver.start()


# ---------------------------------------------------------------------- replay, hostile input
def replay_interrupted(run: Run, path: Path, ids: list[str], rate: float) -> Window:
    """``vigie replay`` killed a third of the way, then run again from the start."""
    child = run.children.start("replay", "replay", str(path), "--rate", str(rate))
    wanted = set(ids)

    def a_third_scored() -> bool:
        run.pipeline.poll()
        return len(run.pipeline.scored & wanted) >= len(ids) // 3

    wait_for(a_third_scored, RECOVERY_TIMEOUT_S, "a third of the replay scored")
    assert child.proc.poll() is None, "the replay ended before it was interrupted"
    child.expected_exit = True
    child.proc.kill()
    child.proc.wait()
    scored = run.settle(ids)
    assert 0 < scored < len(ids), f"{scored} of {len(ids)} scored before the interruption"
    repeats_before = run.pipeline.worker.metric("vigie_declarations_repeated_total")
    lifted = time.monotonic()
    again = run.children.run("replay", str(path))
    recover_s = run.wait_caught_up(ids, lifted, "replay")
    repeats = run.pipeline.worker.metric("vigie_declarations_repeated_total") - repeats_before
    notes = {"scored before the interruption": scored, "re-sent": again["produced"],
             "acknowledged as repeats": int(repeats)}  # fmt: skip
    window = Window("replay interrupted, run again", set(ids), len(ids), round(recover_s, 1),
                    notes=notes)  # fmt: skip
    run.windows.append(window)
    return window


def hostile_input(run: Run, originals: list[bytes]) -> Window:
    """The hostile corpus (:mod:`vigie_dev.testing.hostile`) on declarations already scored."""
    items = corpus(originals)
    produce(run.settings, "declarations", [(h.key, h.value) for h in items])
    lifted = time.monotonic()
    error = DecodeError("hostile", [])
    letters = {letter_id(dead_letter("declarations", h.key, h.value, error))
               for h in items if h.expect == "dead_letter"}  # fmt: skip
    amended = sorted({h.name for h in items if h.expect == "amendment"})
    ids = [run.pipeline.declaration_id(raw) for raw in originals]
    extremes = [run.pipeline.declaration_id(h.value) for h in items if h.expect == "new"]
    revised = run.pipeline.wait_revisions(ids, revision=2, timeout=RECOVERY_TIMEOUT_S)
    stored = run.pipeline.wait_letters(letters, timeout=RECOVERY_TIMEOUT_S)
    recover_s = run.wait_caught_up(ids + extremes, lifted, "hostile input")
    ids += extremes
    notes = {"messages": len(items), "rejects": len(letters), "amendments": len(amended),
             "repeats": sum(h.expect == "repeat" for h in items), "extremes": len(extremes),
             "revision 2 scored": revised, "letters stored": stored}  # fmt: skip
    window = Window("hostile input", set(ids), len(items), round(recover_s, 1), letters, notes)
    run.windows.append(window)
    return window


# ---------------------------------------------------------------------- the end of the run
def observe(run: Run) -> Observed:
    """Read back everything the run left: topics, warehouse raw rows, Redis, receiver."""
    settings, pipeline = run.settings, run.pipeline
    book = ledger(read_topic(settings, "declarations"), settings.max_message_bytes)
    alerts = values(read_topic(settings, "alerts"))
    wanted: dict[str, set[str]] = {sub.name: set() for sub in pipeline.subscribers}
    for alert in {a["alert_id"]: a for a in alerts}.values():
        record = decode(Alert, orjson.dumps(alert))
        for sub in pipeline.subscribers:
            if sub.matches(record):
                wanted[sub.name].add(record.alert_id)
    warehouse = {
        table: Counter({tuple(row[:-1]): int(row[-1]) for row in pipeline.writer.query(sql)})
        for table, sql in RAW_ROWS.items()
    }
    for table in ("alerts", "dead_letters"):  # one-column identities
        warehouse[table] = Counter({k[0]: n for k, n in warehouse[table].items()})
    return Observed(
        book=book,
        scores=values(read_topic(settings, "scores")),
        alerts=alerts,
        letters=values(read_topic(settings, "declarations.dlq")),
        warehouse=warehouse,
        redis=pipeline.redis_entries(),
        hooks=pipeline.receiver.snapshot(),
        wanted_hooks=wanted,
    )


RAW_ROWS = {
    "declarations": "SELECT declaration_id, item_number, revision, count() FROM declarations "
    "GROUP BY declaration_id, item_number, revision",
    "scores": "SELECT declaration_id, item_number, revision, count() FROM scores "
    "GROUP BY declaration_id, item_number, revision",
    "alerts": "SELECT alert_id, count() FROM alerts GROUP BY alert_id",
    "dead_letters": "SELECT letter_id, count() FROM dead_letters GROUP BY letter_id",
}
"""Raw rows (no FINAL) per identity, with merges off in the hosted warehouse."""

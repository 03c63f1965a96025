"""Nothing lost, ever: faults injected into a live stream, each one's invariants checked.

A stream of generated declarations with their control results (at least 20,000
declarations, produced at a steady rate) runs through the real processes, ``vigie
worker``, ``vigie warehouse write``, ``vigie alerts publish`` and ``vigie webhooks
dispatch`` to a signature-checking receiver, on a Kafka broker and a Redis of the suite's
own (``private_stack``). One after the other, each fault is injected, lifted, and the
engine given time to catch up:

- the broker stopped for 30 s and restarted;
- Redis stopped (30 s) and restarted; Redis frozen (SIGSTOP, 20 s); Redis SIGKILLed with
  its data deleted, started empty, the feed rebuilt by ``vigie alerts republish`` (twice);
- the scoring worker, the warehouse writer, the Redis publisher, the webhook dispatcher,
  each SIGKILLed mid-stream and restarted;
- ClickHouse refusing every insert for 30 s ("Too many parts", its own backpressure);
- the webhook receiver down for 2 minutes;
- a ``vigie replay`` of 3,000 other declarations (another seed: other ids) killed a
  third of the way, then run again from the start;
- the hostile-input corpus (:mod:`vigie_dev.testing.hostile`).

A ``vigie alerts tail`` runs throughout and must outlive every Redis fault. How each
fault is injected: docs/faults.md.

At the end, for the declarations produced during each fault (its window), separately
(:func:`vigie_dev.testing.reliability.verdict`): every declaration and Score in
ClickHouse exactly once in raw rows (the hosted warehouse never merges), every Alert
once in ClickHouse, once in Redis and once per matching subscriber, every selected Score
with its Alert and every Alert with its selected Score, every reject in the dead-letter
topic, nothing learnt twice. The table goes to ``bench/results/faults-latest.md`` (and
``.json``); run with ``pytest -s`` to see it printed.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from tests.faults.scenario import (
    Run,
    broker_stopped,
    clickhouse_refusing,
    dispatcher_killed,
    hostile_input,
    observe,
    publisher_killed,
    receiver_down,
    redis_frozen,
    redis_lost,
    redis_stopped,
    replay_interrupted,
    worker_killed,
    writer_killed,
)

from vigie.ingest.topics import ensure_topics
from vigie_dev.demo.processes import Children
from vigie_dev.demo.stream import interleave
from vigie_dev.testing.live_stream import LiveStream
from vigie_dev.testing.pipeline import Pipeline
from vigie_dev.testing.private_stack import PrivateStack
from vigie_dev.testing.reliability import Window, table, verdict, write_report

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
SEED, REPLAY_SEED = 20261204, 20261205
GENERATED, REPLAYED = 40_000, 3_000
MIN_DECLARATIONS = 20_000
RATE = 60.0
"""Declarations per second of the live stream: the faults take about six minutes."""
REPLAY_RATE = 200.0
HOSTILE_ON = 20
"""Declarations re-sent by the hostile corpus (same content, other forms, amendments)."""

FAULTS = [
    ("broker stopped 30 s", broker_stopped),
    ("Redis stopped 30 s", redis_stopped),
    ("Redis frozen 20 s", redis_frozen),
    ("Redis data lost, feed republished", redis_lost),
    ("scoring worker SIGKILLed", worker_killed),
    ("warehouse writer SIGKILLed", writer_killed),
    ("alert publisher SIGKILLed", publisher_killed),
    ("webhook dispatcher SIGKILLed", dispatcher_killed),
    ("ClickHouse refusing writes 30 s", clickhouse_refusing),
    ("webhook receiver down 2 min", receiver_down),
]
EFFECT = {
    "broker stopped 30 s": "alerts not ready",
    "Redis stopped 30 s": "failing",
    "Redis frozen 20 s": "failing",
    "ClickHouse refusing writes 30 s": "failing",
    "webhook receiver down 2 min": "subscriber all failing",
}
"""What each fault's sink must have said while it lasted: proof that it took effect."""


def generated(children: Children, directory: Path, n: int, seed: int) -> tuple[Path, Path]:
    decl, ctl = directory / f"declarations-{seed}.jsonl", directory / f"controls-{seed}.jsonl"
    truth = directory / f"truth-{seed}.jsonl"
    children.run("generate", "--declarations", str(n), "--seed", str(seed), "--out", str(decl),
                 "--controls", str(ctl), "--truth", str(truth))  # fmt: skip
    return decl, ctl


def ids_of(path: Path) -> list[str]:
    """The declaration ids of a generated file (the seed is in them: two seeds, two sets)."""
    return [orjson.loads(line)["declaration_id"] for line in path.read_bytes().splitlines()]


@pytest.mark.timeout(1500)
def test_nothing_lost_nothing_twice_under_faults(
    private_stack: PrivateStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    settings = private_stack.client_settings.model_copy(
        update={"state_dir": tmp_path / "run", "topic_prefix": "faults.", "redis_prefix": "faults"}
    )
    ensure_topics(settings)
    children = Children(settings)
    data = settings.state_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    decl, ctl = generated(children, data, GENERATED, SEED)
    replay, _ = generated(children, data, REPLAYED, REPLAY_SEED)
    replay_ids = ids_of(replay)
    assert not set(replay_ids) & set(ids_of(decl))
    client = redis.Redis.from_url(settings.redis_dsn)
    pipeline = Pipeline(settings, client).start()
    stream = LiveStream(settings, interleave(decl, ctl, data / "stream"), RATE)
    run = Run(private_stack, settings, pipeline, stream, children)
    try:
        pipeline.worker.wait_ready(timeout=300, partitions=settings.topic_partitions)
        pipeline.children.start(
            "tail", "alerts", "tail", "--follow", "--group", "faults-tail", "--json"
        )  # the targeting service's reader: outlives Redis
        stream.start()
        run.fault("none (the steady stream)", lambda r: r.hold(15.0, "warehouse"))
        for name, inject in FAULTS:
            run.fault(name, inject)
        replay_interrupted(run, replay, replay_ids, REPLAY_RATE)
        hostile_input(run, decl.read_bytes().splitlines()[:HOSTILE_ON])
        while stream.count() < MIN_DECLARATIONS:
            run.hold(5.0, "warehouse")
        stream.stop()
        assert stream.error is None and stream.failures == 0, (stream.error, stream.errors)
        produced = stream.ids()
        run.wait_caught_up(produced, time.monotonic(), "the end of the stream")
        seen = observe(run)
        replay_scores = Counter(s["declaration_id"] for s in seen.scores
                                if s["declaration_id"] in set(replay_ids))  # fmt: skip
    finally:
        if stream.is_alive():
            stream.stop(60)
        pipeline.stop()
        client.close()

    everything = Window("whole run", set(produced) | set(replay_ids), len(produced) + REPLAYED,
                        None, set(seen.book.rejected))  # fmt: skip
    verdicts = [verdict(w, seen) for w in [*run.windows, everything]]
    elapsed = time.monotonic() - started
    legend = report_legend(seen, produced, elapsed)
    write_report(RESULTS, verdicts, legend)
    with capsys.disabled():
        print(f"\n{table(verdicts)}\n{legend['summary']}")

    dirty = {v.fault: v.details for v in verdicts if not v.clean}
    assert dirty == {}, dirty
    for v in verdicts:
        if v.fault in EFFECT:
            assert v.notes.get(EFFECT[v.fault]), f"{v.fault} did not take effect: {v.notes}"
        if v.fault.startswith("Redis data lost"):
            assert v.notes["feed entries after the loss"] < v.notes["alerts raised before"]
        if v.fault.endswith("SIGKILLed"):
            assert v.notes["consumed before the kill"] > 0, f"{v.fault}: the sink was idle"
    assert len(produced) >= MIN_DECLARATIONS
    # a re-run of the interrupted replay changed no score: one Score per declaration, ever
    assert set(replay_scores) == set(replay_ids) and set(replay_scores.values()) == {1}
    rerun = next(v for v in verdicts if v.fault.startswith("replay")).notes
    assert rerun["acknowledged as repeats"] >= rerun["scored before the interruption"]
    assert seen.book.amendments == HOSTILE_ON and seen.book.repeats >= 2 * HOSTILE_ON


def report_legend(seen: Any, produced: list[str], elapsed: float) -> dict[str, Any]:
    summary = (
        f"{len(produced):,} declarations streamed at {RATE:.0f}/s with their control results, "
        f"{REPLAYED:,} replayed, {len(seen.book.rejected)} hostile messages rejected; "
        f"{len(seen.scores):,} Score records, {len({a['alert_id'] for a in seen.alerts}):,} "
        f"alerts; the suite ran {elapsed / 60:.1f} min on the development machine "
        "(2 shared cores)."
    )
    legend = (
        "*Declarations in flight*: produced while the fault lasted, plus those not yet "
        "through every sink when it began. *Lost*: records due but missing anywhere (a "
        "Score, a declaration or Score or Alert in ClickHouse, an Alert in Redis or at a "
        "subscriber, a reject in the dead-letter topic). *Duplicated*: records there more "
        "than once, in raw rows (no FINAL), or there without being due. *Learnt twice*: "
        "Scores whose engine's count of learnt declarations is not the ledger's. *Time to "
        "recover*: from the fault's end until every declaration produced so far was "
        "scored, stored, and its alerts published and delivered (the steady stream's row "
        "is the pipeline's own latency). Produced by `tests/faults/test_faults.py` "
        "(`pytest -m faults`)."
    )
    return {"summary": summary, "legend": legend, "declarations": len(produced),
            "seconds": round(elapsed, 1)}  # fmt: skip

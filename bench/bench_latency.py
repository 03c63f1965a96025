"""Worker latency: declaration produced -> Score, at a steady input rate (default 1,000/s).

Starts ``--workers`` real ``vigie worker`` subprocesses (default 1; one consumer group,
the real RiskEngine, one engine per partition) on a fresh topic prefix, waits for
``/ready``, then produces generated declarations (``vigie_dev.generator``, seed 7) at
``--rate`` per second for ``--seconds``
while reading ``scores``. For each declaration id:

- ``to_score_sent``: the Score record's Kafka timestamp (set when the worker sends it)
  minus the declaration's (set when the producer sends it);
- ``to_score_read``: the wall-clock time this script reads the Score minus the
  declaration's timestamp (adds the consumer's fetch delay).

The first ``--warmup`` seconds are left out of the percentiles (group join, first
fetches). Also reported: the rates at which declarations were produced and scored (if the
worker scores slower than the input arrives, latency is queueing and grows with the run),
the worker's own mean engine time per declaration, and the machine's load.
One JSON object on stdout; nothing is asserted.

The broker is the configured one (``VIGIE_KAFKA_BOOTSTRAP``) or the dev stack's (``vigie
stack up``). The run's topics (prefix ``bench-<id>.``) are deleted afterwards.

Usage::

    .venv/bin/vigie stack up
    .venv/bin/python bench/bench_latency.py [--rate 1000] [--seconds 30] [--warmup 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from vigie.contracts.codec import encode
from vigie.ingest.topics import admin_client, delete_topics, ensure_topics
from vigie.settings import Settings
from vigie_dev.generator import generate
from vigie_dev.testing import TopicReader, WorkerProcess, produce, wait_for


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max of ``values`` (milliseconds), nearest-rank."""
    if not values:
        return {}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": round(ordered[-1], 2)}


def rate_of(timestamps: list[float]) -> float:
    """Records per second between the first and the last timestamp."""
    span = max(timestamps) - min(timestamps) if timestamps else 0.0
    return round(len(timestamps) / span, 1) if span > 0 else 0.0


def settle(workers: list[WorkerProcess], partitions: int) -> None:
    """Wait until the group has shared every partition among the workers."""

    def settled() -> bool:
        held = [w.ready() for w in workers]
        return all(h and h["ready"] for h in held) and partitions == sum(
            len(h["partitions"]) for h in held if h
        )

    wait_for(settled, 240, "the consumer group to settle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    n = int(args.rate * args.seconds)
    decls = [item.declaration for item in generate(n, seed=args.seed)]
    records = [(d.importer.encode(), encode(d)) for d in decls]

    base = Settings()
    state = Path(tempfile.mkdtemp(prefix="vigie-bench-latency-"))
    settings = base.model_copy(
        update={"topic_prefix": f"bench-{uuid.uuid4().hex[:8]}.", "state_dir": state}
    )
    ensure_topics(settings)
    workers = [
        WorkerProcess(settings, name=f"bench-{i}", loglevel="warning").start()
        for i in range(args.workers)
    ]
    declarations = TopicReader(settings, "declarations")
    scores = TopicReader(settings, "scores")
    try:
        for worker in workers:
            worker.wait_ready(timeout=240)
        settle(workers, settings.topic_partitions)
        started = time.monotonic()
        producer = threading.Thread(
            target=produce, args=(settings, "declarations", records), kwargs={"rate": args.rate}
        )
        producer.start()
        read_at: dict[str, float] = {}
        deadline = time.monotonic() + args.seconds + 300
        while len(read_at) < n and time.monotonic() < deadline:
            before = len(scores.records)
            scores.poll(0.02)
            now = time.time()
            for _, value, _ in scores.records[before:]:
                read_at.setdefault(value["declaration_id"], now)
        producer.join()
        elapsed = time.monotonic() - started
        declarations.read_until(lambda r: len(r.records) >= n, 120, "the declarations")
        produced_at = {v["declaration_id"]: ts for _, v, ts in declarations.records}
        sent_at: dict[str, float] = {}
        for _, value, ts in scores.records:
            sent_at.setdefault(value["declaration_id"], ts)
        first = min(produced_at.values())
        steady = {i for i, ts in produced_at.items() if ts >= first + args.warmup}
        to_sent = [1000 * (sent_at[i] - produced_at[i]) for i in steady if i in sent_at]
        to_read = [1000 * (read_at[i] - produced_at[i]) for i in steady if i in read_at]
        engine_sum = sum(w.metric("vigie_scoring_latency_seconds_sum") for w in workers)
        engine_count = sum(w.metric("vigie_scoring_latency_seconds_count") for w in workers)
        result: dict[str, Any] = {
            "declarations": n,
            "scored": len(sent_at),
            "target_rate": args.rate,
            "produced_per_s": rate_of(list(produced_at.values())),
            "scored_per_s": rate_of(list(sent_at.values())),
            "wall_s": round(elapsed, 1),
            "measured": len(to_sent),
            "latency_ms": {
                "to_score_sent": percentiles(to_sent),
                "to_score_read": percentiles(to_read),
                "engine_mean": round(1000 * engine_sum / max(engine_count, 1), 3),
            },
            "snapshots": {
                "count": sum(w.metric("vigie_snapshots_total") for w in workers),
                "seconds_total": round(
                    sum(w.metric("vigie_snapshot_seconds_sum", 'phase="total"') for w in workers),
                    2,
                ),
                "pickle_seconds_total": round(
                    sum(w.metric("vigie_snapshot_seconds_sum", 'phase="pickle"') for w in workers),
                    2,
                ),
                "last_bytes": sum(w.metric("vigie_snapshot_bytes") for w in workers),
            },
            "partitions": settings.topic_partitions,
            "workers": args.workers,
            "machine": {
                "cpus": os.cpu_count(),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "python": platform.python_version(),
            },
        }
    finally:
        declarations.close()
        scores.close()
        for worker in workers:
            worker.stop()
        delete_topics(admin_client(settings), prefix=settings.topic_prefix)
    sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")


if __name__ == "__main__":
    main()

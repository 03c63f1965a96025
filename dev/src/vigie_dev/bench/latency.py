"""Latency at a steady rate: a declaration produced -> its Score in Kafka -> its alert in Redis.

For each rate R (1,000/s and half the worker's measured maximum by default) a fresh
worker and ``vigie alerts publish`` run on their own topics and Redis keys. A warm-up of
``warmup`` declarations is produced at once and processed to the end (group join, first
snapshots, first fetches); then declarations are produced at R per second for
``seconds``, each stamped with its production time (its Kafka timestamp, set at
``produce``). Afterwards, nothing read while it ran:

* Score time: the Score's Kafka timestamp (set by the worker's producer when it sends it);
* alert time: the millisecond time of the alert's Redis stream entry id (XADD, same host
  clock).

p50/p99/p99.9 are over the steady declarations only (alerts for ``produced_to_redis``).
A rate above what the worker sustains measures its backlog, not its latency: compare
``scored_per_s`` with ``rate``.

``cpu`` is where the cores went over the steady run (the worker, the alert publisher,
this process producing, the broker; :mod:`vigie_dev.bench.cpu`), and ``engine_mean_ms``
the worker's own mean engine time a declaration (warm-up included). At a steady rate a
declaration costs the worker more than in a backlog: between batches its core goes idle
and comes back slower (``bench/engine_pauses.py``; docs/performance.md), so half the
backlog maximum may keep the worker's core three quarters busy or more.
"""

from __future__ import annotations

import os
from typing import Any

from vigie.contracts.catalogue import ALERTS, DECLARATIONS, SCORES
from vigie.settings import Settings
from vigie.sinks.redis_alerts import AlertKeys, redis_client
from vigie_dev.bench.backlog import Backlog, Line, produce_steady
from vigie_dev.bench.context import Context
from vigie_dev.bench.cpu import CpuWindow, cost_per_record
from vigie_dev.bench.machine import load_average, with_broker
from vigie_dev.bench.processes import Child
from vigie_dev.bench.stats import percentiles, rate
from vigie_dev.bench.topics import TopicScan, consumer, record_count, wait_until
from vigie_dev.bench.worker import engine_mean_ms
from vigie_dev.testing import WorkerProcess

DEFAULT_RATE = 1000.0


def rates_to_measure(ctx: Context, worker_per_s: float | None) -> list[tuple[float, str]]:
    """The rates to run and what each stands for: the asked ones, or 1,000/s and half
    the worker's measured maximum (when the worker scenario measured one)."""
    if ctx.options.rates:
        return [(r, "asked") for r in ctx.options.rates]
    chosen = [(DEFAULT_RATE, "1000/s")]
    if worker_per_s:
        chosen.append((float(round(worker_per_s / 2)), "half of the worker's maximum"))
    return chosen


def steady_backlog(ctx: Context, rates: list[float]) -> Backlog:
    """Declarations enough for the warm-up and the fastest rate (its own cached file)."""
    n = ctx.options.warmup + int(max(rates) * ctx.options.seconds) + 1
    directory = ctx.base.state_dir / "bench"
    seed = ctx.options.seed + 1
    return Backlog.build(directory, n=n, seed=seed, importers=ctx.options.importer_count(n))


def measure(
    ctx: Context, settings: Settings, lines: list[Line], per_second: float, role: str
) -> dict[str, Any]:
    """One steady run at ``per_second`` on the scenario's topics; the latencies."""
    warm, steady = lines[: ctx.options.warmup], lines[ctx.options.warmup :]
    client = redis_client(settings)
    stream = AlertKeys(settings.redis_prefix).stream
    worker = WorkerProcess(settings, name="worker", loglevel="warning").start()
    group = f"{settings.topic_prefix}bench-alerts"
    publisher = Child(settings, "alerts", "alerts", "publish", "--group", group)
    watermarks = consumer(settings.bootstrap_servers)
    topic = settings.topic(DECLARATIONS.name)
    alive = lambda: worker.alive() and publisher.alive()  # noqa: E731

    def processed(total: int) -> bool:
        alerts = record_count(watermarks, settings.topic(ALERTS.name))
        scored = record_count(watermarks, settings.topic(SCORES.name))
        return scored >= total and int(client.xlen(stream)) >= alerts

    try:
        worker.wait_ready(timeout=300, partitions=settings.topic_partitions)
        produce_steady(settings, iter(warm), topic, 20_000.0)
        wait_until(lambda: processed(len(warm)), ctx.options.timeout_s, "the warm-up", alive)
        load_before = load_average()
        cpu = CpuWindow(_watched(settings, worker, publisher))
        produced, achieved = produce_steady(settings, iter(steady), topic, per_second)
        timeout = ctx.options.timeout_s
        drained = wait_until(lambda: processed(len(lines)), timeout, "the steady run", alive)
        cpu_figures = cpu.close()
        engine_ms = engine_mean_ms([worker])
        scores = TopicScan(settings.bootstrap_servers, settings.topic(SCORES.name)).catch_up()
        scores.close()
        in_redis = _alerts_in_redis(client, settings.redis_prefix)
    finally:
        watermarks.close()
        publisher.stop()
        worker.stop()
        _drop_keys(client, settings.redis_prefix)
        client.close()
    to_score = [
        float(scores.first_ms[d.encode()] - t)
        for d, t in produced.items()
        if d.encode() in scores.first_ms
    ]
    to_redis = [float(in_redis[d] - t) for d, t in produced.items() if d in in_redis]
    first = min(produced.values())
    last_score = max(scores.first_ms.get(d.encode(), 0) for d in produced)
    return {
        "rate": per_second,
        "role": role,
        "produced_per_s": achieved,
        "declarations": len(produced),
        "scored": len(to_score),
        "scored_per_s": rate(len(to_score), (last_score - first) / 1000.0),
        "alerts": len(to_redis),
        "produced_to_redis_ms": percentiles(to_redis),
        "produced_to_score_ms": percentiles(to_score),
        "drained_after_s": round(drained, 2),
        "engine_mean_ms": engine_ms,
        "cpu": {
            **cpu_figures,
            "us_per_declaration": cost_per_record(cpu_figures, achieved, ["worker"]),
        },
        "load_average": {"before": load_before, "after": load_average()},
    }


def _watched(settings: Settings, worker: WorkerProcess, publisher: Child) -> dict[str, int]:
    """The steady window's processes: the worker, the alert publisher, this process (the
    producer) and the broker if local."""
    pids = {"bench": os.getpid(), "publisher": publisher.proc.pid}
    if worker.proc is not None:
        pids["worker"] = worker.proc.pid
    return with_broker(pids, settings.bootstrap_servers)


def _alerts_in_redis(client: Any, prefix: str) -> dict[str, int]:
    """Each alerted declaration id and the millisecond time of its (first) stream entry."""
    key = AlertKeys(prefix).stream
    found: dict[str, int] = {}
    last = "-"
    while True:
        entries = client.xrange(key, min=last, max="+", count=10_000)
        if last != "-":
            entries = entries[1:]
        if not entries:
            return found
        for entry_id, fields in entries:
            found.setdefault(fields["declaration_id"], int(entry_id.split("-")[0]))
        last = entries[-1][0]


def _drop_keys(client: Any, prefix: str) -> None:
    """Delete the scenario's Redis keys (alerts, their hashes, importer risks): SCAN
    walks the whole key space, once, after the measurement."""
    batch = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)

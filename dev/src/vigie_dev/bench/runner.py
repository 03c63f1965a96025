"""One ``vigie bench`` run: the backlog, the chosen scenarios in order, ratios and targets.

Order: the detectors alone (no Kafka), then on one backlog topic the raw consumer, the
peer loop and the worker (each with its own consumer group; the worker then feeds the
warehouse writer), then the scaling scenario (the backlog again, on fresh topics, for
several workers) and the latency runs (their rate depends on the worker's maximum).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from vigie.errors import VigieError
from vigie.settings import Settings
from vigie_dev.bench import latency, throughput
from vigie_dev.bench.backlog import Backlog, produce_backlog
from vigie_dev.bench.context import BenchOptions, Context
from vigie_dev.bench.machine import describe, load_average
from vigie_dev.bench.processes import BenchError
from vigie_dev.bench.stats import ratio
from vigie_dev.bench.worker import run_workers, warehouse

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

TARGETS = {
    "worker_per_s": (">=", 10_000.0),
    "worker_vs_peer": (">=", 1.0),
    "redis_p99_ms_at_1000": ("<=", 50.0),
    "redis_p99_ms_at_half_max": ("<=", 200.0),
    "worker_peak_rss_mb": ("<=", 1536.0),
    "scaling_vs_one_worker": (">=", 1.6),
}
"""The issue's targets; the peak memory one is stated for 1,000,000 declarations."""


def run(base: Settings, options: BenchOptions, progress: Progress = log.info) -> dict[str, Any]:
    """Run the chosen scenarios; the whole result as one JSON-able mapping."""
    from vigie_dev.stack import up

    settings = base.model_copy(
        update={"kafka_bootstrap": base.bootstrap_servers, "redis_url": base.redis_dsn}
    )
    up(settings)
    began = time.time()
    importers = options.importer_count(options.n)
    progress(f"backlog: {options.n:,} declarations, seed {options.seed}, {importers:,} importers")
    backlog = Backlog.build(
        settings.state_dir / "bench", n=options.n, seed=options.seed, importers=importers
    )
    ctx = Context(settings, options, backlog)
    result: dict[str, Any] = {
        "run": {
            "id": ctx.run_id,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began)),
            "n": options.n,
            "scenarios": list(options.scenarios),
            "partitions": settings.topic_partitions,
            "backlog": backlog.meta,
        },
        "machine": describe(settings.bootstrap_servers),
    }
    try:
        result["scenarios"] = _scenarios(ctx, progress)
    except VigieError as exc:
        raise BenchError(f"{exc}\n(the run's logs and state are kept in {ctx.directory})") from exc
    result["run"]["backlog_production"] = ctx.production
    result["ratios"] = ratios(result["scenarios"])
    result["targets"] = targets(result["scenarios"], result["ratios"])
    result["run"]["seconds"] = round(time.time() - began, 1)
    result["run"]["load_average_end"] = load_average()
    ctx.cleanup()
    return result


def _scenarios(ctx: Context, progress: Progress) -> dict[str, Any]:
    chosen = ctx.options.scenarios
    out: dict[str, Any] = {}
    if "detectors" in chosen:
        progress("detectors alone")
        out["detectors"] = throughput.detectors(ctx)
    if {"raw", "peer", "worker"} & set(chosen):
        with ctx.topics("backlog", throughput.PEER_SCORES) as settings:
            ctx.production = produce_backlog(settings, ctx.backlog, settings.topic("declarations"))
            if "raw" in chosen:
                progress("raw consumer")
                out["raw"] = throughput.raw(ctx, settings)
            if "peer" in chosen:
                progress("peer loop")
                out["peer"] = throughput.peer(ctx, settings)
            if "worker" in chosen:
                progress("worker")
                out["worker"] = run_workers(ctx, settings, 1)
                if ctx.options.warehouse:
                    progress("warehouse writer")
                    seconds = out["worker"]["seconds"]
                    out["worker"]["warehouse"] = warehouse(ctx, settings, seconds)
    if "scaling" in chosen:
        with ctx.topics("scaling") as settings:
            produce_backlog(settings, ctx.backlog, settings.topic("declarations"))
            progress(f"{ctx.options.workers} workers")
            out["scaling"] = run_workers(ctx, settings, ctx.options.workers)
    if "latency" in chosen:
        out["latency"] = _latency(ctx, out.get("worker", {}).get("per_s"), progress)
    return out


def _latency(ctx: Context, worker_per_s: float | None, progress: Progress) -> list[dict[str, Any]]:
    rates = latency.rates_to_measure(ctx, worker_per_s)
    lines = list(latency.steady_backlog(ctx, [r for r, _ in rates]).lines())
    runs = []
    for per_second, role in rates:
        count = ctx.options.warmup + int(per_second * ctx.options.seconds)
        progress(f"latency at {per_second:,.0f}/s for {ctx.options.seconds:g} s")
        with ctx.topics(f"latency-{per_second:.0f}") as settings:
            runs.append(latency.measure(ctx, settings, lines[:count], per_second, role))
    return runs


def ratios(scenarios: dict[str, Any]) -> dict[str, float | None]:
    """Worker / peer loop, worker / detectors alone, several workers / one.

    Several workers are compared once their group has settled (each on its share of the
    partitions, ``settled_per_s``), and from the first one's start, join included
    (``scaling_with_join_vs_one_worker``). ``scaling_bound`` is what this machine's cores
    allow at the one worker's CPU per declaration (:func:`vigie_dev.bench.cpu.scaling_bound`).

    >>> ratios({"worker": {"per_s": 3000.0}, "peer": {"per_s": 6000.0}})["worker_vs_peer"]
    0.5
    """

    def figure(name: str, key: str = "per_s") -> float | None:
        value = scenarios.get(name, {}).get(key)
        return float(value) if value is not None else None

    return {
        "worker_vs_peer": ratio(figure("worker"), figure("peer")),
        "worker_vs_detectors": ratio(figure("worker"), figure("detectors")),
        "worker_vs_raw": ratio(figure("worker"), figure("raw")),
        "scaling_vs_one_worker": ratio(figure("scaling", "settled_per_s"), figure("worker")),
        "scaling_with_join_vs_one_worker": ratio(figure("scaling"), figure("worker")),
        "scaling_bound": scenarios.get("worker", {}).get("cpu", {}).get("scaling_bound"),
    }


def targets(scenarios: dict[str, Any], ratios: dict[str, float | None]) -> dict[str, Any]:
    """Each target of the issue: the measured value, the bound, whether it is met."""
    worker = scenarios.get("worker", {})
    runs = scenarios.get("latency", [])
    at_1000 = [r for r in runs if r["rate"] == latency.DEFAULT_RATE]
    faster = [r for r in runs if r["role"].startswith("half")]
    values = {
        "worker_per_s": worker.get("per_s"),
        "worker_vs_peer": ratios["worker_vs_peer"],
        "redis_p99_ms_at_1000": at_1000[0]["produced_to_redis_ms"]["p99"] if at_1000 else None,
        "redis_p99_ms_at_half_max": faster[0]["produced_to_redis_ms"]["p99"] if faster else None,
        "worker_peak_rss_mb": worker.get("peak_rss_mb"),
        "scaling_vs_one_worker": ratios["scaling_vs_one_worker"],
    }
    out: dict[str, Any] = {}
    for name, (sign, bound) in TARGETS.items():
        value = values[name]
        met = None if value is None else (value >= bound if sign == ">=" else value <= bound)
        out[name] = {"value": value, "target": f"{sign} {bound:g}", "met": met}
    return out

"""The references the worker is measured against: the raw consumer, the detectors alone,
and the peer loop. Each runs as its own process on the run's backlog.

* ``raw``: confluent-kafka reading and decoding the declarations (:mod:`.raw`), from the
  partitions' assignment to the last one decoded;
* ``detectors``: one RiskEngine in process, no Kafka (:mod:`.detectors`);
* ``peer``: ``bench/peer_loop.py``, from the partitions' assignment to the last Score in
  Kafka (the Kafka timestamp of the last one), as the worker is measured, with its
  engine's mean time per declaration (``engine_mean_ms``, timed as the worker's).
"""

from __future__ import annotations

from typing import Any

from vigie.contracts.catalogue import DECLARATIONS
from vigie.settings import Settings
from vigie_dev.bench.context import Context
from vigie_dev.bench.machine import REPO, detectors_build
from vigie_dev.bench.processes import BenchError, python_json
from vigie_dev.bench.stats import megabytes, rate
from vigie_dev.bench.topics import TopicScan

PEER_LOOP = REPO / "bench" / "peer_loop.py"
PEER_SCORES = "peer-scores"
"""The topic (under the scenario's prefix) the peer loop writes its Scores to."""


def raw(ctx: Context, settings: Settings) -> dict[str, Any]:
    """The raw consumer on the scenario's declarations topic."""
    result = python_json(
        "vigie_dev.bench.raw",
        *("--bootstrap", settings.bootstrap_servers),
        *("--topic", settings.topic(DECLARATIONS.name)),
        *("--n", str(ctx.backlog.n), "--timeout", str(ctx.options.timeout_s)),
        timeout=ctx.options.timeout_s + 60,
    )
    return _shaped(result)


def detectors(ctx: Context) -> dict[str, Any]:
    """One engine over the backlog, in its own process."""
    result = python_json(
        "vigie_dev.bench.detectors",
        *("--backlog", str(ctx.backlog.path), "--n", str(ctx.backlog.n)),
        *("--label-share", str(ctx.options.label_share), "--seed", str(ctx.options.seed)),
        timeout=ctx.options.timeout_s + 60,
    )
    return {**_shaped(result), "build": detectors_build()}


def peer(ctx: Context, settings: Settings) -> dict[str, Any]:
    """The peer loop on the scenario's declarations topic, then its Scores read back."""
    if not PEER_LOOP.exists():
        raise BenchError(f"{PEER_LOOP} not found: vigie bench runs from a source checkout")
    scores_topic = settings.topic(PEER_SCORES)
    result = python_json(
        str(PEER_LOOP),
        *("--bootstrap", settings.bootstrap_servers),
        *("--topic", settings.topic(DECLARATIONS.name), "--scores-topic", scores_topic),
        *("--n", str(ctx.backlog.n)),
        timeout=ctx.options.timeout_s + 60,
    )
    scan = TopicScan(settings.bootstrap_servers, scores_topic).catch_up()
    scan.close()
    seconds = scan.last_ms / 1000.0 - float(result["assigned_at"])
    return {
        "declarations": len(scan.first_ms),
        "scores": scan.records,
        "seconds": round(seconds, 3),
        "per_s": rate(len(scan.first_ms), seconds),
        "own_per_s": result["per_s"],
        "engine_mean_ms": result.get("engine_mean_ms"),
        "peak_rss_mb": megabytes(result["peak_rss_kb"]),
    }


def _shaped(result: dict[str, Any]) -> dict[str, Any]:
    """A child's figures with its peak memory in MiB."""
    shaped = {k: v for k, v in result.items() if k != "peak_rss_kb"}
    shaped["peak_rss_mb"] = megabytes(result.get("peak_rss_kb"))
    return shaped

"""The demo's summary, grouped: traffic, detection against the truth, targeting, delivery,
latency; every figure read back from where it landed (ClickHouse, Redis, the webhook
receiver, the Scores on Kafka) or from the generator's files.

Two figures need their meaning stated, and the summary states it (:func:`duty_at_risk`,
:func:`latency`):

- *duty at risk* is the engine's estimate, summed over every declaration: the duty on the
  gap between the reference price (a median of comparable declarations) and the declared
  value. Honest declarations priced under the median count too, so it exceeds the *duty
  gap*, the generator's truth: what the frauds actually evaded.
- *production to Score* is the time a declaration waited in Kafka plus the worker's own
  time. When the replay produces faster than the worker scores, it measures the queue,
  not the engine; the worker's scoring latency is shown beside it.

>>> latency({"p50": 1.2, "p95": 3.0, "p99": 8.0}, {"produced_to_score": {"p50": 27_000.0,
...     "p99": 31_000.0, "n": 9}, "produced_to_redis": {"p50": 27_500.0, "p99": 31_200.0,
...     "n": 1}}, replay_per_s=2000.0, worker_per_s=700.0)["queueing"]
True
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from vigie_dev.demo import Demo

QUEUEING_RATIO = 1.1
"""A replay faster than the worker by more than this builds a queue."""


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


def controls_on(path: Path, alerted: set[str]) -> dict[str, Any]:
    """Control results of alerted declarations: how many, how many hits, what was recovered."""
    n = hits = 0
    recovered = 0.0
    for result in _jsonl(path):
        if result["declaration_id"] in alerted:
            n += 1
            hits += result["outcome"] != "compliant"
            recovered += float(result.get("recovered_eur") or 0.0)
    return {
        "controls": n,
        "hits": hits,
        "hit_rate": round(hits / n, 4) if n else None,
        "recovered_eur": round(recovered, 2),
    }


def frauds(path: Path) -> dict[str, float]:
    """The generator's frauds: declaration id -> duty gap (EUR)."""
    return {
        row["declaration_id"]: float(row["duty_gap_eur"])
        for row in _jsonl(path)
        if row["typology"] is not None
    }


def against_truth(path: Path, alerted: set[str]) -> dict[str, Any]:
    """The generator's ground truth: precision of the alerts, frauds and duty gap caught."""
    gaps = frauds(path)
    caught = {d for d in gaps if d in alerted}
    gap, gap_caught = sum(gaps.values()), sum(gaps[d] for d in caught)
    return {
        "frauds": len(gaps),
        "frauds_alerted": len(caught),
        "precision": round(len(caught) / len(alerted), 4) if alerted else None,
        "recall": round(len(caught) / len(gaps), 4) if gaps else None,
        "duty_gap_eur": round(gap, 2),
        "duty_gap_alerted_eur": round(gap_caught, 2),
    }


def duty_at_risk(at_risk: dict[str, float], fraud_ids: set[str]) -> dict[str, Any]:
    """The engine's duty at risk, split between the frauds and the honest declarations.

    >>> duty_at_risk({"D-1": 100.0, "D-2": 30.0, "D-3": 0.0}, {"D-1"})
    {'total_eur': 130.0, 'on_frauds_eur': 100.0, 'on_honest_eur': 30.0, 'honest_declarations': 1}
    """
    on_frauds = sum(v for d, v in at_risk.items() if d in fraud_ids)
    honest = [v for d, v in at_risk.items() if d not in fraud_ids and v > 0]
    return {
        "total_eur": round(on_frauds + sum(honest), 2),
        "on_frauds_eur": round(on_frauds, 2),
        "on_honest_eur": round(sum(honest), 2),
        "honest_declarations": len(honest),
    }


def latency(
    scoring: dict[str, Any],
    end_to_end: dict[str, dict[str, Any]],
    *,
    replay_per_s: float | None,
    worker_per_s: float | None,
) -> dict[str, Any]:
    """The worker's own scoring time, the time from production to Score and to Redis, and
    whether the replay outran the worker (then the latter measure the queue)."""
    queueing = bool(replay_per_s and worker_per_s and replay_per_s > QUEUEING_RATIO * worker_per_s)
    return {
        "scoring_ms": scoring,
        "produced_to_score_ms": end_to_end["produced_to_score"],
        "produced_to_redis_ms": end_to_end["produced_to_redis"],
        "replay_per_s": replay_per_s,
        "worker_per_s": worker_per_s,
        "queueing": queueing,
    }


def compose(
    demo: Demo, warehouse: dict[str, Any], written: dict[str, Any], files: tuple[Path, ...]
) -> dict[str, Any]:
    """The demo's summary, one group per question a newcomer asks."""
    replay = demo.status.replay or {}
    watch = demo.watch
    alerted = set(watch.in_redis)
    webhooks = demo.receiver.tally.as_dict()
    produced = int(replay.get("declarations", 0))
    fraud_gaps = frauds(files[2])
    kinds = watch.kinds()
    return {
        "run": demo.run_summary(),
        "seconds": round(demo.status.elapsed_s, 1),
        "traffic": {
            "declarations_produced": produced,
            "declarations": warehouse["declarations"],
            "scores": warehouse["scores"],
            "controls_produced": int(replay.get("controls", 0)),
            "controls": warehouse["controls"],
            "dead_letters": warehouse["dead_letters"]["total"],
            "replay": replay,
        },
        "detection": against_truth(files[2], alerted),
        "targeting": {
            "alerts": warehouse["alerts"],
            "risk_alerts": kinds.get("risk", 0),
            "random_audits": kinds.get("random_audit", 0),
            "alert_rate": warehouse["alert_rate"],
            "budget": demo.settings.engine.budget,
            "audit_share": demo.settings.engine.audit_share,
            "controls_on_alerts": controls_on(files[1], alerted),
            "hit_rate_all_controls": warehouse["hit_rate"],
            "recovered_eur": warehouse["recovered_eur"],
            "duty_at_risk": {
                **duty_at_risk(watch.duty_at_risk, set(fraud_gaps)),
                "in_warehouse_eur": warehouse["duty_at_risk_eur"],
            },
            "expected_recoverable_alerted_eur": warehouse["expected_recoverable_selected_eur"],
        },
        "delivery": {
            "alerts_warehouse": warehouse["alerts"],
            "alerts_redis": len(alerted),
            "webhooks": webhooks,
            "drained_rows": written.get("rows", {}),
            "consistent": {
                "declarations": warehouse["declarations"] == produced,
                "scores": warehouse["scores"] == produced,
                "alerts_redis_warehouse": warehouse["alerts"] == len(alerted),
                "alerts_webhooks": webhooks["alerts_delivered"] == len(alerted),
            },
        },
        "latency": latency(
            warehouse["latency_ms"],
            watch.latencies(),
            replay_per_s=replay.get("declarations_per_s"),
            worker_per_s=watch.scoring_rate(),
        ),
    }

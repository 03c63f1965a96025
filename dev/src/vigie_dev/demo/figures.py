"""The demo's summary: warehouse figures, controls and ground truth of the alerted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from vigie_dev.demo import Demo


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


def against_truth(path: Path, alerted: set[str]) -> dict[str, Any]:
    """The generator's ground truth: precision of the alerts, frauds and duty gap caught."""
    frauds = caught = 0
    gap = gap_caught = 0.0
    for row in _jsonl(path):
        if row["typology"] is None:
            continue
        frauds += 1
        gap += float(row["duty_gap_eur"])
        if row["declaration_id"] in alerted:
            caught += 1
            gap_caught += float(row["duty_gap_eur"])
    return {
        "frauds": frauds,
        "frauds_alerted": caught,
        "precision": round(caught / len(alerted), 4) if alerted else None,
        "recall": round(caught / frauds, 4) if frauds else None,
        "duty_gap_eur": round(gap, 2),
        "duty_gap_alerted_eur": round(gap_caught, 2),
    }


def compose(
    demo: Demo, warehouse: dict[str, Any], written: dict[str, Any], files: tuple[Path, ...]
) -> dict[str, Any]:
    """The demo's summary: warehouse figures first, then what the demo itself measured."""
    replay = demo.status.replay or {}
    alerted = set(demo.watch.in_redis)
    webhooks = demo.receiver.tally.as_dict()
    produced = int(replay.get("declarations", 0))
    return {
        "run_id": demo.options.run_id,
        "run_dir": str(demo.run_dir.resolve()),
        "topic_prefix": demo.settings.topic_prefix,
        "seconds": round(demo.status.elapsed_s, 1),
        "declarations_produced": produced,
        "controls_produced": int(replay.get("controls", 0)),
        "declarations": warehouse["declarations"],
        "scores": warehouse["scores"],
        "alerts": warehouse["alerts"],
        "alerts_in_redis": len(alerted),
        "alert_rate": warehouse["alert_rate"],
        "controls": warehouse["controls"],
        "hit_rate_all_controls": warehouse["hit_rate"],
        "controls_on_alerts": controls_on(files[1], alerted),
        "duty_at_risk_eur": warehouse["duty_at_risk_eur"],
        "expected_recoverable_alerted_eur": warehouse["expected_recoverable_selected_eur"],
        "recovered_eur": warehouse["recovered_eur"],
        "scoring_latency_ms": warehouse["latency_ms"],
        "end_to_end_ms": demo.watch.latencies(),
        "dead_letters": warehouse["dead_letters"]["total"],
        "webhooks": webhooks,
        "truth": against_truth(files[2], alerted),
        "replay": replay,
        "drained_rows": written.get("rows", {}),
        "consistent": {
            "declarations": warehouse["declarations"] == produced,
            "scores": warehouse["scores"] == produced,
            "alerts_redis_warehouse": warehouse["alerts"] == len(alerted),
            "alerts_webhooks": webhooks["alerts_delivered"] == len(alerted),
        },
    }

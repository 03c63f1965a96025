"""A warehouse filled with a generated stream, scored by the real detectors, for tests.

:func:`scored_traffic` generates declarations (imports and exports), scores each with the
real valuation and atypicality detectors (test, then train), selects the riskiest
declarations within a budget plus random audits as the engine would, and returns every
table's records: declarations, scores, alerts, the generator's control results (its own
targeting, named ``other``, and random audits) and a few dead letters. :func:`fill`
writes them through the warehouse's table writers.

This stands in for no component: the detectors, the writers and ClickHouse are the real
ones; only the worker's process and Kafka are left out, as the dashboards' and the web
app's tests need a warehouse, not a stream.

Examples
--------
>>> from datetime import UTC, datetime
>>> traffic = scored_traffic(600, seed=3, start=datetime(2026, 1, 1, tzinfo=UTC))
>>> len(traffic["declarations"]) == len(traffic["scores"]) == 600
True
>>> 0 < len(traffic["alerts"]) < 100, sorted({a.score.selection for a in traffic["alerts"]})
(True, ['engine', 'random_audit'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from vigie.contracts import (
    Alert,
    AtypicalityEvidence,
    Declaration,
    Reason,
    Score,
    ValuationEvidence,
    dead_letter,
)
from vigie.errors import DecodeError
from vigie.model.atypicality import AtypicalityDetector
from vigie.model.valuation import ValuationDetector
from vigie.sinks.warehouse import TABLES, TableWriter
from vigie_dev.generator import GeneratorConfig, stream

BUDGET = 0.05
AUDIT_EVERY = 97


def scored_traffic(
    n: int,
    seed: int,
    start: datetime,
    *,
    days: int = 90,
    export_share: float = 0.15,
) -> dict[str, list[Any]]:
    """Every table's records for a generated stream of ``n`` declarations from ``start``."""
    config = GeneratorConfig(n=n, seed=seed, start=start, days=days, export_share=export_share)
    items = list(stream(config))
    valuation, atypicality = ValuationDetector(), AtypicalityDetector()
    out: dict[str, list[Any]] = {name: [] for name in TABLES}
    scored = []
    for item in items:
        d = item.declaration
        v, a = valuation.score_one(d), atypicality.score_one(d)
        valuation.learn_one(d)
        atypicality.learn_one(d)
        scored.append((d, v, a))
    risks = sorted(max(v.score, a.score) for _, v, a in scored)
    threshold = risks[int((1 - BUDGET) * len(risks))]
    for i, (d, v, a) in enumerate(scored):
        score = _score(i, d, v, a, threshold)
        out["declarations"].append(d)
        out["scores"].append(score)
        if score.selected:
            alert = Alert(
                alert_id=Alert.id_for(d.declaration_id), raised_at=score.scored_at, score=score
            )
            out["alerts"].append(alert)
    out["control_results"] = [item.control for item in items if item.control is not None]
    out["dead_letters"] = _letters(start)
    return out


def _score(i: int, d: Declaration, v: Any, a: Any, threshold: float) -> Score:
    risk = max(v.score, a.score)
    audit = i % AUDIT_EVERY == 0
    selected = risk >= threshold or audit
    reasons = [Reason(code="VALUE_BELOW_REFERENCE", text="value under half the reference")] * (
        v.below_lowest_acceptable
    ) + [Reason(code=f"ATYPICAL_{c.name.upper()}", text=c.name) for c in a.contributions]
    return Score(
        declaration_id=d.declaration_id,
        importer=d.importer,
        office=d.office,
        commodity_code=d.commodity_code,
        lodged_at=d.lodged_at,
        scored_at=d.lodged_at + timedelta(seconds=1 + i % 7),
        valuation=ValuationEvidence.model_validate(asdict(v)),
        atypicality=AtypicalityEvidence.model_validate(asdict(a)),
        supervised_probability=0.1,
        risk=risk,
        expected_recoverable_eur=v.duty_at_risk_eur * risk,
        selected=selected,
        selection=("random_audit" if audit else "engine") if selected else None,
        selection_probability=0.01 if audit else 1.0,
        threshold=threshold,
        reasons=tuple(reasons[:4]),
        model_versions={"valuation": "test", "atypicality": "test"},
        latency_ms=float(1 + i % 40),
    )


def _letters(start: datetime) -> list[Any]:
    errors = {
        b"{broken": DecodeError("invalid_json", [{"loc": [], "msg": "not JSON", "type": "json"}]),
        b'{"declaration_id": "x"}': DecodeError(
            "schema", [{"loc": ["office"], "msg": "Field required", "type": "missing"}]
        ),
    }
    return [
        dead_letter("declarations", None, raw, error, received_at=start + timedelta(days=n))
        for n, (raw, error) in enumerate(errors.items())
    ]


def fill(client: Any, traffic: Mapping[str, Sequence[Any]]) -> dict[str, int]:
    """Write ``traffic`` through the table writers; rows written per table."""
    written = {}
    for name, records in traffic.items():
        writer = TableWriter(client, TABLES[name], max_records=2000)
        for record in records:
            writer.add(record)
            if writer.due():
                writer.flush()
        writer.flush()
        written[name] = len(records)
    return written

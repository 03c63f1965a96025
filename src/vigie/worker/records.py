"""The worker's output records: an engine's assessment, stamped, as a wire Score or Alert.

The model says what it thinks of a declaration (:class:`~vigie.model.assessment.Assessment`,
plain values); the worker adds what describes the run, the time it scored it and how long
that took, and the identity fields of the declaration.

Examples
--------
>>> from datetime import UTC, datetime
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
>>> from vigie.model.assessment import Assessment, AtypicalityFinding, ValuationFinding
>>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> assessment = Assessment(ValuationFinding(score=0.1), AtypicalityFinding(score=0.0),
...     supervised_probability=0.5, risk=0.1, expected_recoverable_eur=0.0, selected=False,
...     selection=None, selection_probability=0.01, threshold=0.9)
>>> score = score_record(decl, assessment, datetime(2026, 3, 2, tzinfo=UTC), latency_ms=0.2)
>>> score.declaration_id, score.risk, score.latency_ms
('FR26IM0000001', 0.1, 0.2)
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from vigie.contracts.quality import flags
from vigie.contracts.schemas import Alert, Declaration, Score
from vigie.model.assessment import Assessment


def score_record(
    decl: Declaration,
    assessment: Assessment,
    scored_at: datetime,
    latency_ms: float,
    revision: int = 1,
) -> Score:
    """The wire Score of ``assessment`` (validated: an out-of-range value is an error)."""
    return Score.model_validate(
        {
            "declaration_id": decl.declaration_id,
            "item_number": decl.item_number,
            "revision": revision,
            "flags": flags(decl),
            "importer": decl.importer,
            "office": decl.office,
            "commodity_code": decl.commodity_code,
            "lodged_at": decl.lodged_at,
            "scored_at": scored_at,
            "latency_ms": latency_ms,
            **asdict(assessment),
        }
    )


def alert_record(score: Score) -> Alert:
    """The Alert of a selected Score, raised when it was scored, with its stable id."""
    return Alert(
        alert_id=Alert.id_for(score.declaration_id, score.item_number, score.revision),
        raised_at=score.scored_at,
        kind="random_audit" if score.selection == "random_audit" else "risk",
        score=score,
    )

"""Valid example records for the sinks' docs and tests (no detector needed).

>>> a = example_alert("D-7", risk=0.5, minutes=30)
>>> a.alert_id, a.score.risk, a.score.lodged_at.isoformat()
('alert:D-7', 0.5, '2026-03-02T08:45:00+00:00')
>>> audit = example_alert("D-8", kind="random_audit")
>>> audit.kind, audit.score.selection, audit.score.reasons
('random_audit', 'random_audit', ())
"""

from __future__ import annotations

from datetime import datetime, timedelta

from vigie.contracts.schemas import (
    EXAMPLE_DECLARATION,
    Alert,
    AlertKind,
    AtypicalityEvidence,
    Reason,
    Score,
    ValuationEvidence,
)

VAL_LOW = Reason(code="VAL_LOW", text="declared unit value is half the reference")


def example_alert(
    declaration_id: str = "FR26IM0000001",
    *,
    risk: float = 0.93,
    importer: str | None = None,
    valuation: float = 0.9,
    atypicality: float = 0.4,
    office: str | None = None,
    commodity_code: str | None = None,
    minutes: int = 0,
    kind: AlertKind = "risk",
) -> Alert:
    """A valid alert on the example declaration, lodged ``minutes`` after it; a random
    audit (``kind="random_audit"``) is selected by the draw, with no reason."""
    audit = kind == "random_audit"
    lodged = datetime.fromisoformat(str(EXAMPLE_DECLARATION["lodged_at"]))
    lodged += timedelta(minutes=minutes)
    score = Score(
        declaration_id=declaration_id,
        importer=importer or str(EXAMPLE_DECLARATION["importer"]),
        office=office or str(EXAMPLE_DECLARATION["office"]),
        commodity_code=commodity_code or str(EXAMPLE_DECLARATION["commodity_code"]),
        lodged_at=lodged,
        scored_at=lodged + timedelta(seconds=1),
        valuation=ValuationEvidence(
            score=valuation,
            reference_unit_value=25.0,
            unit="kg",
            support_level="cn8-origin",
            support_count=40,
            ratio=0.5,
            robust_z=-3.2,
            below_lowest_acceptable=True,
            duty_at_risk_eur=3000.0,
        ),
        atypicality=AtypicalityEvidence(score=atypicality),
        supervised_probability=0.2,
        risk=risk,
        expected_recoverable_eur=1500.0,
        selected=True,
        selection="random_audit" if audit else "engine",
        selection_probability=0.01 if audit else 1.0,
        threshold=0.8,
        reasons=() if audit else (VAL_LOW,),
        model_versions={"valuation": "valuation-40"},
    )
    return Alert(
        alert_id=Alert.id_for(declaration_id),
        raised_at=lodged + timedelta(seconds=2),
        kind=kind,
        score=score,
    )

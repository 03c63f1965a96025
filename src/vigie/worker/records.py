"""The worker's output records: an engine's assessment, stamped, as wire Score and Alert.

The model says what it thinks of a declaration (:class:`~vigie.model.assessment.Assessment`,
plain values); the worker adds what describes the run (when it scored it, how long that
took, the revision and the data-quality flags) and the identity of the declaration. The
JSON is written straight from those values by orjson; its field names are the contract's,
and :func:`score_record` reads it back through the contract (tests check it validates).

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

from datetime import datetime

import orjson

from vigie.contracts.codec import decode
from vigie.contracts.quality import flags
from vigie.contracts.schemas import Alert, Declaration, Score
from vigie.model.assessment import Assessment


def score_json(
    decl: Declaration,
    assessment: Assessment,
    scored_at: datetime,
    latency_ms: float,
    revision: int = 1,
) -> bytes:
    """The Score of ``assessment`` as JSON; ValueError if a number is not finite.

    The stamp and the declaration's identity come first, then the assessment's fields,
    in their order, as orjson writes the dataclass.
    """
    if not finite(assessment):
        raise ValueError(f"non-finite number in the assessment: {assessment!r}")
    head = orjson.dumps(
        {
            "declaration_id": decl.declaration_id,
            "item_number": decl.item_number,
            "revision": revision,
            "importer": decl.importer,
            "office": decl.office,
            "commodity_code": decl.commodity_code,
            "lodged_at": decl.lodged_at,
            "scored_at": scored_at,
            "flags": flags(decl),
            "latency_ms": latency_ms,
        }
    )
    return head[:-1] + b"," + orjson.dumps(assessment)[1:]


def alert_json(
    decl: Declaration, assessment: Assessment, score: bytes, scored_at: datetime, revision: int
) -> bytes:
    """The Alert of a selected declaration, its Score given as JSON, raised when scored."""
    head = orjson.dumps(
        {
            "alert_id": Alert.id_for(decl.declaration_id, decl.item_number, revision),
            "raised_at": scored_at,
            "kind": "random_audit" if assessment.selection == "random_audit" else "risk",
        }
    )
    return head[:-1] + b',"score":' + score + b"}"


def score_record(
    decl: Declaration,
    assessment: Assessment,
    scored_at: datetime,
    latency_ms: float,
    revision: int = 1,
) -> Score:
    """The wire Score of ``assessment``, read back through the contract."""
    return decode(Score, score_json(decl, assessment, scored_at, latency_ms, revision))


def finite(assessment: Assessment) -> bool:
    """Whether every number of ``assessment`` is finite (orjson would write null).

    Zero times a finite number is zero, times an infinity or a NaN is NaN: the sum of
    those products is zero exactly when all are finite, and never overflows.

    >>> from vigie.model.assessment import AtypicalityFinding, ValuationFinding
    >>> def with_ratio(ratio):
    ...     return Assessment(ValuationFinding(score=0.5, ratio=ratio),
    ...         AtypicalityFinding(score=0.0), supervised_probability=0.5, risk=0.5,
    ...         expected_recoverable_eur=1e15, selected=False, selection=None,
    ...         selection_probability=0.01, threshold=0.9)
    >>> finite(with_ratio(1e308)), finite(with_ratio(float("inf"))), finite(with_ratio(None))
    (True, False, True)
    """
    v = assessment.valuation
    zero = (
        0.0 * assessment.supervised_probability
        + 0.0 * assessment.risk
        + 0.0 * assessment.expected_recoverable_eur
        + 0.0 * assessment.selection_probability
        + 0.0 * assessment.threshold
        + 0.0 * assessment.atypicality.score
        + 0.0 * v.score
        + 0.0 * v.duty_at_risk_eur
    )
    for x in (v.reference_unit_value, v.ratio, v.robust_z):
        if x is not None:
            zero += 0.0 * x
    for c in assessment.atypicality.contributions:
        zero += 0.0 * c.value + 0.0 * c.weight
    return zero == 0.0

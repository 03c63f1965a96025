"""Records flattened into warehouse rows: one column list and one row function per table.

The column lists here and the DDL in ``sinks/migrations`` describe the same tables;
``tests/unit/test_migrations.py`` checks that they agree.

Examples
--------
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
>>> row = declaration_row(Declaration.model_validate(EXAMPLE_DECLARATION))
>>> dict(zip(TABLES["declarations"].columns, row))["customs_value_eur"]
25000.0
>>> TABLES["scores"].identity
('declaration_id', 'item_number', 'revision')
>>> content_digest(Declaration.model_validate(EXAMPLE_DECLARATION)) < 2**64
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel

from vigie.contracts.codec import content_digest, original_bytes
from vigie.contracts.schemas import Alert, ControlResult, DeadLetter, Declaration, Score

Row = list[Any]


@dataclass(frozen=True)
class Table:
    """A warehouse table: its name, inserted columns and the fields that identify a row.

    ``identity``: the fields that tell one record from another; the writer never inserts
    a row whose identity is already stored (:mod:`vigie.sinks.warehouse.identity`).
    ``revised``: a row of an identity already stored with other content (its ``digest``)
    is that identity's next ``revision``, not a repeat (declarations: amendments).
    """

    name: str
    columns: tuple[str, ...]
    identity: tuple[str, ...]
    to_row: Callable[[Any], Row]
    revised: bool = False


FIRST_REVISION = 1
"""The revision a declaration row is built with; the writer numbers amendments."""


def declaration_row(d: Declaration) -> Row:
    return [
        d.declaration_id,
        d.item_number,
        FIRST_REVISION,
        content_digest(d),
        d.lodged_at,
        d.office,
        d.declarant,
        d.importer,
        d.seller,
        d.commodity_code,
        d.origin,
        d.dispatch,
        d.procedure,
        d.transport_mode,
        d.incoterm,
        d.invoice_currency,
        d.invoice_amount,
        d.customs_value_eur,
        d.net_mass_kg,
        d.supplementary_units,
        d.duty_rate_pct,
        d.preference,
        dict(d.attributes),
        d.direction,
        d.destination,
    ]


def score_row(s: Score) -> Row:
    v, a = s.valuation, s.atypicality
    return [
        s.declaration_id,
        s.item_number,
        s.revision,
        s.importer,
        s.office,
        s.commodity_code,
        s.lodged_at,
        s.scored_at,
        v.score,
        v.reference_unit_value,
        v.unit,
        v.support_level,
        v.support_count,
        v.ratio,
        v.robust_z,
        v.below_lowest_acceptable,
        v.duty_at_risk_eur,
        a.score,
        [(c.name, c.value, c.weight) for c in a.contributions],
        s.supervised_probability,
        s.risk,
        s.expected_recoverable_eur,
        s.selected,
        s.selection,
        s.selection_probability,
        s.threshold,
        [r.code for r in s.reasons],
        [r.text for r in s.reasons],
        list(s.flags),
        dict(s.model_versions),
        s.latency_ms,
    ]


def alert_row(alert: Alert) -> Row:
    s = alert.score
    return [
        alert.alert_id,
        s.declaration_id,
        s.item_number,
        s.revision,
        alert.kind,
        alert.raised_at,
        s.lodged_at,
        s.risk,
        s.expected_recoverable_eur,
        s.valuation.duty_at_risk_eur,
        s.importer,
        s.office,
        s.commodity_code,
        s.selection,
        [r.code for r in s.reasons],
        [r.text for r in s.reasons],
        list(s.flags),
    ]


def control_row(c: ControlResult) -> Row:
    return [
        c.declaration_id,
        c.controlled_at,
        c.outcome,
        c.recovered_eur,
        c.selection,
        c.selection_probability,
        c.inspector,
        c.typology,
        content_digest(c),
    ]


def letter_id(letter: DeadLetter) -> str:
    """A dead letter's identity: its original key and bytes, wherever it was rejected.

    The worker's dead-letter topic and the writer's own decoding of ``declarations`` can
    both reject the same message; they yield one row.

    >>> from vigie.contracts.codec import dead_letter
    >>> from vigie.errors import DecodeError
    >>> err = DecodeError("invalid_json", [])
    >>> a = dead_letter("declarations", b"k", b"{oops", err)
    >>> b = dead_letter("t-1.declarations", b"k", b"{oops", err)
    >>> letter_id(a) == letter_id(b), len(letter_id(a))
    (True, 32)
    """
    digest = hashlib.sha256()
    digest.update((letter.key or "").encode("utf-8"))
    digest.update(b"\x00")
    digest.update(original_bytes(letter))
    return digest.hexdigest()[:32]


def dead_letter_row(letter: DeadLetter) -> Row:
    return [
        letter_id(letter),
        letter.source_topic,
        letter.key,
        letter.value,
        letter.value_encoding,
        letter.reason,
        orjson.dumps(list(letter.errors)).decode("utf-8"),
        letter.received_at,
    ]


def _columns(names: str) -> tuple[str, ...]:
    return tuple(names.split())


TABLES: dict[str, Table] = {
    "declarations": Table(
        "declarations",
        _columns(
            "declaration_id item_number revision digest lodged_at office declarant importer "
            "seller commodity_code origin dispatch procedure transport_mode incoterm "
            "invoice_currency invoice_amount customs_value_eur net_mass_kg supplementary_units "
            "duty_rate_pct preference attributes direction destination"
        ),
        ("declaration_id", "item_number"),
        declaration_row,
        revised=True,
    ),
    "scores": Table(
        "scores",
        _columns(
            "declaration_id item_number revision importer office commodity_code lodged_at "
            "scored_at valuation_score reference_unit_value valuation_unit support_level "
            "support_count value_ratio robust_z below_lowest_acceptable duty_at_risk_eur "
            "atypicality_score contributions supervised_probability risk "
            "expected_recoverable_eur selected selection selection_probability threshold "
            "reason_codes reason_texts flags model_versions latency_ms"
        ),
        ("declaration_id", "item_number", "revision"),
        score_row,
    ),
    "alerts": Table(
        "alerts",
        _columns(
            "alert_id declaration_id item_number revision kind raised_at lodged_at risk "
            "expected_recoverable_eur duty_at_risk_eur importer office commodity_code selection "
            "reason_codes reason_texts flags"
        ),
        ("declaration_id", "item_number", "revision"),
        alert_row,
    ),
    "control_results": Table(
        "control_results",
        _columns(
            "declaration_id controlled_at outcome recovered_eur selection "
            "selection_probability inspector typology digest"
        ),
        ("declaration_id", "digest"),
        control_row,
    ),
    "dead_letters": Table(
        "dead_letters",
        _columns("letter_id source_topic key value value_encoding reason errors received_at"),
        ("letter_id",),
        dead_letter_row,
    ),
}

TABLE_FOR_SCHEMA: dict[type[BaseModel], str] = {
    Declaration: "declarations",
    Score: "scores",
    Alert: "alerts",
    ControlResult: "control_results",
    DeadLetter: "dead_letters",
}


AUDIT = Table(
    "web_audit",
    _columns(
        "request_id at account role method path query status operator client user_agent duration_ms"
    ),
    ("request_id",),
    list,
)
"""The web application's audit trail; its rows are built by :mod:`vigie.web.audit`."""

SERVICE_TABLES: dict[str, Table] = {"web_audit": AUDIT}
"""Tables written by Vigie's own services rather than from a topic."""


def rows_of(table: Table, records: Sequence[Any]) -> list[Row]:
    """The rows of ``records`` for ``table``."""
    return [table.to_row(r) for r in records]

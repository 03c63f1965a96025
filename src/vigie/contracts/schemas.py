"""Record schemas: the data contracts of every topic, strict pydantic models.

Timestamps are timezone-aware and normalised to UTC. Strict mode refuses silent type
coercion (a string where a number is due is an error), except that timestamps may arrive
as ISO 8601 strings, since that is how JSON carries them.

>>> d = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> d.lodged_at.isoformat(), d.chapter, d.unit_value_per_kg
('2026-03-02T08:15:00+00:00', '62', 12.5)
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from vigie.contracts.codes import is_commodity_code, is_country, is_currency

SCHEMA_VERSION = 1


EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
"""No event of a record is older than this (historical replays included)."""
FUTURE_LIMIT = timedelta(days=366)
"""How far ahead of the receiving clock an event may be dated: a year catches the typos
(2099 for 2029) and leaves room for simulated streams; the worker measures the real lag."""
_FUTURE_LIMIT_S = FUTURE_LIMIT.total_seconds()


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a time zone (e.g. 2026-03-02T08:15:00Z)")
    return value.astimezone(UTC)


def _plausible_time(value: datetime) -> datetime:
    """An event time from 1990 to a year ahead: a date in 2099 is a typo, not a plan."""
    if value < EARLIEST:
        raise ValueError(f"{value.isoformat()} is before {EARLIEST.date()}")
    if value.timestamp() > time.time() + _FUTURE_LIMIT_S:
        raise ValueError(f"{value.isoformat()} is more than a year in the future")
    return value


def _country(value: str) -> str:
    if not is_country(value):
        raise ValueError(f"unknown country code {value!r} (expected ISO 3166-1 alpha-2)")
    return value


def _currency(value: str) -> str:
    if not is_currency(value):
        raise ValueError(f"unknown currency code {value!r} (expected ISO 4217)")
    return value


def _commodity(value: str) -> str:
    if not is_commodity_code(value):
        raise ValueError(
            f"malformed commodity code {value!r} (expected 6, 8 or 10 digits: HS6, CN8, TARIC10)"
        )
    return value


UtcDatetime = Annotated[datetime, Field(strict=False), AfterValidator(_utc)]
EventTime = Annotated[UtcDatetime, AfterValidator(_plausible_time)]
CountryCode = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_country)]
CurrencyCode = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_currency)]
CommodityCode = Annotated[str, AfterValidator(_commodity)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w.:/-]+$")]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


MAX_VALUE_EUR = 1e12
"""A customs value above a thousand billion euros for one item is an error."""
MAX_MASS_KG = 1e10
"""Ten million tonnes: beyond the largest cargo."""
MIN_MASS_KG = 1e-6
"""A declared net mass is 0 (unknown, flagged) or at least a milligram."""
MAX_DUTY_RATE_PCT = 1000.0
"""No tariff charges more than ten times the value (the highest real rates, on a few
agricultural goods, are several hundred per cent); unusual rates below it are flagged."""


class Record(BaseModel):
    """Base of every record: strict, immutable, no unknown fields."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


Direction = Literal["import", "export"]


class Declaration(Record):
    """One item of a customs declaration, in the spirit of the EU customs data model.

    ``direction`` says which way the goods cross the border; records written before it
    existed are imports. For an export, ``importer`` holds the exporting operator (the
    EU party whose flows these are) and ``destination`` the third country the goods go
    to; ``origin`` stays the goods' country of origin either way.
    """

    declaration_id: Identifier
    item_number: int = Field(default=1, ge=1, le=999)
    lodged_at: EventTime
    office: Identifier
    declarant: Identifier
    importer: Identifier
    seller: Identifier | None = None
    commodity_code: CommodityCode
    origin: CountryCode
    dispatch: CountryCode | None = None
    procedure: str | None = Field(default=None, max_length=8)
    transport_mode: str | None = Field(default=None, max_length=4)
    incoterm: str | None = Field(default=None, max_length=3)
    invoice_currency: CurrencyCode | None = None
    invoice_amount: float | None = Field(default=None, ge=0, le=1e15, allow_inf_nan=False)
    customs_value_eur: float = Field(ge=0, le=MAX_VALUE_EUR, allow_inf_nan=False)
    net_mass_kg: float = Field(ge=0, le=MAX_MASS_KG, allow_inf_nan=False)
    supplementary_units: float | None = Field(default=None, ge=0, le=1e12, allow_inf_nan=False)
    duty_rate_pct: float = Field(ge=0, le=MAX_DUTY_RATE_PCT, allow_inf_nan=False)
    preference: str | None = Field(default=None, max_length=8)
    attributes: dict[str, str] = Field(default_factory=dict, max_length=32)
    direction: Direction = "import"
    destination: CountryCode | None = None

    @field_validator("net_mass_kg")
    @classmethod
    def _weighable(cls, value: float) -> float:
        if 0 < value < MIN_MASS_KG:
            raise ValueError(f"net mass {value:g} kg is below a milligram: 0 if unknown")
        return value

    @field_validator("attributes")
    @classmethod
    def _short_attributes(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if len(key) > 64 or len(item) > 256:
                raise ValueError(f"attribute {key[:64]!r} too long (keys <= 64, values <= 256)")
        return value

    @property
    def partner(self) -> str | None:
        """The partner country of the flow: origin of an import, destination of an export.

        >>> Declaration.model_validate(EXAMPLE_DECLARATION).partner
        'CN'
        """
        return self.destination if self.direction == "export" else self.origin

    @property
    def chapter(self) -> str:
        """HS chapter (2 digits)."""
        return self.commodity_code[:2]

    @property
    def hs6(self) -> str:
        return self.commodity_code[:6]

    @property
    def unit_value_per_kg(self) -> float | None:
        """Customs value in EUR per kg, or None when no mass was declared."""
        if self.net_mass_kg <= 0:
            return None
        return self.customs_value_eur / self.net_mass_kg

    @property
    def unit_value_per_unit(self) -> float | None:
        """Customs value in EUR per supplementary unit, when units were declared."""
        if not self.supplementary_units:
            return None
        return self.customs_value_eur / self.supplementary_units


Outcome = Literal["compliant", "infraction", "critical"]
SelectionSource = Literal["engine", "random_audit", "other"]


class ControlResult(Record):
    """The outcome of an inspection: the label, with how the declaration was chosen."""

    declaration_id: Identifier
    controlled_at: EventTime
    outcome: Outcome
    recovered_eur: NonNegative = 0.0
    selection: SelectionSource
    selection_probability: float | None = Field(default=None, gt=0, le=1)
    inspector: str | None = Field(default=None, max_length=64)
    typology: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[a-z0-9_]+$",
        description="the kind of infraction the inspection found (under_valuation, ...)",
    )

    @property
    def is_fraud(self) -> bool:
        return self.outcome != "compliant"


class Reason(Record):
    """A reason code and the sentence a targeting agent reads."""

    code: str
    text: str


class Contribution(Record):
    """A feature that pushed a score up, with its value."""

    name: str
    value: Finite
    weight: Finite


class ValuationEvidence(Record):
    """What the value under-declaration detector saw."""

    score: Share
    reference_unit_value: NonNegative | None = None
    unit: Literal["kg", "unit"] | None = None
    support_level: str | None = None
    support_count: int = Field(default=0, ge=0)
    ratio: NonNegative | None = None
    robust_z: Finite | None = None
    below_lowest_acceptable: bool = False
    duty_at_risk_eur: NonNegative = 0.0


class AtypicalityEvidence(Record):
    """What the atypicality detector saw."""

    score: Share
    contributions: tuple[Contribution, ...] = ()


class Score(Record):
    """Every detector's output for one declaration item, the final risk and the decision.

    ``revision`` counts the versions of the item the worker scored: 1, then 2 for the
    first amendment (the same declaration id and item with other content), and so on.
    """

    declaration_id: Identifier
    item_number: int = Field(default=1, ge=1, le=999)
    revision: int = Field(default=1, ge=1)
    importer: Identifier
    office: Identifier
    commodity_code: CommodityCode
    lodged_at: UtcDatetime
    scored_at: UtcDatetime
    valuation: ValuationEvidence
    atypicality: AtypicalityEvidence
    supervised_probability: Share
    risk: Share
    expected_recoverable_eur: NonNegative
    selected: bool
    selection: SelectionSource | None = None
    selection_probability: float = Field(gt=0, le=1, allow_inf_nan=False)
    threshold: Finite
    reasons: tuple[Reason, ...] = ()
    flags: tuple[str, ...] = ()
    """Data-quality flags of the declaration (:mod:`vigie.contracts.quality`)."""
    model_versions: dict[str, str] = Field(default_factory=dict)
    latency_ms: NonNegative = 0.0


AlertKind = Literal["risk", "random_audit"]


class Alert(Record):
    """A score selected for control, with a stable alert id.

    ``kind`` says why: the risk is above the budget's threshold (``risk``), or the
    declaration was drawn for a random audit (``random_audit``, whatever its risk).
    """

    alert_id: str = Field(min_length=1, max_length=96, pattern=r"^[\w.:/-]+$")
    raised_at: UtcDatetime
    kind: AlertKind = "risk"
    score: Score

    @property
    def declaration_id(self) -> str:
        """The alerted declaration: the ``alerts`` topic's key."""
        return self.score.declaration_id

    @staticmethod
    def id_for(declaration_id: str, item_number: int = 1, revision: int = 1) -> str:
        """The alert id, derived from the declaration item: retries produce the same id.

        >>> Alert.id_for("D-1"), Alert.id_for("D-1", 2), Alert.id_for("D-1", revision=3)
        ('alert:D-1', 'alert:D-1/2', 'alert:D-1:r3')
        """
        item = f"/{item_number}" if item_number > 1 else ""
        amended = f":r{revision}" if revision > 1 else ""
        return f"alert:{declaration_id}{item}{amended}"


class DeadLetter(Record):
    """A record that could not be accepted, kept with its original bytes and the reasons.

    Large messages keep their first bytes only (``truncated``), with the length and the
    SHA-256 of the whole message: a dead letter always fits its topic.
    """

    source_topic: str
    key: str | None = None
    value: str = Field(description="original bytes, as UTF-8 text or base64")
    value_encoding: Literal["utf-8", "base64"]
    value_bytes: int = Field(default=0, ge=0, description="length of the whole message")
    value_sha256: str | None = Field(default=None, description="SHA-256 of the whole message")
    truncated: bool = False
    reason: str
    errors: tuple[dict[str, Any], ...]
    received_at: UtcDatetime


EXAMPLE_DECLARATION: dict[str, Any] = {
    "declaration_id": "FR26IM0000001",
    "item_number": 1,
    "lodged_at": "2026-03-02T09:15:00+01:00",
    "office": "FR000730",
    "declarant": "DCL0001",
    "importer": "FR12345678901",
    "seller": "CN-SELL-0042",
    "commodity_code": "62034231",
    "origin": "CN",
    "dispatch": "CN",
    "procedure": "4000",
    "transport_mode": "1",
    "incoterm": "FOB",
    "invoice_currency": "USD",
    "invoice_amount": 27000.0,
    "customs_value_eur": 25000.0,
    "net_mass_kg": 2000.0,
    "supplementary_units": 4000.0,
    "duty_rate_pct": 12.0,
    "preference": "100",
}


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)

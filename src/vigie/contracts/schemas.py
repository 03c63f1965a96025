"""Record schemas: the data contracts of every topic, strict pydantic models.

Timestamps are timezone-aware and normalised to UTC. Strict mode refuses silent type
coercion (a string where a number is due is an error), except that timestamps may arrive
as ISO 8601 strings, since that is how JSON carries them.

>>> d = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> d.lodged_at.isoformat(), d.chapter, d.unit_value_per_kg
('2026-03-02T08:15:00+00:00', '62', 12.5)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from vigie.contracts.codes import COMMODITY_CODE, is_country, is_currency

SCHEMA_VERSION = 1


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a time zone (e.g. 2026-03-02T08:15:00Z)")
    return value.astimezone(UTC)


def _country(value: str) -> str:
    if not is_country(value):
        raise ValueError(f"unknown country code {value!r} (expected ISO 3166-1 alpha-2)")
    return value


def _currency(value: str) -> str:
    if not is_currency(value):
        raise ValueError(f"unknown currency code {value!r} (expected ISO 4217)")
    return value


def _commodity(value: str) -> str:
    if not COMMODITY_CODE.match(value):
        raise ValueError(
            f"malformed commodity code {value!r} (expected 6, 8 or 10 digits: HS6, CN8, TARIC10)"
        )
    return value


UtcDatetime = Annotated[datetime, Field(strict=False), AfterValidator(_utc)]
CountryCode = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_country)]
CurrencyCode = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_currency)]
CommodityCode = Annotated[str, AfterValidator(_commodity)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w.:/-]+$")]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


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
    lodged_at: UtcDatetime
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
    invoice_amount: NonNegative | None = None
    customs_value_eur: NonNegative
    net_mass_kg: NonNegative
    supplementary_units: NonNegative | None = None
    duty_rate_pct: float = Field(ge=0, le=1000, allow_inf_nan=False)
    preference: str | None = Field(default=None, max_length=8)
    attributes: dict[str, str] = Field(default_factory=dict, max_length=32)
    direction: Direction = "import"
    destination: CountryCode | None = None

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
    controlled_at: UtcDatetime
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
    value: float
    weight: float


class ValuationEvidence(Record):
    """What the value under-declaration detector saw."""

    score: float = Field(ge=0, le=1)
    reference_unit_value: float | None = None
    unit: Literal["kg", "unit"] | None = None
    support_level: str | None = None
    support_count: int = 0
    ratio: float | None = None
    robust_z: float | None = None
    below_lowest_acceptable: bool = False
    duty_at_risk_eur: float = 0.0


class AtypicalityEvidence(Record):
    """What the atypicality detector saw."""

    score: float = Field(ge=0, le=1)
    contributions: tuple[Contribution, ...] = ()


class Score(Record):
    """Every detector's output for one declaration, the final risk and the decision."""

    declaration_id: Identifier
    importer: Identifier
    office: Identifier
    commodity_code: CommodityCode
    lodged_at: UtcDatetime
    scored_at: UtcDatetime
    valuation: ValuationEvidence
    atypicality: AtypicalityEvidence
    supervised_probability: float = Field(ge=0, le=1)
    risk: float = Field(ge=0, le=1)
    expected_recoverable_eur: float = Field(ge=0)
    selected: bool
    selection: SelectionSource | None = None
    selection_probability: float = Field(gt=0, le=1)
    threshold: float
    reasons: tuple[Reason, ...] = ()
    model_versions: dict[str, str] = Field(default_factory=dict)
    latency_ms: float = Field(ge=0, default=0.0)


class Alert(Record):
    """A score selected for control, with a stable alert id."""

    alert_id: Identifier
    raised_at: UtcDatetime
    score: Score

    @property
    def declaration_id(self) -> str:
        """The alerted declaration: the ``alerts`` topic's key."""
        return self.score.declaration_id

    @staticmethod
    def id_for(declaration_id: str) -> str:
        """The alert id is derived from the declaration: retries produce the same id.

        >>> Alert.id_for("D-1")
        'alert:D-1'
        """
        return f"alert:{declaration_id}"


class DeadLetter(Record):
    """A record that could not be accepted, kept with its original bytes and the reasons."""

    source_topic: str
    key: str | None = None
    value: str = Field(description="original bytes, decoded as UTF-8 with replacement, or base64")
    value_encoding: Literal["utf-8", "base64"]
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

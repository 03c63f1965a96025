"""Validation that knows customs: each odd input gets a clear error or a stated rule."""

from __future__ import annotations

from typing import Any

import pytest

from vigie.contracts.codec import decode_object
from vigie.contracts.quality import flags
from vigie.contracts.schemas import EXAMPLE_DECLARATION, ControlResult, Declaration
from vigie.errors import DecodeError


def declaration(**change: Any) -> dict[str, Any]:
    return {**EXAMPLE_DECLARATION, **change}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"lodged_at": "2099-03-02T09:15:00Z"}, "lodged_at", "more than a year in the future"),
        ({"lodged_at": "1899-03-02T09:15:00Z"}, "lodged_at", "before 1990-01-01"),
        ({"invoice_currency": "XXX"}, "invoice_currency", "unknown currency code 'XXX'"),
        ({"invoice_currency": "XAU"}, "invoice_currency", "unknown currency code 'XAU'"),
        ({"origin": "XX"}, "origin", "unknown country code 'XX'"),
        ({"commodity_code": "620342\n"}, "commodity_code", "malformed commodity code"),
        ({"commodity_code": "\u0666\u0662\u0660\u0663\u0664\u0662"}, "commodity_code", "malformed"),
        ({"commodity_code": "62034"}, "commodity_code", "malformed commodity code"),
        ({"net_mass_kg": 1e-300}, "net_mass_kg", "below a milligram"),
        ({"customs_value_eur": 1e308}, "customs_value_eur", "less than or equal to"),
        ({"duty_rate_pct": 1200.0}, "duty_rate_pct", "less than or equal to 1000"),
        ({"customs_value_eur": -1.0}, "customs_value_eur", "greater than or equal to 0"),
    ],
)
def test_impossible_values_are_refused_with_the_field_and_the_reason(
    change: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(DecodeError) as refused:
        decode_object(Declaration, declaration(**change))
    (error,) = refused.value.errors
    assert error["loc"] == [field]
    assert message in error["msg"]


@pytest.mark.parametrize(
    ("change", "flagged"),
    [
        ({"origin": "ZZ"}, ("ORIGIN_UNKNOWN",)),
        ({"dispatch": "QV"}, ("DISPATCH_UNKNOWN",)),
        ({"net_mass_kg": 0.0}, ("NET_MASS_MISSING",)),
        ({"customs_value_eur": 0.0}, ("VALUE_ZERO",)),
        ({"duty_rate_pct": 900.0}, ("DUTY_RATE_UNUSUAL",)),
        ({"duty_rate_pct": 250.0}, ()),
        ({"duty_rate_pct": 150.0, "preference": "300"}, ("DUTY_RATE_UNUSUAL",)),
        ({"duty_rate_pct": 150.0, "preference": "FCN1"}, ()),
    ],
)
def test_valid_but_unusual_values_are_accepted_and_flagged(
    change: dict[str, Any], flagged: tuple[str, ...]
) -> None:
    assert flags(decode_object(Declaration, declaration(**change))) == flagged


def test_a_control_dated_in_2099_is_refused() -> None:
    result = {
        "declaration_id": "D-1",
        "controlled_at": "2099-01-01T00:00:00Z",
        "outcome": "compliant",
        "selection": "other",
    }
    with pytest.raises(DecodeError, match="future"):
        decode_object(ControlResult, result)

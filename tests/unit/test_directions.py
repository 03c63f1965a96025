"""Declarations carry their direction; records and files from before still validate."""

from __future__ import annotations

import pytest

from vigie.contracts.codec import decode, encode
from vigie.contracts.schemas import EXAMPLE_DECLARATION, ControlResult, Declaration
from vigie.errors import DecodeError
from vigie.ingest.mappings import load_mapping


def test_a_record_without_direction_is_an_import() -> None:
    old = Declaration.model_validate(EXAMPLE_DECLARATION)
    assert (old.direction, old.destination, old.partner) == ("import", None, "CN")
    assert decode(Declaration, encode(old)) == old


def test_an_export_names_its_destination_as_partner() -> None:
    export = Declaration.model_validate(
        {**EXAMPLE_DECLARATION, "direction": "export", "origin": "FR", "destination": "US"}
    )
    assert export.partner == "US"
    assert decode(Declaration, encode(export)).direction == "export"


@pytest.mark.parametrize(
    "change", [{"direction": "transit"}, {"direction": "EXPORT"}, {"destination": "XX"}]
)
def test_unknown_directions_and_countries_are_refused(change: dict[str, str]) -> None:
    raw = encode(Declaration.model_validate(EXAMPLE_DECLARATION))[:-1]
    extra = ",".join(f'"{k}":"{v}"' for k, v in change.items())
    with pytest.raises(DecodeError):
        decode(Declaration, raw + b"," + extra.encode() + b"}")


def test_control_typology_is_optional_and_a_plain_name() -> None:
    base = {"declaration_id": "D-1", "controlled_at": "2026-03-02T08:15:00Z",
            "outcome": "infraction", "selection": "other"}  # fmt: skip
    assert ControlResult.model_validate(base).typology is None
    found = ControlResult.model_validate({**base, "typology": "under_valuation"})
    assert found.typology == "under_valuation"
    with pytest.raises(ValueError, match="typology"):
        ControlResult.model_validate({**base, "typology": "<script>"})


def test_customs_kr_rows_are_imports() -> None:
    kr = load_mapping("customs-kr")
    assert kr.declaration["direction"] == {"value": "import"}

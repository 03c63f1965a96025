"""Validating replayed records: accepted ones re-encoded and keyed, rejected ones explained."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from vigie.contracts.catalogue import CONTROL_RESULTS, DECLARATIONS
from vigie.contracts.codec import decode
from vigie.contracts.schemas import EXAMPLE_DECLARATION, ControlResult, Declaration
from vigie.errors import ConfigurationError, DecodeError
from vigie.ingest.decoding import RecordDecoder
from vigie.ingest.mappings import load_mapping
from vigie.ingest.readers import SourceRecord

KR_ROW = {
    "Declaration ID": "97061800", "Date": "2020-01-01", "Office ID": "30",
    "Process Type": "B", "Import Type": "11", "Import Use": "21", "Payment Type": "11",
    "Mode of Transport": "10", "Declarant ID": "ZZR1LT6", "Importer ID": "QLRUBN9",
    "Seller ID": "0VKY2BR", "Courier ID": "", "HS6 Code": "440890",
    "Country of Departure": "BE", "Country of Origin": "BE", "Tax Rate": "0.0",
    "Tax Type": "FEU1", "Country of Origin Indicator": "G", "Net Mass": "108.0",
    "Item Price": "372254.4", "Fraud": "1", "Critical Fraud": "0",
}  # fmt: skip


def line(**changes: Any) -> bytes:
    record = {**EXAMPLE_DECLARATION, **changes}
    return orjson.dumps({k: v for k, v in record.items() if v is not None})


def rejection(decoder: RecordDecoder, raw: bytes, row: dict[str, str] | None = None) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decoder.accept(SourceRecord(1, raw, row, None))
    return caught.value


@pytest.fixture
def decoder() -> RecordDecoder:
    return RecordDecoder(DECLARATIONS, None, max_bytes=4096)


def test_accepted_line_is_reencoded_in_utc_and_keyed_by_importer(decoder: RecordDecoder) -> None:
    accepted = decoder.accept(SourceRecord(1, line(importer="IMP-9"), None, None))
    assert accepted.key == b"IMP-9"
    assert orjson.loads(accepted.value)["lodged_at"] == "2026-03-02T08:15:00Z"
    assert decode(Declaration, accepted.value).importer == "IMP-9"
    assert accepted.control is None


@pytest.mark.parametrize(
    ("raw", "reason", "loc", "fragment"),
    [
        (b'{"declaration_id": ', "invalid_json", [], "not valid JSON"),
        (b"[1, 2]", "not_an_object", [], "expected a JSON object, got list"),
        (b"3.5", "not_an_object", [], "got float"),
        (b"NaN", "not_an_object", [], "got float"),
        (b"-Infinity", "not_an_object", [], "got float"),
        (line(importer=None), "schema", ["importer"], "Field required"),
        (line(net_mass_kg="2000"), "schema", ["net_mass_kg"], "valid number"),
        (line(net_mass_kg=-5.0), "schema", ["net_mass_kg"], "greater than or equal to 0"),
        (line(origin="XX"), "schema", ["origin"], "unknown country code 'XX'"),
        (line(commodity_code="6203A"), "schema", ["commodity_code"], "malformed commodity"),
        (line(lodged_at="2026-03-02T09:15:00"), "schema", ["lodged_at"], "time zone"),
        (line(lodged_at="last tuesday"), "schema", ["lodged_at"], "valid datetime"),
        (line(colour="red"), "schema", ["colour"], "Extra inputs are not permitted"),
        (b'{"declaration_id": "\xff"}', "invalid_utf8", [], "not valid UTF-8"),
        (b"", "empty", [], "no value"),
        (line(attributes={"note": "x" * 4096}), "oversized", [], "the limit is 4096"),
    ],
)
def test_each_bad_line_is_rejected_with_an_actionable_reason(
    decoder: RecordDecoder, raw: bytes, reason: str, loc: list[str], fragment: str
) -> None:
    error = rejection(decoder, raw)
    assert error.reason == reason
    assert any(list(e["loc"]) == loc and fragment in e["msg"] for e in error.errors), error.errors


def test_csv_without_mapping_reads_numbers_and_skips_empty_cells(decoder: RecordDecoder) -> None:
    row = {k: str(v) for k, v in EXAMPLE_DECLARATION.items()} | {"seller": ""}
    accepted = decoder.accept(SourceRecord(2, b"...", row, None))
    declaration = decode(Declaration, accepted.value)
    assert declaration.net_mass_kg == 2000.0
    assert declaration.item_number == 1
    assert declaration.seller is None
    bad = rejection(decoder, b"...", row | {"net_mass_kg": "heavy"})
    assert bad.errors[0]["loc"] == ["net_mass_kg"]
    assert bad.errors[0]["input"] == "heavy"


def test_mapping_yields_declaration_and_control_keyed_by_declaration_id() -> None:
    decoder = RecordDecoder(DECLARATIONS, load_mapping("customs-kr"), max_bytes=65536)
    accepted = decoder.accept(SourceRecord(2, b"...", KR_ROW, None))
    assert accepted.key == b"QLRUBN9"
    assert accepted.control_key == b"97061800"
    assert accepted.control is not None
    control = decode(ControlResult, accepted.control)
    assert (control.outcome, control.controlled_at.day) == ("infraction", 8)


def test_mapping_errors_name_the_column_or_the_control_field() -> None:
    decoder = RecordDecoder(DECLARATIONS, load_mapping("customs-kr"), max_bytes=65536)
    missing = rejection(decoder, b"...", KR_ROW | {"Importer ID": ""})
    assert missing.reason == "mapping"
    assert "'Importer ID' is missing or empty" in missing.errors[0]["msg"]
    bad_date = rejection(decoder, b"...", KR_ROW | {"Date": "01/01/2020"})
    assert {tuple(e["loc"]) for e in bad_date.errors} == {("lodged_at",)}


def test_mapping_applies_to_jsonl_objects() -> None:
    decoder = RecordDecoder(DECLARATIONS, load_mapping("customs-kr"), max_bytes=65536)
    raw = orjson.dumps(KR_ROW | {"Net Mass": 108.0})
    assert decoder.accept(SourceRecord(1, raw, None, None)).key == b"QLRUBN9"
    assert rejection(decoder, b"[]").reason == "not_an_object"
    assert rejection(decoder, b"").reason == "empty"
    assert rejection(decoder, b"{").reason == "invalid_json"


def test_original_key_of_a_rejected_record() -> None:
    decoder = RecordDecoder(DECLARATIONS, None, max_bytes=4096)
    assert decoder.original_key(SourceRecord(1, line(origin="XX"), None, None)) == b"FR12345678901"
    assert decoder.original_key(SourceRecord(1, b"{", None, None)) is None
    mapped = RecordDecoder(DECLARATIONS, load_mapping("customs-kr"), max_bytes=4096)
    assert mapped.original_key(SourceRecord(1, b"", KR_ROW, None)) == b"QLRUBN9"


def test_schema_and_key_follow_the_topic() -> None:
    decoder = RecordDecoder(CONTROL_RESULTS, None, max_bytes=4096)
    raw = (
        b'{"declaration_id": "D-1", "controlled_at": "2026-03-09T00:00:00Z", '
        b'"outcome": "compliant", "selection": "random_audit", "selection_probability": 0.01}'
    )
    assert decoder.accept(SourceRecord(1, raw, None, None)).key == b"D-1"
    assert rejection(decoder, line()).reason == "schema"
    with pytest.raises(ConfigurationError, match="yields declarations"):
        RecordDecoder(CONTROL_RESULTS, load_mapping("customs-kr"), max_bytes=4096)


BASE = orjson.dumps(EXAMPLE_DECLARATION)
EDGE_CASES = {
    "huge integer": BASE.replace(b"25000.0", b"1" + b"0" * 30),
    "lone surrogate": BASE.replace(b'"CN-SELL-0042"', b'"\\ud800"'),
    "NaN": BASE.replace(b"25000.0", b"NaN"),
    "boolean number": BASE.replace(b"25000.0", b"true"),
    "duplicate key": BASE[:-1] + b',"origin":"XX"}',
    "trailing garbage": BASE + b" x",
    "epoch timestamp": BASE.replace(b'"2026-03-02T09:15:00+01:00"', b"1772438100"),
    "space in timestamp": BASE.replace(b"T09:15:00+01:00", b" 09:15:00+01:00"),
    "date only": BASE.replace(b"T09:15:00+01:00", b""),
    "float item number": BASE.replace(b'"item_number":1', b'"item_number":1.0'),
    "byte order mark": b"\xef\xbb\xbf" + BASE,
    "number attribute": BASE[:-1] + b',"attributes":{"a":1}}',
    "escaped text": BASE.replace(b"CN-SELL-0042", b"CN-SELL-\\u0030042"),
}  # fmt: skip


@pytest.mark.parametrize("raw", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_fast_path_agrees_with_the_codec(decoder: RecordDecoder, raw: bytes) -> None:
    assert raw != BASE
    try:
        expected: bytes | str = decode(Declaration, raw).model_dump_json()
    except DecodeError as exc:
        expected = exc.reason
    try:
        accepted = decoder.accept(SourceRecord(1, raw, None, None))
        got: bytes | str = decode(Declaration, accepted.value).model_dump_json()
    except DecodeError as exc:
        got = exc.reason
    assert got == expected

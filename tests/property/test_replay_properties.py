"""Replay decoding never crashes: any line or row is accepted (and round-trips) or explained."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from vigie.contracts.catalogue import DECLARATIONS
from vigie.contracts.codec import decode
from vigie.contracts.schemas import EXAMPLE_DECLARATION, ControlResult, Declaration
from vigie.errors import DecodeError
from vigie.ingest.decoding import Accepted, RecordDecoder
from vigie.ingest.mappings import load_mapping
from vigie.ingest.readers import SourceRecord

PLAIN = RecordDecoder(DECLARATIONS, None, max_bytes=65536)
KR = RecordDecoder(DECLARATIONS, load_mapping("customs-kr"), max_bytes=65536)
KR_ROW = {
    "Declaration ID": "97061800", "Date": "2020-01-01", "Office ID": "30",
    "Process Type": "B", "Import Type": "11", "Import Use": "21", "Payment Type": "11",
    "Mode of Transport": "10", "Declarant ID": "ZZR1LT6", "Importer ID": "QLRUBN9",
    "Seller ID": "0VKY2BR", "Courier ID": "", "HS6 Code": "440890",
    "Country of Departure": "BE", "Country of Origin": "BE", "Tax Rate": "0.0",
    "Tax Type": "FEU1", "Country of Origin Indicator": "G", "Net Mass": "108.0",
    "Item Price": "372254.4", "Fraud": "1", "Critical Fraud": "0",
}  # fmt: skip

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
cells = st.text(max_size=12) | st.sampled_from(
    ["", "9999-12-31", "0001-01-01", "1e999", "-1", "nan", "2020-02-30", "12345", "ZZ"]
)


def outcome(decoder: RecordDecoder, record: SourceRecord) -> Accepted | DecodeError:
    try:
        accepted = decoder.accept(record)
    except DecodeError as exc:
        assert exc.reason and exc.errors
        orjson.dumps(exc.errors)  # a dead letter can carry them
        return exc
    assert decode(Declaration, accepted.value)
    if accepted.control is not None:
        assert decode(ControlResult, accepted.control)
    return accepted


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_accepted_or_explained(raw: bytes) -> None:
    outcome(PLAIN, SourceRecord(1, raw, None, None))
    outcome(KR, SourceRecord(1, raw, None, None))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(EXAMPLE_DECLARATION)), json_values)
def test_a_changed_field_is_judged_like_the_codec_does(field: str, value: Any) -> None:
    raw = json.dumps({**EXAMPLE_DECLARATION, field: value}).encode()  # big ints too
    result = outcome(PLAIN, SourceRecord(1, raw, None, None))
    try:
        expected: Declaration | str = decode(Declaration, raw)
    except DecodeError as exc:
        expected = exc.reason
    if isinstance(result, DecodeError):
        assert result.reason == expected
    else:
        assert decode(Declaration, result.value) == expected


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(KR_ROW)), cells, max_size=4))
def test_any_mapped_row_is_accepted_or_explained(changes: dict[str, str]) -> None:
    outcome(KR, SourceRecord(2, b"row", KR_ROW | changes, None))

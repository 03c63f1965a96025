"""From a file's record to wire bytes: decode, validate, map, re-encode, or say why not.

:class:`RecordDecoder` turns a :class:`~vigie.ingest.readers.SourceRecord` into the
message(s) to produce, or raises :class:`~vigie.errors.DecodeError` with a reason code and
precise errors:

- JSONL without a mapping: the line's bytes validated in pydantic's JSON mode, and when
  they fail, :func:`vigie.contracts.codec.decode` for the reason and errors;
- CSV without a mapping: the header names the schema's fields, empty cells are absent,
  numeric columns are read as numbers, then :func:`~vigie.contracts.codec.decode_object`;
- with a mapping (CSV rows, or JSONL objects whose values are read as text):
  :meth:`ColumnMapping.convert`, then ``decode_object`` of the declaration and, when the
  mapping yields one, of the :class:`~vigie.contracts.schemas.ControlResult`.

Accepted records are re-encoded with :func:`vigie.contracts.codec.encode` (UTC timestamps,
no null fields), keyed by their topic's key field.

>>> from vigie.ingest.readers import SourceRecord
>>> from vigie.contracts.catalogue import DECLARATIONS
>>> decoder = RecordDecoder(DECLARATIONS, None, max_bytes=65536)
>>> good = orjson.dumps(EXAMPLE_DECLARATION)
>>> accepted = decoder.accept(SourceRecord(1, good, None, None))
>>> accepted.key, accepted.value[:37]
(b'FR12345678901', b'{"declaration_id":"FR26IM0000001","it')
>>> try:
...     decoder.accept(SourceRecord(2, good.replace(b'"CN"', b'"XX"', 1), None, None))
... except DecodeError as e:
...     print(e)
schema: origin: Value error, unknown country code 'XX' (expected ISO 3166-1 alpha-2)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel, ValidationError

from vigie.contracts.catalogue import Topic
from vigie.contracts.codec import decode, decode_object, encode
from vigie.contracts.schemas import EXAMPLE_DECLARATION, ControlResult, Declaration
from vigie.errors import ConfigurationError, DecodeError
from vigie.ingest.mappings import ColumnMapping
from vigie.ingest.readers import SourceRecord, invalid_utf8_error

__all__ = ["EXAMPLE_DECLARATION", "Accepted", "RecordDecoder", "oversized_error"]


class Accepted(NamedTuple):
    """The messages an accepted record becomes."""

    value: bytes
    key: bytes | None
    control: bytes | None = None
    control_key: bytes | None = None


class RecordDecoder:
    """Validates records for one topic, optionally through a column mapping.

    Parameters
    ----------
    topic
        The catalogue topic the records go to; its schema validates them, its key field
        keys them.
    mapping
        A column mapping (rows to Declarations and optional ControlResults), or None.
    max_bytes
        Records (and re-encoded messages) larger than this are rejected as oversized.
    """

    def __init__(self, topic: Topic, mapping: ColumnMapping | None, max_bytes: int) -> None:
        if topic.schema is None:
            raise ConfigurationError(f"topic {topic.name!r} has no record schema to replay")
        if mapping is not None and topic.schema is not Declaration:
            raise ConfigurationError(
                f"mapping {mapping.name!r} yields declarations; topic {topic.name!r} "
                f"carries {topic.schema.__name__} records"
            )
        self.topic = topic
        self.schema: type[BaseModel] = topic.schema
        self.mapping = mapping
        self.max_bytes = max_bytes
        self._csv_types = csv_converters(self.schema)

    def accept(self, record: SourceRecord) -> Accepted:
        """The message(s) for ``record``, or :class:`DecodeError`."""
        return self._encoded(*self.validated(record))

    def validated(self, record: SourceRecord) -> tuple[BaseModel, BaseModel | None]:
        """The record as its schema's object, and the control result a mapping yields;
        :class:`DecodeError` otherwise (what :meth:`accept` produces, before encoding)."""
        if record.error is not None:
            raise record.error
        if len(record.raw) > self.max_bytes:
            raise oversized_error(len(record.raw), self.max_bytes)
        if self.mapping is not None:
            return self._mapped(self.mapping, self._row(record))
        if record.row is None:
            return self._json(record.raw), None
        return decode_object(self.schema, self._typed(record.row)), None

    def original_key(self, record: SourceRecord) -> bytes | None:
        """The key a rejected record would have had, when it can be read at all."""
        field = self.topic.key_field
        if field is None:
            return None
        if self.mapping is not None:
            spec = self.mapping.declaration.get(field)
            field = spec.get("column", field) if isinstance(spec, Mapping) else field
        try:
            source = record.row if record.row is not None else orjson.loads(record.raw)
        except orjson.JSONDecodeError:
            return None
        value = source.get(field) if isinstance(source, dict) else None
        return value.encode("utf-8", errors="replace") if isinstance(value, str) else None

    def _json(self, raw: bytes) -> BaseModel:
        # Fast path: pydantic's JSON mode parses and validates in one pass (about 10 %
        # cheaper than orjson + model_validate) and agrees with the codec on what is
        # valid (tests/unit/test_replay_decoding.py). Rejections always come from the
        # codec, so a dead letter's reason and errors are the ones every consumer gives.
        if raw:
            try:
                return self.schema.model_validate_json(raw)
            except ValidationError:
                pass
        try:
            return decode(self.schema, raw, max_bytes=self.max_bytes)
        except DecodeError as exc:
            raise _utf8_first(exc, raw) from exc

    def _row(self, record: SourceRecord) -> Mapping[str, str]:
        if record.row is not None:
            return record.row
        if not record.raw:
            decode(self.schema, record.raw)  # raises the "empty" error
        try:
            obj = orjson.loads(record.raw)
        except orjson.JSONDecodeError as exc:
            raise _utf8_first(
                DecodeError(
                    "invalid_json", [{"loc": [], "msg": f"not valid JSON: {exc}", "type": "json"}]
                ),
                record.raw,
            ) from exc
        if not isinstance(obj, dict):
            decode_object(self.schema, obj)  # raises the "not_an_object" error
        return {k: "" if v is None else str(v) for k, v in obj.items()}

    def _mapped(
        self, mapping: ColumnMapping, row: Mapping[str, str]
    ) -> tuple[BaseModel, BaseModel | None]:
        try:
            declaration, control = mapping.convert(row)
        except (ArithmeticError, ValueError, TypeError) as exc:
            # A transform that failed in a way the mapping did not foresee (a date that
            # overflows once shifted, ...): the row is rejected, the replay goes on.
            msg = f"mapping {mapping.name!r} failed on this row: {type(exc).__name__}: {exc}"
            raise DecodeError("mapping", [{"loc": [], "msg": msg, "type": "mapping"}]) from exc
        validated = decode_object(self.schema, declaration)
        if control is None:
            return validated, None
        try:
            return validated, decode_object(ControlResult, control)
        except DecodeError as exc:
            errors = [{**e, "loc": ["control", *e.get("loc", ())]} for e in exc.errors]
            raise DecodeError(exc.reason, errors) from exc

    def _typed(self, row: Mapping[str, str]) -> dict[str, Any]:
        typed: dict[str, Any] = {}
        for name, cell in row.items():
            if cell == "":
                continue
            convert = self._csv_types.get(name)
            typed[name] = _try(convert, cell) if convert is not None else cell
        return typed

    def _encoded(self, record: BaseModel, control: BaseModel | None) -> Accepted:
        value = encode(record)
        if len(value) > self.max_bytes:
            raise oversized_error(len(value), self.max_bytes)
        key = _key(record, self.topic.key_field)
        if control is None:
            return Accepted(value, key)
        return Accepted(value, key, encode(control), _key(control, "declaration_id"))


def csv_converters(schema: type[BaseModel]) -> dict[str, Callable[[str], Any]]:
    """How to read each non-text field of ``schema`` from a CSV cell.

    >>> sorted(csv_converters(Declaration))[:3]
    ['attributes', 'customs_value_eur', 'duty_rate_pct']
    """
    converters: dict[str, Callable[[str], Any]] = {}
    properties = schema.model_json_schema()["properties"]
    for name, prop in properties.items():
        types = {prop.get("type")} | {option.get("type") for option in prop.get("anyOf", [])}
        if "integer" in types:
            converters[name] = int
        elif "number" in types:
            converters[name] = float
        elif types & {"object", "array"}:
            converters[name] = orjson.loads
    return converters


def oversized_error(size: int, limit: int) -> DecodeError:
    """The error for a record over the size limit (as :func:`~vigie.contracts.codec.decode`)."""
    msg = f"message is {size} bytes, the limit is {limit}"
    return DecodeError("oversized", [{"loc": [], "msg": msg, "type": "oversized"}])


def _utf8_first(error: DecodeError, raw: bytes) -> DecodeError:
    """Bytes that are not UTF-8 text say so, rather than "invalid JSON"."""
    if error.reason != "invalid_json":
        return error
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return invalid_utf8_error()
    return error


def _try(convert: Callable[[str], Any], cell: str) -> Any:
    try:
        return convert(cell)
    except (ValueError, orjson.JSONDecodeError):
        return cell  # validation names the field and what was expected


def _key(record: BaseModel, field: str | None) -> bytes | None:
    if field is None:
        return None
    value = getattr(record, field, None)
    return None if value is None else str(value).encode("utf-8")

"""Encoding and decoding records: JSON on the wire, every failure a precise DecodeError.

Decoding is where bad input is caught. A failure never raises past :func:`decode`'s
callers without a reason code and a list of errors, and :func:`dead_letter` turns it
into the record that goes to ``declarations.dlq``.

>>> raw = encode(Declaration.model_validate(EXAMPLE_DECLARATION))
>>> decode(Declaration, raw).commodity_code
'62034231'
>>> try:
...     decode(Declaration, b'{"declaration_id": 1}')
... except DecodeError as e:
...     print(e.reason, len(e.errors) > 3)
schema True
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from vigie.contracts.schemas import EXAMPLE_DECLARATION, DeadLetter, Declaration, utc_now
from vigie.errors import DecodeError

M = TypeVar("M", bound=BaseModel)

DEFAULT_MAX_BYTES = 64 * 1024
__all__ = [
    "EXAMPLE_DECLARATION",
    "Declaration",
    "dead_letter",
    "decode",
    "decode_object",
    "encode",
]


def encode(record: BaseModel) -> bytes:
    """Serialise a record to JSON bytes (UTC timestamps in ISO 8601), absent fields left out.

    pydantic-core writes the bytes directly, without an intermediate dict.
    """
    return type(record).__pydantic_serializer__.to_json(record, exclude_none=True)


def decode(schema: type[M], raw: bytes | None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> M:
    """Parse and validate wire bytes as ``schema``, or raise :class:`DecodeError`.

    Validation runs in pydantic's JSON mode, where strictness follows JSON's own types:
    arrays fill tuples and ISO 8601 strings fill timestamps, but a string is never a number.
    """
    if raw is None or len(raw) == 0:
        raise DecodeError("empty", [{"loc": (), "msg": "message has no value", "type": "empty"}])
    if len(raw) > max_bytes:
        raise DecodeError(
            "oversized",
            [
                {
                    "loc": (),
                    "msg": f"message is {len(raw)} bytes, the limit is {max_bytes}",
                    "type": "oversized",
                }
            ],
        )
    try:
        return schema.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        if errors and errors[0]["type"] == "json_invalid":
            _check_utf8(raw)
            raise DecodeError(
                "invalid_json",
                [{"loc": (), "msg": f"not valid JSON: {errors[0]['msg']}", "type": "json"}],
            ) from exc
        if errors and errors[0]["type"] == "model_type" and not errors[0]["loc"]:
            given = orjson.loads(raw)
            raise DecodeError("not_an_object", [_not_an_object(given)]) from exc
        raise DecodeError("schema", _plain_errors(exc)) from exc


def decode_object(schema: type[M], obj: Any) -> M:
    """Validate an already parsed Python value as ``schema``, or raise :class:`DecodeError`."""
    if not isinstance(obj, dict):
        raise DecodeError("not_an_object", [_not_an_object(obj)])
    try:
        return schema.model_validate(obj)
    except ValidationError as exc:
        raise DecodeError("schema", _plain_errors(exc)) from exc


def _json_scalar(given: Any) -> str | int | float | bool | None:
    """The offending input, when JSON can carry it as is (integers beyond 64 bits as text).

    >>> _json_scalar(-(2**64)), _json_scalar(3), _json_scalar([1])
    ('-18446744073709551616', 3, None)
    """
    if isinstance(given, bool | float | str):
        return given
    if isinstance(given, int):
        return given if -(2**63) <= given < 2**64 else str(given)
    return None


def _check_utf8(raw: bytes) -> None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"bytes are not valid UTF-8 at offset {exc.start}: JSON must be UTF-8 text"
        raise DecodeError("invalid_utf8", [{"loc": (), "msg": msg, "type": "utf8"}]) from exc


def _not_an_object(given: Any) -> dict[str, Any]:
    return {
        "loc": (),
        "msg": f"expected a JSON object, got {type(given).__name__}",
        "type": "type",
    }


def _plain_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors, reduced to what a person needs and what JSON can carry."""
    errors = []
    for err in exc.errors(include_url=False, include_context=False):
        given = err.get("input")
        errors.append(
            {
                "loc": list(err["loc"]),
                "msg": err["msg"],
                "type": err["type"],
                "input": _json_scalar(given),
            }
        )
    return errors


def dead_letter(
    source_topic: str,
    key: bytes | None,
    value: bytes | None,
    error: DecodeError,
    received_at: datetime | None = None,
) -> DeadLetter:
    """The dead-letter record for a rejected message, keeping its original bytes."""
    raw = value or b""
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    return DeadLetter(
        source_topic=source_topic,
        key=key.decode("utf-8", errors="replace") if key is not None else None,
        value=text,
        value_encoding=encoding,  # type: ignore[arg-type]
        reason=error.reason,
        errors=tuple(_jsonable(e) for e in error.errors),
        received_at=received_at or utc_now(),
    )


def _jsonable(error: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in error.items()}


def original_bytes(letter: DeadLetter) -> bytes:
    """The rejected message exactly as it arrived."""
    if letter.value_encoding == "base64":
        return base64.b64decode(letter.value)
    return letter.value.encode("utf-8")

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
import hashlib
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from vigie.contracts.schemas import EXAMPLE_DECLARATION, DeadLetter, Declaration, utc_now
from vigie.errors import DecodeError

M = TypeVar("M", bound=BaseModel)

DEFAULT_MAX_BYTES = 64 * 1024
KEPT_BYTES = 256 * 1024
"""A dead letter keeps at most this many bytes of the rejected message."""
TEXT_BYTES = 16 * 1024
"""Messages up to this size are kept as text when they are UTF-8 (JSON may escape each
byte into six), larger ones as base64 (four bytes for three): either way a dead letter
stays far below the broker's 1 MB record limit."""
KEPT_KEY_BYTES = 1024
KEPT_ERRORS = 20
KEPT_TEXT = 500
__all__ = [
    "EXAMPLE_DECLARATION",
    "Declaration",
    "content_digest",
    "dead_letter",
    "decode",
    "decode_object",
    "digest64",
    "encode",
]


def encode(record: BaseModel) -> bytes:
    """Serialise a record to JSON bytes (UTC timestamps in ISO 8601), absent fields left out.

    pydantic-core writes the bytes directly, without an intermediate dict.
    """
    return type(record).__pydantic_serializer__.to_json(record, exclude_none=True)


def digest64(data: bytes) -> int:
    """A 64-bit digest of ``data`` (blake2b).

    >>> digest64(b"abc") < 2**64
    True
    """
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def content_digest(record: BaseModel) -> int:
    """A 64-bit digest of a record's canonical encoding: two records of equal content have
    equal digests, whatever the key order, number formats or time zones of their bytes."""
    return digest64(encode(record))


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
            # pydantic's own parse (it reads NaN and Infinity, which orjson refuses)
            raise DecodeError("not_an_object", [_not_an_object(errors[0]["input"])]) from exc
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
    """The dead-letter record for a rejected message: its first :data:`KEPT_BYTES` bytes
    (all of them, usually), its length and digest, and at most :data:`KEPT_ERRORS` errors.

    Bounded by construction, so it always fits the dead-letter topic:

    >>> big = dead_letter("declarations", b"k", b"\\x01" * 1_000_000, DecodeError("oversized", []))
    >>> big.truncated, big.value_bytes, big.value_encoding, len(encode(big)) < 400 * 1024
    (True, 1000000, 'base64', True)
    """
    raw = value or b""
    kept = raw[:KEPT_BYTES]
    text = _utf8(kept) if len(raw) <= TEXT_BYTES else None
    encoding = "utf-8" if text is not None else "base64"
    if text is None:
        text = base64.b64encode(kept).decode("ascii")
    return DeadLetter(
        source_topic=source_topic,
        key=key[:KEPT_KEY_BYTES].decode("utf-8", errors="replace") if key is not None else None,
        value=text,
        value_encoding=encoding,  # type: ignore[arg-type]
        value_bytes=len(raw),
        value_sha256=hashlib.sha256(raw).hexdigest(),
        truncated=len(raw) > KEPT_BYTES,
        reason=error.reason,
        errors=tuple(_bounded(e) for e in error.errors[:KEPT_ERRORS]),
        received_at=received_at or utc_now(),
    )


def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _bounded(error: dict[str, Any]) -> dict[str, Any]:
    """One error, JSON-ready, with its strings cut at :data:`KEPT_TEXT` characters."""
    out: dict[str, Any] = {}
    for k, v in error.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, str) and len(v) > KEPT_TEXT:
            v = v[:KEPT_TEXT] + "..."
        out[k] = v
    return out


def original_bytes(letter: DeadLetter) -> bytes:
    """The rejected message as it arrived (its first bytes when ``letter.truncated``)."""
    if letter.value_encoding == "base64":
        return base64.b64decode(letter.value)
    return letter.value.encode("utf-8")

"""A corpus of hostile messages for the ``declarations`` topic, each with what must follow.

Built from declarations already streamed (their bytes), it holds:

* messages that must be dead-lettered: oversized (beyond the 64 KiB limit, and beyond
  the 256 KiB a dead letter keeps), non-finite numbers (``NaN``, ``Infinity``, ``1e999``),
  deep nesting (past the JSON parser's depth limit, and within it where a map of strings
  is due), invalid UTF-8, an empty value, JSON that is not an object, wrong types, an
  unknown field, an implausible date;
* extremes the schema refuses (1e308 EUR, 1e-300 kg: they made infinite scores once),
  and extremes at its limits (1e12 EUR for a milligram, a 1000 % duty), new declarations
  that must be scored with finite numbers throughout;
* re-sends with the same content (the same bytes, and the same record written another
  way: keys in another order, the lodging time in another time zone), which must be
  acknowledged without a Score;
* re-sends with other content (amendments: another customs value), which must be scored
  as revision 2.

Keys are those the producers use (the importer), so a re-send reaches the partition, and
the engine, that scored the original.

>>> base = {"declaration_id": "D-1", "importer": "FR1", "lodged_at": "2026-01-01T12:00:00Z",
...         "customs_value_eur": 100.0}
>>> items = corpus([orjson.dumps(base)])
>>> sorted({item.expect for item in items})
['amendment', 'dead_letter', 'new', 'repeat']
>>> len([i for i in items if i.expect == "dead_letter"]) >= 12
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import orjson

Expect = Literal["dead_letter", "repeat", "amendment", "new"]


@dataclass(frozen=True)
class Hostile:
    """One message, what it is, and what the system must make of it."""

    name: str
    key: bytes | None
    value: bytes
    expect: Expect


def corpus(streamed: Sequence[bytes]) -> list[Hostile]:
    """The hostile messages built on ``streamed`` (at least one declaration's bytes)."""
    base = orjson.loads(streamed[0])
    key = str(base["importer"]).encode()
    items = [Hostile(name, key, value, "dead_letter") for name, value in _rejects(base)]
    items += [Hostile(name, key, value, "new") for name, value in _extremes(base)]
    for i, raw in enumerate(streamed):
        original = orjson.loads(raw)
        own = str(original["importer"]).encode()
        items.append(Hostile(f"same bytes {i}", own, raw, "repeat"))
        items.append(
            Hostile(f"same content, other form {i}", own, _reformatted(original), "repeat")
        )
        amended = {**original, "customs_value_eur": round(original["customs_value_eur"] * 0.3, 2)}
        items.append(Hostile(f"other content {i}", own, _dumps(amended), "amendment"))
    return items


def _rejects(base: dict[str, Any]) -> list[tuple[str, bytes]]:
    valid = _dumps(base)
    pad = {f"note{i}": "x" * 250 for i in range(32)}
    return [
        ("oversized, 100 KB", _dumps({**base, "attributes": pad, "padding": "y" * 100_000})),
        ("oversized, 600 KB (truncated letter)", _dumps({**base, "padding": "z" * 600_000})),
        ("NaN", _replace_number(valid, "customs_value_eur", b"NaN")),
        ("Infinity", _replace_number(valid, "customs_value_eur", b"Infinity")),
        ("1e999", _replace_number(valid, "net_mass_kg", b"1e999")),
        ("-Infinity", _replace_number(valid, "duty_rate_pct", b"-Infinity")),
        (
            "nesting past the parser's limit",
            b'{"attributes":' + b"[" * 20_000 + b"]" * 20_000 + b"}",
        ),
        ("nesting where strings are due", _dumps({**base, "attributes": _nested(200)})),
        ("invalid UTF-8", valid[:40] + b"\xff\xfe\xfd" + valid[40:]),
        ("empty", b""),
        ("not an object", b"[1, 2, 3]"),
        ("null", b"null"),
        ("a number as a string", _dumps({**base, "customs_value_eur": "12.5"})),
        ("unknown field", _dumps({**base, "injected": "DROP TABLE scores"})),
        ("lodged in 2099", _dumps({**base, "lodged_at": "2099-01-01T00:00:00Z"})),
        ("1e308 EUR", _dumps({**base, "customs_value_eur": 1e308})),
        ("1e-300 kg", _dumps({**base, "net_mass_kg": 1e-300})),
        ("missing fields", _dumps({"declaration_id": base["declaration_id"]})),
        ("truncated JSON", valid[: len(valid) // 2]),
    ]


def _extremes(base: dict[str, Any]) -> list[tuple[str, bytes]]:
    """New declarations (ids of their own) at the schema's limits."""
    limits = [
        ("1e12 EUR for a milligram", {"customs_value_eur": 1e12, "net_mass_kg": 1e-6}),
        ("1e10 kg for nothing", {"customs_value_eur": 0.0, "net_mass_kg": 1e10}),
        ("a 1000 % duty", {"duty_rate_pct": 1000.0, "invoice_amount": 1e15}),
    ]
    return [
        (name, _dumps({**base, **fields, "declaration_id": f"{base['declaration_id']}X{i}"}))
        for i, (name, fields) in enumerate(limits)
    ]


def _dumps(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


def _reformatted(record: dict[str, Any]) -> bytes:
    """The same declaration written otherwise: keys reversed, lodging time at UTC+01:00."""
    lodged = datetime.fromisoformat(str(record["lodged_at"]).replace("Z", "+00:00"))
    local = lodged.astimezone(timezone(timedelta(hours=1))).isoformat()
    reordered = {k: record[k] for k in reversed(list(record))}
    return orjson.dumps({**reordered, "lodged_at": local})


def _replace_number(raw: bytes, field: str, literal: bytes) -> bytes:
    record = orjson.loads(raw)
    marker = 987654.321
    return orjson.dumps({**record, field: marker}).replace(repr(marker).encode(), literal, 1)


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"k": value}
    return value
